package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The checker walks what toml.Decode made of the file, as plain maps, so a
// wrong value stops nothing: every key is looked at and every problem
// reported, each at the line the scanner found for its key.

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	digits      = regexp.MustCompile(`^[0-9]+$`)
)

// scope is a table being checked: its name in messages and its key path.
type scope struct {
	label string // "defaults", `account "work"`, "account #2"
	path  []string
}

func (p *parser) errAt(s *scope, line int, format string, args ...any) {
	p.errorf(line, "%s: %s", s.label, fmt.Sprintf(format, args...))
}

// keyLine returns the line of key in s.
func (p *parser) keyLine(s *scope, key ...string) int {
	return p.kl.line(append(append([]string(nil), s.path...), key...)...)
}

// sortedKeys returns the keys of m in the order of their lines.
func (p *parser) sortedKeys(s *scope, m map[string]any) []string {
	keys := make([]string, 0, len(m))
	lines := make(map[string]int, len(m))
	for k := range m {
		keys = append(keys, k)
		lines[k] = p.keyLine(s, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if lines[keys[i]] != lines[keys[j]] {
			return lines[keys[i]] < lines[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// setting is a checked value and the line that set it.
type setting struct {
	val  any
	line int
}

// layer is the checked keys of [defaults] or of one [[account]].
type layer struct {
	line    int                // of the table's header
	vals    map[string]setting // keys with good values
	bad     map[string]bool    // keys with bad values, already reported
	deliver *deliverTable      // nil: none given
}

func newLayer() *layer {
	return &layer{vals: make(map[string]setting), bad: make(map[string]bool)}
}

// has reports whether the layer gives key, well or badly.
func (l *layer) has(key string) bool {
	_, ok := l.vals[key]
	return ok || l.bad[key]
}

// deliverTable is a checked deliver table.
type deliverTable struct {
	line int
	vals map[string]setting // keys with good values, without "deliver."
	bad  bool               // a key had a bad value, already reported
}

// targets returns the delivery targets given a value other than "".
func (d *deliverTable) targets() map[string]setting {
	t := make(map[string]setting)
	for k, st := range d.vals {
		if key := lookupKey("deliver." + k); key.Target && st.val != "" {
			t[k] = st
		}
	}
	return t
}

// config checks the whole document.
func (p *parser) config(raw map[string]any) *Config {
	top := &scope{}
	defaults := newLayer()
	var accounts []map[string]any
	accountsBad := false // reported already
	for _, k := range p.sortedKeys(top, raw) {
		line := p.keyLine(top, k)
		switch k {
		case "defaults":
			m, ok := raw[k].(map[string]any)
			if !ok {
				p.errorf(line, "defaults must be a table: write [defaults], not %s", typeName(raw[k]))
				continue
			}
			s := &scope{label: "defaults", path: []string{"defaults"}}
			defaults = p.layer(s, m, true)
		case "account":
			switch v := raw[k].(type) {
			case []map[string]any:
				accounts = v
			case []any:
				for _, x := range v {
					if m, ok := x.(map[string]any); ok {
						accounts = append(accounts, m)
					} else {
						p.errorf(line, "account must be an array of tables: write [[account]] before each account")
						accounts, accountsBad = nil, true
						break
					}
				}
			default:
				p.errorf(line, "account must be an array of tables: write [[account]] before each account, not %s", typeName(v))
				accountsBad = true
			}
		default:
			msg := fmt.Sprintf("unknown key %q", k)
			switch {
			case contains(accountKeyNames(), k):
				msg += " at the top level (account keys go in an [[account]] or in [defaults])"
			case contains(deliverKeyNames(), k):
				msg += " at the top level (it goes in [account.deliver] or [defaults.deliver])"
			default:
				msg += hint(k, []string{"defaults", "account"}, "")
			}
			p.errorf(line, "%s", msg)
		}
	}
	if defaults.deliver != nil {
		p.checkTargets(&scope{label: "defaults"}, defaults.deliver)
		p.checkRecipient(&scope{label: "defaults"}, defaults.deliver)
	}
	if len(accounts) == 0 && !accountsBad {
		p.errorf(0, "no accounts: add an [[account]] table (see config.example.toml)")
	}

	cfg := &Config{Path: p.file}
	names := make(map[string]int) // name → line
	keys := make(map[string]*Account)
	for i, m := range accounts {
		a := p.account(i, m, defaults)
		if first, ok := names[a.Name]; ok {
			p.errorf(a.Line("name"), "account %q: duplicate name, first used at line %d", a.Name, first)
			cfg.Accounts = append(cfg.Accounts, a)
			continue // one error for a copied account
		} else if a.Name != "" {
			names[a.Name] = a.Line("name")
		}
		// CONTRACT §2: the cache and the lock belong to the mailbox;
		// two accounts of one mailbox would share them, and one would
		// delete unseen what the other delivered.
		if a.User != "" && a.Host != "" {
			if first, ok := keys[a.Key()]; ok {
				p.errorf(a.Line(""), "account %q: same mailbox %s as account %q at line %d "+
					"(same user, host and port): give each mailbox one account", a.Name, a.Key(), first.Name, first.Line(""))
			} else {
				keys[a.Key()] = a
			}
		}
		cfg.Accounts = append(cfg.Accounts, a)
	}
	// A cache from before the port was part of the identity is adopted
	// only by the one account it can be: no account has it as identity,
	// and no other account had it too. Two tunnels to one server shared
	// that cache, and it cannot tell whose UIDs it holds: adopted by
	// either, it could make that one delete unseen what belongs to the
	// other; adopted by none, it costs duplicates at worst.
	claims := make(map[string]int)
	for _, a := range cfg.Accounts {
		if old := a.LegacyKey(); old != "" {
			claims[old]++
		}
	}
	for _, a := range cfg.Accounts {
		if old := a.LegacyKey(); old != "" && keys[old] == nil && claims[old] == 1 {
			a.AdoptKey = old
		}
	}
	return cfg
}

// account checks the i-th account and applies the defaults.
func (p *parser) account(i int, m map[string]any, defaults *layer) *Account {
	s := &scope{label: fmt.Sprintf("account #%d", i+1), path: []string{"account", indexKey(i)}}
	if name, ok := m["name"].(string); ok && name != "" && validName(name) == "" {
		s.label = fmt.Sprintf("account %q", name)
	}
	acc := p.layer(s, m, false)
	acc.line = p.keyLine(s)

	a := NewAccount(p.env)
	a.File, a.Lines[""] = p.file, acc.line
	// get returns the value of key from the account, else from the
	// defaults, and records its line.
	get := func(key string) (any, bool) {
		for _, l := range []*layer{acc, defaults} {
			if st, ok := l.vals[key]; ok {
				a.Lines[key] = st.line
				return st.val, true
			}
			if l.has(key) {
				return nil, false
			}
		}
		return nil, false
	}
	// bad reports whether key's value, from wherever it comes, was bad.
	bad := func(key string) bool {
		return acc.bad[key] || !acc.has(key) && defaults.bad[key]
	}
	str := func(key string) string {
		v, _ := get(key)
		s, _ := v.(string)
		return s
	}

	// The account's own deliver table replaces the default one as a whole.
	d := acc.deliver
	if d == nil {
		d = defaults.deliver
	}
	for i := range keyTable {
		k := &keyTable[i]
		name, inDeliver := strings.CutPrefix(k.Name, "deliver.")
		if !inDeliver {
			if v, ok := get(k.Name); ok {
				k.set(a, v)
			}
			continue
		}
		if d == nil {
			continue
		}
		if st, ok := d.vals[name]; ok {
			a.Lines[k.Name] = st.line
			k.set(a, st.val)
		}
	}
	if _, ok := get("port"); !ok {
		a.Port = StandardPort(a.TLS)
	}
	if d != nil {
		a.Lines["deliver"] = d.line
	}
	if a.StateDir == "" && !bad("state_dir") {
		p.errAt(s, acc.line, "no state_dir: $HOME and $XDG_STATE_HOME are not set")
	}

	// What must be there.
	for _, k := range keyTable {
		if k.Required && str(k.Name) == "" && !bad(k.Name) {
			p.errAt(s, acc.line, "%s is missing", k.Name)
		}
	}
	switch {
	case d == nil || len(d.targets()) == 0 && !d.bad:
		line := acc.line
		if d != nil {
			line = d.line
		}
		p.errAt(s, line, "no delivery target: give %s (in [account.deliver])", orList(prefixed("deliver.", targetNames())))
	case d == acc.deliver:
		p.checkTargets(s, d)
		p.checkRecipient(s, d)
	}

	// What goes together.
	if a.DeleteAfter > 0 && !a.Keep && !bad("keep") {
		p.errAt(s, a.Line("delete_after"), "delete_after needs keep = true (without keep every message is deleted once retrieved)")
	}
	if a.OAuthProvider != "" && a.OAuthClientID == "" && !bad("oauth_client_id") {
		p.errAt(s, a.Line("oauth_provider"), "oauth_provider needs oauth_client_id")
	}
	if a.OAuthProvider != "" && a.OAuthTokenCommand != "" {
		p.errAt(s, a.Line("oauth_provider"), "give oauth_token_command (line %d) or oauth_provider, not both", a.Line("oauth_token_command"))
	}
	if (a.Auth == AuthXOAuth2 || a.Auth == AuthOAuthBearer) && a.OAuthProvider == "" && a.OAuthTokenCommand == "" &&
		!bad("oauth_provider") && !bad("oauth_token_command") {
		p.errAt(s, a.Line("auth"), "auth = %q needs oauth_token_command or oauth_provider", a.Auth)
	}
	if a.TLS == TLSNone {
		for _, k := range []string{"tls_fingerprint", "tls_ca_file"} {
			if str(k) != "" {
				p.errAt(s, a.Line(k), "%s has no effect with tls = \"none\"", k)
			}
		}
	}

	return a
}

// checkTargets reports a deliver table with more than one target.
func (p *parser) checkTargets(s *scope, d *deliverTable) {
	targets := d.targets()
	if len(targets) < 2 {
		return
	}
	var keys []string
	for k := range targets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := targets[keys[i]].line, targets[keys[j]].line
		return a < b || a == b && keys[i] < keys[j]
	})
	var list []string
	for _, k := range keys {
		list = append(list, fmt.Sprintf("deliver.%s (line %d)", k, targets[k].line))
	}
	p.errAt(s, targets[keys[1]].line, "more than one delivery target: %s; give exactly one", strings.Join(list, ", "))
}

// checkRecipient reports a recipient in a deliver table without an LMTP
// or SMTP target: it would do nothing.
func (p *parser) checkRecipient(s *scope, d *deliverTable) {
	st, ok := d.vals["recipient"]
	if !ok || st.val == "" || d.bad {
		return
	}
	targets := d.targets()
	if _, lmtp := targets["lmtp"]; lmtp {
		return
	}
	if _, smtp := targets["smtp"]; smtp {
		return
	}
	p.errAt(s, st.line, "deliver.recipient is for deliver.lmtp and deliver.smtp only (the RCPT TO of their transactions)")
}

// prefixed returns each name with prefix before it.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// layer checks the keys of [defaults] or of an [[account]].
func (p *parser) layer(s *scope, m map[string]any, isDefaults bool) *layer {
	l := newLayer()
	l.line = p.keyLine(s)
	for _, k := range p.sortedKeys(s, m) {
		v := m[k]
		line := p.keyLine(s, k)
		switch {
		case k == "deliver":
			l.deliver = p.deliver(s, v, line)
		case !contains(accountKeyNames(), k):
			msg := fmt.Sprintf("unknown key %q", k)
			if contains(deliverKeyNames(), k) {
				table := "[account.deliver]"
				if isDefaults {
					table = "[defaults.deliver]"
				}
				msg += fmt.Sprintf(" (did you mean deliver.%s? it goes in %s)", k, table)
			} else {
				msg += hint(k, accountKeyNames(), "")
			}
			p.errAt(s, line, "%s", msg)
		case isDefaults && lookupKey(k).PerAccount:
			p.errAt(s, line, "%s cannot have a default: each account needs its own", k)
		default:
			key := lookupKey(k)
			if val, ok := key.parse(p, s, key, v, line); ok {
				l.vals[k] = setting{val, line}
			} else {
				l.bad[k] = true
			}
		}
	}
	return l
}

// deliver checks a deliver table.
func (p *parser) deliver(s *scope, v any, line int) *deliverTable {
	d := &deliverTable{line: line, vals: make(map[string]setting)}
	m, ok := v.(map[string]any)
	if !ok {
		p.errAt(s, line, "deliver must be a table with one of %s, not %s", orList(targetNames()), typeName(v))
		d.bad = true
		return d
	}
	ds := &scope{label: s.label, path: append(append([]string(nil), s.path...), "deliver")}
	known := deliverKeyNames()
	for _, k := range p.sortedKeys(ds, m) {
		line := p.keyLine(ds, k)
		if !contains(known, k) {
			h := hint(k, known, "deliver.")
			if h == "" {
				h = fmt.Sprintf(" (the keys of [account.deliver] are %s)", strings.Join(known, ", "))
			}
			p.errAt(s, line, "unknown key %q%s", "deliver."+k, h)
			d.bad = true // not also "no delivery target" for a misspelled one
			continue
		}
		key := lookupKey("deliver." + k)
		val, ok := key.parse(p, s, key, m[k], line)
		if !ok {
			d.bad = true
			continue
		}
		d.vals[k] = setting{val, line}
	}
	return d
}

// str checks that v is a string. The values of secret keys are never shown.
func (p *parser) str(s *scope, key string, v any, line int) (string, bool) {
	str, ok := v.(string)
	if !ok {
		p.errAt(s, line, "%s must be a string, not %s", key, typeName(v))
	}
	return str, ok
}

// integer checks that v is an integer.
func (p *parser) integer(s *scope, key string, v any, line int) (int64, bool) {
	n, ok := v.(int64)
	if !ok {
		msg := fmt.Sprintf("%s must be an integer, not %s", key, typeName(v))
		if str, isStr := v.(string); isStr && digits.MatchString(str) {
			msg += fmt.Sprintf(" (write %s = %s, without quotes)", key, str)
		}
		p.errAt(s, line, "%s", msg)
	}
	return n, ok
}

// path expands ~ and $VAR in a path and checks it is absolute.
func (p *parser) path(s *scope, key, str string, line int) (string, bool) {
	if str == "" {
		return "", true
	}
	x, err := ExpandPath(str, p.env)
	if err != nil {
		p.errAt(s, line, "%s: %v", key, err)
		return "", false
	}
	if !filepath.IsAbs(x) {
		p.errAt(s, line, "%s %q is not an absolute path (write /path or ~/path)", key, str)
		return "", false
	}
	return x, true
}

// validName returns what is wrong with an account name, or "".
func validName(name string) string {
	switch {
	case name == "":
		return "" // reported as missing
	case !namePattern.MatchString(name):
		return fmt.Sprintf("name %q may contain only letters, digits, \".\", \"_\" and \"-\"", name)
	case name == "." || name == "..":
		return fmt.Sprintf("name %q is not allowed", name)
	}
	return ""
}

// checkProvider returns what is wrong with an oauth_provider, or "".
func checkProvider(s string) string {
	if s == "" || s == "google" || s == "microsoft" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Sprintf("oauth_provider must be \"google\", \"microsoft\" or an https:// token URL, not %q", s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Sprintf("oauth_provider %q: a token URL must use https (http only for a loopback host)", s)
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }

// typeName names the TOML type of a decoded value, with an article.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	case time.Time:
		return "a date-time"
	}
	return "a date or time"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hint returns " (did you mean "PREFIX+K"?)" for the known key K closest to
// key, if one is close enough, else "".
func hint(key string, known []string, prefix string) string {
	if k := closest(key, known); k != "" {
		return fmt.Sprintf(" (did you mean %q?)", prefix+k)
	}
	return ""
}

// Closest returns the string in known within edit distance 2 of s, or ""
// if there is none: the did-you-mean of every message, here and in cmd.
func Closest(s string, known []string) string { return closest(s, known) }

// closest returns the string in known within edit distance 2 of s,
// preferring the nearest and then the first. The distance must also be
// less than half of s, so "nope" does not suggest "home".
func closest(s string, known []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD && 2*d < len(s) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// neighbours ("hots" is 1 from "host").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

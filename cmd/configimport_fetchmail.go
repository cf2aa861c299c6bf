package cmd

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// fmToken is a word of a .fetchmailrc.
type fmToken struct {
	text   string
	quoted bool
	line   int
}

// lexFetchmail splits a .fetchmailrc into words as fetchmail's lexer does:
// strings in double or single quotes, with escapes (\t, \n, \x41, \101
// in decimal, \\) and no way to hold their own quote; # starting a word begins
// a comment to the end of the line; ";", ":" and "," separate words and
// are dropped, as are the noise words and, with, has, wants, options.
func lexFetchmail(data string) []fmToken {
	var toks []fmToken
	line := 1
	i := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == ';' || c == ':' || c == ',' || c == '=':
			i++
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			end := strings.IndexByte(data[i+1:], c)
			if end < 0 {
				end = len(data) - i - 1
			}
			raw := data[i+1 : i+1+end]
			toks = append(toks, fmToken{text: fmUnescape(raw), quoted: true, line: line})
			line += strings.Count(raw, "\n")
			i += end + 2
		default:
			start := i
			for i < len(data) && !strings.ContainsRune(" \t\r\n;:,=", rune(data[i])) {
				i++
			}
			w := data[start:i]
			switch w {
			case "and", "with", "has", "wants", "options":
				continue
			}
			toks = append(toks, fmToken{text: w, line: line})
		}
	}
	return toks
}

// fmUnescape decodes fetchmail's escapes in a quoted string.
func fmUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; {
		case c == 'b':
			b.WriteByte('\b')
		case c == 'n':
			b.WriteByte('\n')
		case c == 'r':
			b.WriteByte('\r')
		case c == 't':
			b.WriteByte('\t')
		case c == 'x' || c == 'X':
			n, j := 0, i+1
			for j < len(s) && j < i+3 && isHex(s[j]) {
				v, _ := strconv.ParseUint(s[j:j+1], 16, 8)
				n = n*16 + int(v)
				j++
			}
			if j == i+1 {
				b.WriteByte(c)
				continue
			}
			b.WriteByte(byte(n))
			i = j - 1
		case c >= '0' && c <= '9':
			// Decimal, as fetchmail reads it: \101 is "e".
			n, j := 0, i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '9' {
				n = n*10 + int(s[j]-'0')
				j++
			}
			b.WriteByte(byte(n))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// fmArity is how many words follow each option of a .fetchmailrc: 0, 1,
// or -1 for a list that runs to the next keyword.
var fmArity = map[string]int{
	// server
	"via": 1, "proto": 1, "protocol": 1, "local": -1, "localdomains": -1, "port": 1, "service": 1,
	"auth": 1, "authenticate": 1, "timeout": 1, "envelope": 1, "qvirtual": 1, "aka": -1,
	"interface": 1, "monitor": 1, "plugin": 1, "plugout": 1, "dns": 0, "checkalias": 0, "uidl": 0,
	"interval": 1, "tracepolls": 0, "principal": 1, "esmtpname": 1, "esmtppassword": 1, "badheader": 1,
	// user
	"there": 0, "here": 0, "password": 1, "pass": 1, "is": -1, "to": -1,
	"keep": 0, "nokeep": 0, "fetchall": 0, "flush": 0, "limitflush": 0, "rewrite": 0, "stripcr": 0,
	"forcecr": 0, "pass8bits": 0, "dropstatus": 0, "dropdelivered": 0, "mimedecode": 0, "idle": 0,
	"ssl": 0, "sslcertck": 0, "lmtp": 0, "limit": 1, "warnings": 1, "batchlimit": 1, "fetchlimit": 1,
	"fetchsizelimit": 1, "fastuidl": 1, "expunge": 1, "properties": 1, "sslcert": 1, "sslkey": 1,
	"sslproto": 1, "sslcertfile": 1, "sslcertpath": 1, "sslcommonname": 1, "sslfingerprint": 1,
	"folder": -1, "smtphost": -1, "fetchdomains": -1, "smtpaddress": 1, "smtpname": 1, "antispam": -1,
	"mda": 1, "bsmtp": 1, "preconnect": 1, "postconnect": 1,
}

// fmSetValue are the global settings that take a value.
var fmSetValue = map[string]bool{"daemon": true, "logfile": true, "idfile": true, "postmaster": true, "properties": true}

// fmStarts are the words that start a statement.
var fmStarts = map[string]bool{"poll": true, "skip": true, "defaults": true, "set": true, "user": true, "username": true}

// fmOpt is an option as written: its name (with "no " before a negated
// one), its words, and its line.
type fmOpt struct {
	name string
	args []string
	line int
}

// fmEntry is a poll (or skip) statement: its server options and users.
type fmEntry struct {
	line       int
	skip       bool
	poll       string
	serverOpts []fmOpt
	users      []*fmUser
}

type fmUser struct {
	line   int
	remote string
	opts   []fmOpt
}

// importFetchmail translates a .fetchmailrc.
func importFetchmail(path, data string) *imported {
	imp := &imported{}
	toks := lexFetchmail(data)
	var defaults []fmOpt
	var entries []*fmEntry
	var cur *fmEntry // the statement options go to; nil before any
	var curOpts *[]fmOpt
	inDefaults := false
	isKeyword := func(t fmToken) bool {
		if t.quoted {
			return false
		}
		_, ok := fmArity[t.text]
		return ok || fmStarts[t.text] || t.text == "no"
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.quoted {
			imp.notes = append(imp.notes, fmt.Sprintf("%s:%d: %q is not where fetchmail expects a value; left out", path, t.line, t.text))
			continue
		}
		switch t.text {
		case "set":
			// set [no] NAME [VALUE]
			var words []string
			if i+1 < len(toks) && toks[i+1].text == "no" {
				i++
				words = append(words, "no")
			}
			if i+1 < len(toks) {
				i++
				words = append(words, toks[i].text)
				if fmSetValue[toks[i].text] && i+1 < len(toks) {
					i++
					words = append(words, toks[i].text)
				}
			}
			imp.notes = append(imp.notes, fmSetNote(path, t.line, words))
			continue
		case "defaults":
			inDefaults, cur = true, nil
			curOpts = &defaults
			continue
		case "poll", "skip":
			inDefaults = false
			e := &fmEntry{line: t.line, skip: t.text == "skip"}
			if i+1 < len(toks) {
				i++
				e.poll = toks[i].text
			}
			entries = append(entries, e)
			cur = e
			curOpts = &e.serverOpts
			continue
		case "user", "username":
			if cur == nil && !inDefaults {
				imp.notes = append(imp.notes, fmt.Sprintf("%s:%d: a user outside a poll statement; left out", path, t.line))
			}
			u := &fmUser{line: t.line}
			if i+1 < len(toks) {
				i++
				u.remote = toks[i].text
			}
			if cur != nil {
				cur.users = append(cur.users, u)
			}
			curOpts = &u.opts
			continue
		}
		name := t.text
		if name == "no" && i+1 < len(toks) {
			i++
			name = "no " + toks[i].text
		}
		base := strings.TrimPrefix(name, "no ")
		arity, known := fmArity[base]
		o := fmOpt{name: name, line: t.line}
		switch {
		case !known:
			o.name = "unknown:" + name
		case arity == 1 && !strings.HasPrefix(name, "no "):
			if i+1 < len(toks) {
				i++
				o.args = []string{toks[i].text}
			}
		case arity < 0:
			for i+1 < len(toks) && !isKeyword(toks[i+1]) {
				i++
				o.args = append(o.args, toks[i].text)
			}
		}
		if curOpts == nil {
			imp.notes = append(imp.notes, fmt.Sprintf("%s:%d: %q before any poll statement; left out", path, t.line, name))
			continue
		}
		*curOpts = append(*curOpts, o)
	}

	for _, e := range entries {
		users := e.users
		if len(users) == 0 {
			users = []*fmUser{{line: e.line}}
		}
		for _, u := range users {
			imp.accounts = append(imp.accounts, fmAccount(path, e, u, len(users) > 1, defaults))
		}
	}
	return imp
}

// fmSetNote is the comment for a global "set" statement.
func fmSetNote(path string, line int, words []string) string {
	stmt := "set " + strings.Join(words, " ")
	where := fmt.Sprintf("%s:%d: fetchmail %q", path, line, stmt)
	if len(words) == 0 {
		return where + ": left out"
	}
	name, neg := words[0], false
	if name == "no" && len(words) > 1 {
		name, neg = words[1], true
	}
	switch name {
	case "daemon":
		if len(words) > 1 {
			return fmt.Sprintf("%s: run \"popfetch daemon --interval %ss\" (or a systemd timer, or cron)", where, words[1])
		}
	case "logfile", "syslog":
		return where + ": popfetch writes problems to standard error, for cron's mail or the journal"
	case "idfile":
		return where + ": popfetch keeps its own record of what was retrieved, in state_dir; " +
			"an account in keep mode fetches every message once more on its first run"
	case "postmaster", "bouncemail", "spambounce", "softbounce":
		if neg {
			return where + ": popfetch sends no bounces either"
		}
		return where + ": popfetch sends no bounces; a message that cannot be delivered stays on the server and is reported"
	case "showdots", "invisible":
		return where + ": no equivalent: popfetch shows progress bars on a terminal, and adds its Received: line (received_header)"
	}
	return where + ": no equivalent in popfetch"
}

// fmAccount translates one user of a poll statement, with the defaults
// and the statement's server options applied first.
func fmAccount(path string, e *fmEntry, u *fmUser, severalUsers bool, defaults []fmOpt) *importedAccount {
	a := &importedAccount{}
	what := "poll " + e.poll
	if e.skip {
		what = "skip " + e.poll
	}
	if u.remote != "" {
		what += ", user " + u.remote
	}
	a.origin = fmt.Sprintf("%s:%d (%s)", path, u.line, what)
	a.name = accountName(e.poll)
	if severalUsers {
		a.name = accountName(e.poll + "-" + u.remote)
	}
	a.set("host", tomlString(e.poll))
	if u.remote != "" {
		a.set("user", tomlString(u.remote))
	} else {
		a.note("fetchmail logged in as the local user running it: set user")
	}
	if e.skip {
		a.note("fetchmail polled this server (skip) only when named on its command line; popfetch fetches " +
			"every account unless named: popfetch ACCOUNT...")
	}

	var (
		ssl, sslprotoNone, sslproto bool
		password, mda, smtpname     string
		hasPassword, lmtp           bool
		localnames, smtphosts       []string
		keepSet, keep               bool
		protocolOK                  = true
		protocolNote                string
	)
	opts := append(append(append([]fmOpt(nil), defaults...), e.serverOpts...), u.opts...)
	for _, o := range opts {
		arg := ""
		if len(o.args) > 0 {
			arg = o.args[0]
		}
		at := fmt.Sprintf("fetchmail %q (line %d)", strings.TrimSpace(o.name+" "+strings.Join(o.args, " ")), o.line)
		switch o.name {
		case "via":
			a.set("host", tomlString(arg))
			a.note("fetchmail connected to %s (via) for %s; popfetch connects to host, which names the mailbox: "+
				"its UID cache and keyring entry are %s's", arg, e.poll, arg)
		case "proto", "protocol":
			switch strings.ToLower(arg) {
			case "pop3", "auto":
			case "apop":
				a.set("auth", `"apop"`)
			default:
				protocolOK, protocolNote = false, fmt.Sprintf("fetchmail used %s; popfetch speaks POP3 only", arg)
			}
		case "port", "service":
			switch arg {
			case "pop3":
				a.set("port", "110")
			case "pop3s":
				a.set("port", "995")
			default:
				if n, err := strconv.Atoi(arg); err == nil && n > 0 && n < 65536 {
					a.set("port", arg)
				} else {
					a.note("%s: not a port popfetch knows; set port", at)
				}
			}
		case "auth", "authenticate":
			switch strings.ToLower(arg) {
			case "any":
			case "password":
				a.set("auth", `"user"`)
			case "apop":
				a.set("auth", `"apop"`)
			case "cram-md5":
				a.set("auth", `"cram-md5"`)
			default:
				a.note("%s: popfetch does not offer %s; auth = \"auto\" takes the best the server offers", at, arg)
			}
		case "timeout":
			if n, err := strconv.Atoi(arg); err == nil && n > 0 {
				a.set("timeout", tomlString(arg+"s"))
			}
		case "uidl", "no uidl":
			a.note("%s: popfetch always uses UIDL", at)
		case "password", "pass":
			password, hasPassword = arg, true
		case "is", "to":
			localnames = append(localnames, o.args...)
		case "there", "here":
		case "keep":
			keepSet, keep = true, true
		case "nokeep", "no keep":
			keepSet, keep = true, false
		case "fetchall":
			a.set("fetch_all", "true")
		case "no fetchall":
			a.set("fetch_all", "false")
		case "flush", "no flush", "limitflush":
			a.note("%s: not needed: popfetch deletes only what it delivered, and never unseen mail", at)
		case "ssl":
			ssl = true
		case "no ssl":
			ssl = false
		case "sslproto":
			if arg == "" {
				sslprotoNone = true
			} else {
				sslproto = true
				if !strings.Contains(strings.ToLower(arg), "1.2") && !strings.Contains(strings.ToLower(arg), "1.3") && !strings.HasPrefix(strings.ToLower(arg), "auto") {
					a.note("%s: popfetch speaks TLS 1.2 and 1.3 only", at)
				}
			}
		case "sslcertck", "no sslcertck":
			a.note("%s: popfetch always verifies the certificate (or pins it: tls_fingerprint)", at)
		case "sslcertfile":
			if systemCABundles[arg] {
				a.note("%s: the system's CA bundle, which popfetch trusts anyway", at)
			} else {
				a.set("tls_ca_file", tomlString(arg))
			}
		case "sslcertpath":
			if systemCABundles[arg] {
				a.note("%s: the system's CAs, which popfetch trusts anyway", at)
			} else {
				a.note("%s: popfetch takes one PEM file of CAs: tls_ca_file = \"FILE\" (cat the certificates into it)", at)
			}
		case "sslfingerprint":
			a.note("%s: fetchmail's fingerprint is MD5; popfetch pins the SHA-256 of the certificate: "+
				"popfetch serverinfo %s prints the tls_fingerprint line", at, a.name)
		case "sslcommonname":
			a.note("%s: popfetch checks the certificate against host; pin it with tls_fingerprint if the name differs", at)
		case "sslcert", "sslkey":
			a.note("%s: popfetch does not log in with a client certificate", at)
		case "limit":
			if n, err := strconv.ParseInt(arg, 10, 64); err == nil && n > 0 {
				a.set("max_size", sizeValue(n))
			}
		case "fetchlimit":
			if n, err := strconv.Atoi(arg); err == nil && n > 0 {
				a.set("max_messages", strconv.Itoa(n))
			}
		case "mda":
			mda = arg
		case "smtphost":
			smtphosts = o.args
		case "lmtp":
			lmtp = true
		case "smtpname":
			smtpname = arg
		case "rewrite", "no rewrite", "stripcr", "no stripcr", "forcecr", "no forcecr", "pass8bits", "no pass8bits",
			"dropstatus", "no dropstatus", "dropdelivered", "no dropdelivered", "mimedecode", "no mimedecode":
			a.note("%s: popfetch never changes a message, but for a Received: line on top (received_header)", at)
		case "dns", "no dns", "checkalias", "no checkalias", "envelope", "no envelope", "qvirtual", "aka", "local",
			"localdomains", "smtpaddress", "fetchdomains":
			a.note("%s: multidrop settings; popfetch delivers each mailbox to one target", at)
		default:
			a.note("%s: no equivalent in popfetch", at)
		}
	}
	if !protocolOK {
		a.disabled = protocolNote
	}

	// TLS: fetchmail without ssl upgrades with STARTTLS when offered;
	// popfetch's starttls insists on it, never falling back to plain text.
	switch {
	case ssl:
		a.set("tls", `"implicit"`)
	case sslprotoNone:
		a.set("tls", `"none"`)
		a.note("fetchmail sent the password without TLS (sslproto ''); popfetch refuses to unless allow_insecure = true " +
			"(for a host that is not loopback): better, tls = \"starttls\" or \"implicit\"")
	default:
		a.set("tls", `"starttls"`)
		if !sslproto {
			a.note("fetchmail used STARTTLS when the server offered it; with tls = \"starttls\" popfetch insists on it")
		}
	}
	if keepSet {
		a.set("keep", strconv.FormatBool(keep))
		if keep {
			a.note("keep: popfetch keeps its own record of what was retrieved; its first run fetches every message on the server once more")
		}
	}
	if hasPassword {
		a.set("password", tomlString(password))
		a.note("the password is in this file, which must not be readable by others (chmod 600); better, password_command "+
			"or popfetch password set %s", a.name)
	} else {
		a.note("fetchmail found the password in ~/.netrc or asked for it: store it with popfetch password set %s, or set password_command", a.name)
	}

	// Delivery: the MDA, else fetchmail's default, SMTP to smtphost
	// (localhost) for the local names.
	local := ""
	if len(localnames) > 0 {
		local = localnames[0]
		if len(localnames) > 1 {
			a.note("fetchmail delivered to the local users %s; popfetch delivers each message once, to %s", strings.Join(localnames, ", "), local)
		}
	} else if me, err := user.Current(); err == nil {
		local = me.Username
	}
	switch {
	case mda != "":
		cmd := mda
		if strings.Contains(cmd, "%T") && local != "" {
			cmd = strings.ReplaceAll(cmd, "%T", local)
			a.note("fetchmail's %%T in the mda was the local user; popfetch's is the account's user, so %s is written in its place", local)
		}
		if strings.Contains(cmd, "%s") {
			a.note("fetchmail's %%s in the mda: popfetch has %%T (the account's user) and %%F (the sender)")
		}
		a.setDeliver("mda", tomlString(cmd))
		shellNote(a, "fetchmail", cmd)
	default:
		host := "localhost"
		if len(smtphosts) > 0 {
			host = smtphosts[0]
			if len(smtphosts) > 1 {
				a.note("fetchmail tried the smtphosts %s in turn; popfetch delivers to the first", strings.Join(smtphosts, ", "))
			}
		}
		addr := host
		if h, port, ok := strings.Cut(host, "/"); ok && !strings.HasPrefix(host, "/") {
			addr = h + ":" + port
		}
		if lmtp {
			if strings.HasPrefix(addr, "/") {
				addr = "unix:" + addr
			}
			a.setDeliver("lmtp", tomlString(addr))
		} else {
			if !strings.Contains(addr, ":") && !strings.HasPrefix(addr, "/") {
				addr += ":25"
			}
			a.setDeliver("smtp", tomlString(addr))
		}
		rcpt := local
		if smtpname != "" {
			rcpt = smtpname
		}
		if rcpt != "" {
			a.deliver = append(a.deliver, keyValue{"recipient", tomlString(rcpt)})
		}
	}
	return a
}

package cmd

import (
	"fmt"
	"strconv"
	"strings"
)

// mpSetting is an mpop command of an account, as written.
type mpSetting struct {
	cmd, arg string
	line     int
}

// mpAccount is an mpop account: the defaults as they were when it was
// defined, then its own settings, which start with those of the accounts
// it copies (as mpop's override_account copies what they set, not their
// defaults).
type mpAccount struct {
	id       string
	line     int
	defaults []mpSetting
	own      []mpSetting
}

// mpopTrim is mpop's trim_string: blanks off both ends, then a pair of
// double quotes around the whole removed. Nothing inside is unescaped.
func mpopTrim(s string) string {
	s = strings.Trim(s, " \t")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// importMpop translates an mpoprc as mpop's conf.c reads it: a line is a
// command and its argument (the rest of the line, see mpopTrim); a line
// whose first non-blank is # is a comment (nowhere else: "host h # x" is
// the host "h # x"); "defaults" starts the settings every later account
// begins with; "account NAME : A, B" starts an account that copies A and
// B.
func importMpop(path, data string) *imported {
	imp := &imported{}
	var defaults []mpSetting
	var accounts []*mpAccount
	byID := map[string]*mpAccount{}
	var cur *[]mpSetting
	for n, line := range strings.Split(data, "\n") {
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		cmd, arg := t, ""
		if i := strings.IndexAny(t, " \t"); i >= 0 {
			cmd, arg = t[:i], t[i:]
		}
		arg = mpopTrim(arg)
		switch cmd {
		case "defaults":
			cur = &defaults
			continue
		case "account":
			id, from, _ := strings.Cut(arg, ":")
			id = mpopTrim(id)
			a := &mpAccount{id: id, line: n + 1, defaults: append([]mpSetting(nil), defaults...)}
			if from != "" {
				for _, f := range strings.Split(from, ",") {
					if src := byID[mpopTrim(f)]; src != nil {
						a.own = append(a.own, src.own...)
					} else {
						imp.notes = append(imp.notes, fmt.Sprintf("%s:%d: account %s copies %s, which is not defined before it", path, n+1, id, mpopTrim(f)))
					}
				}
			}
			accounts = append(accounts, a)
			byID[id] = a
			cur = &a.own
			continue
		}
		if cur == nil {
			imp.notes = append(imp.notes, fmt.Sprintf("%s:%d: %q before the first account or defaults; left out", path, n+1, t))
			continue
		}
		*cur = append(*cur, mpSetting{cmd, arg, n + 1})
	}
	for _, a := range accounts {
		imp.accounts = append(imp.accounts, mpopAccount(path, a))
	}
	return imp
}

// mpopOn reports whether an on/off argument is on ("" is on).
func mpopOn(arg string) bool { return arg == "" || arg == "on" }

// mpopAccount translates one mpop account.
func mpopAccount(path string, m *mpAccount) *importedAccount {
	a := &importedAccount{name: accountName(m.id), origin: fmt.Sprintf("%s:%d (account %s)", path, m.line, m.id)}
	if a.name != m.id {
		a.note("mpop's account %q is named %q: popfetch's names are letters, digits, \".\", \"_\" and \"-\"", m.id, a.name)
	}
	tls, starttls := false, true
	var tlsLine int
	for _, s := range append(append([]mpSetting(nil), m.defaults...), m.own...) {
		at := fmt.Sprintf("mpop %q (line %d)", strings.TrimSpace(s.cmd+" "+s.arg), s.line)
		switch s.cmd {
		case "host":
			a.set("host", tomlString(s.arg))
		case "port":
			a.set("port", s.arg)
		case "user":
			a.set("user", tomlString(s.arg))
		case "password":
			a.set("password", tomlString(s.arg))
			a.note("the password is in this file, which must not be readable by others (chmod 600); better, "+
				"password_command or popfetch password set %s", a.name)
		case "passwordeval":
			// mpop runs it with popen, through /bin/sh, as popfetch does.
			a.set("password_command", tomlString(s.arg))
		case "timeout":
			if n, err := strconv.Atoi(s.arg); err == nil && n > 0 {
				a.set("timeout", tomlString(s.arg+"s"))
			} else {
				a.note("%s: popfetch always has a timeout (60s unless set)", at)
			}
		case "auth":
			switch strings.ToLower(s.arg) {
			case "", "on", "choose":
			case "user", "apop", "plain", "login", "cram-md5", "xoauth2", "oauthbearer":
				a.set("auth", tomlString(strings.ToLower(s.arg)))
			default:
				a.note("%s: popfetch does not offer %s; auth = \"auto\" takes the best the server offers", at, s.arg)
			}
		case "tls":
			tls, tlsLine = mpopOn(s.arg), s.line
		case "tls_starttls":
			starttls = mpopOn(s.arg)
		case "tls_trust_file":
			switch {
			case s.arg == "":
				a.unset("tls_ca_file")
			case systemCABundles[s.arg]:
				a.note("%s: the system's CA bundle, which popfetch trusts anyway", at)
			default:
				a.set("tls_ca_file", tomlString(s.arg))
			}
		case "tls_fingerprint":
			hex := strings.ReplaceAll(strings.ToLower(s.arg), ":", "")
			if len(hex) == 64 {
				a.set("tls_fingerprint", tomlString("sha256:"+hex))
			} else {
				a.note("%s: a SHA-1 or MD5 fingerprint; popfetch pins the SHA-256 of the certificate: "+
					"popfetch serverinfo %s prints the tls_fingerprint line", at, a.name)
			}
		case "tls_certcheck":
			if !mpopOn(s.arg) {
				a.note("%s: popfetch always verifies the certificate; pin a self-signed one with tls_fingerprint "+
					"(popfetch serverinfo %s prints it)", at, a.name)
			}
		case "tls_key_file", "tls_cert_file":
			a.note("%s: popfetch does not log in with a client certificate", at)
		case "delivery":
			how, dest, _ := strings.Cut(s.arg, " ")
			dest = mpopTrim(dest)
			switch how {
			case "mda":
				a.setDeliver("mda", tomlString(dest))
				shellNote(a, "mpop", dest)
			case "maildir", "mbox":
				a.setDeliver(how, tomlString(dest))
			default:
				a.note("%s: popfetch delivers to a Maildir, an mbox, an MDA, LMTP or SMTP", at)
			}
		case "keep":
			a.set("keep", strconv.FormatBool(mpopOn(s.arg)))
		case "only_new":
			a.set("fetch_all", strconv.FormatBool(!mpopOn(s.arg)))
		case "skipsize":
			if v, ok := mpopSize(s.arg); ok {
				a.set("max_size", v)
			}
		case "killsize":
			if s.arg != "off" {
				a.note("%s: mpop deleted larger messages unseen; popfetch never deletes unseen mail: max_size leaves them on the server", at)
			}
		case "received_header":
			a.set("received_header", strconv.FormatBool(mpopOn(s.arg)))
		case "uidls_file":
			a.note("%s: popfetch keeps its own record of what was retrieved, in state_dir", at)
		case "pipelining":
			a.note("%s: popfetch pipelines when the server offers it", at)
		case "filter":
			a.note("%s: no equivalent: filter with the MDA (procmail, maildrop) or Sieve over LMTP", at)
		default:
			a.note("%s: no equivalent in popfetch", at)
		}
	}
	switch {
	case tls && starttls:
		a.set("tls", `"starttls"`)
	case tls:
		a.set("tls", `"implicit"`)
	default:
		a.set("tls", `"none"`)
		at := "mpop's tls is off by default"
		if tlsLine > 0 {
			at = fmt.Sprintf("mpop \"tls off\" (line %d)", tlsLine)
		}
		a.note("%s: the password went without TLS; popfetch refuses that unless allow_insecure = true "+
			"(for a host that is not loopback): better, tls = \"starttls\" or \"implicit\"", at)
	}
	if a.get("keep") == "true" {
		a.note("keep: popfetch keeps its own record of what was retrieved, not mpop's uidls_file; " +
			"its first run fetches every message on the server once more")
	}
	if auth := a.get("auth"); auth == `"xoauth2"` || auth == `"oauthbearer"` {
		// mpop sends what passwordeval prints as the bearer token.
		if cmd := a.get("password_command"); cmd != "" {
			a.unset("password_command")
			a.set("oauth_token_command", cmd)
		}
	}
	if a.get("password") == "" && a.get("password_command") == "" && a.get("oauth_token_command") == "" {
		a.note("mpop asked for the password: store it with popfetch password set %s, or set password_command", a.name)
	}
	if len(a.deliver) == 0 {
		a.note("no delivery: give maildir, mbox or mda under [account.deliver]")
	}
	return a
}

// mpopSize converts an mpop size (bytes, or with k or m, powers of 2) to
// a max_size value; "off" is none.
func mpopSize(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "off" || s == "" {
		return "", false
	}
	unit := ""
	switch {
	case strings.HasSuffix(s, "k"):
		unit, s = "KiB", strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		unit, s = "MiB", strings.TrimSuffix(s, "m")
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	if unit == "" {
		return s, true
	}
	return tomlString(s + unit), true
}

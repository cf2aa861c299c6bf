package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testFile = "/home/alice/.config/popfetch/config.toml"

// okAccount is a complete account of 5 lines: what follows it is in the
// account, from line 6.
const okAccount = `[[account]]
name = "ok"
host = "pop.example.org"
user = "alice"
deliver.maildir = "~/Mail"
`

// acct is a complete account named name, of 5 lines, followed by extra.
// Its user is name too: two accounts of one mailbox are an error.
func acct(name, extra string) string {
	a := strings.Replace(okAccount, `"ok"`, fmt.Sprintf("%q", name), 1)
	return strings.Replace(a, `"alice"`, fmt.Sprintf("%q", name), 1) + extra
}

// noDeliver is an account of 4 lines without a delivery target.
func noDeliver(name string) string { return replaceLine(acct(name, ""), 5, "") }

// replaceLine replaces line n (1-based) of src by text ("" removes it).
func replaceLine(src string, n int, text string) string {
	lines := strings.SplitAfter(src, "\n")
	if text == "" {
		lines[n-1] = ""
	} else {
		lines[n-1] = text + "\n"
	}
	return strings.Join(lines, "")
}

type wantErr struct {
	line int
	msg  string // a substring of the message
}

func TestParseErrors(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	ok := okAccount
	tests := []struct {
		name string
		src  string
		mode fs.FileMode // 0: no FileMode option
		want []wantErr
	}{
		// Syntax.
		{"syntax", "[[account]]\nname = \"a\"\nhost = = \"x\"\n", 0,
			[]wantErr{{3, "syntax error: "}}},
		{"syntax unterminated string", ok + "user2 = \"abc\n", 0,
			[]wantErr{{6, "syntax error: strings cannot contain newlines"}}},
		{"syntax duplicate key", ok + "host = \"again\"\n", 0,
			[]wantErr{{6, `syntax error: key 'account.host' has already been defined`}}},
		{"syntax after a multi-line string", ok + "password_command = \"\"\"\nx\n\"\"\"\nport = 1 2\n", 0,
			[]wantErr{{9, `syntax error: `}}},

		// The file as a whole.
		{"no accounts", "", 0, []wantErr{{0, "no accounts"}}},
		{"no accounts, only defaults", "[defaults]\ntimeout = \"5s\"\n", 0,
			[]wantErr{{0, "no accounts: add an [[account]] table"}}},
		{"account as a table", "[account]\nname = \"a\"\n", 0,
			[]wantErr{{1, `account must be an array of tables: write [[account]] before each account, not a table`}}},
		{"account as an array of strings", "account = [\"a\"]\n", 0,
			[]wantErr{{1, `account must be an array of tables`}}},
		{"account as an inline array", "account = [{ name = \"a\", host = \"h\", user = \"u\" },\n { name = \"b\", port = 0 }]\n", 0,
			[]wantErr{
				{1, `account "a": no delivery target`}, {1, `account "b": host is missing`},
				{1, `account "b": user is missing`}, {1, `account "b": no delivery target`},
				{2, `account "b": port 0 is out of range`},
			}},
		{"defaults as an array", "[[defaults]]\nkeep = true\n" + ok, 0,
			[]wantErr{{1, `defaults must be a table: write [defaults], not an array`}}},

		// Unknown keys.
		{"unknown top-level key", "colour = 1\n" + ok, 0,
			[]wantErr{{1, `unknown key "colour"`}}},
		{"misspelt top-level table", "[acount]\nx = 1\n" + ok, 0,
			[]wantErr{{1, `unknown key "acount" (did you mean "account"?)`}}},
		{"account key at top level", "host = \"x\"\n" + ok, 0,
			[]wantErr{{1, `unknown key "host" at the top level (account keys go in an [[account]] or in [defaults])`}}},
		{"unknown key in defaults", "[defaults]\ntimout = \"5s\"\n" + ok, 0,
			[]wantErr{{2, `defaults: unknown key "timout" (did you mean "timeout"?)`}}},
		{"unknown key in account", ok + "hots = \"x\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "hots" (did you mean "host"?)`}}},
		{"unknown key without a hint", ok + "colour = \"x\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "colour"`}}},
		{"unknown key in deliver", ok + "deliver.maildr = \"x\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "deliver.maildr" (did you mean "deliver.maildir"?)`}}},
		{"unknown key in a deliver table", noDeliver("ok") + "[account.deliver]\nmaildir = \"~/M\"\nmdaa = \"x\"\n", 0,
			[]wantErr{{7, `account "ok": unknown key "deliver.mdaa" (did you mean "deliver.mda"?)`}}},
		{"misspelled target in a deliver table", noDeliver("ok") + "[account.deliver]\nmaildri = \"~/M\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "deliver.maildri" (did you mean "deliver.maildir"?)`}}},
		{"unknown key in a deliver table without a hint", noDeliver("ok") + "[account.deliver]\nmailbox = \"~/M\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "deliver.mailbox" (the keys of [account.deliver] are maildir, mbox, mda, lmtp, smtp, recipient)`}}},
		{"unknown key in defaults.deliver", "[defaults.deliver]\nmbx = \"/m\"\n" + ok, 0,
			[]wantErr{{2, `defaults: unknown key "deliver.mbx" (did you mean "deliver.mbox"?)`}}},
		{"deliver key in account", noDeliver("ok") + "maildir = \"~/M\"\n", 0,
			[]wantErr{
				{1, `account "ok": no delivery target`},
				{5, `account "ok": unknown key "maildir" (did you mean deliver.maildir? it goes in [account.deliver])`},
			}},
		{"nested unknown table", ok + "[account.extra]\nx = 1\n", 0,
			[]wantErr{{6, `account "ok": unknown key "extra"`}}},

		// Types.
		{"port as a string", ok + "port = \"995\"\n", 0,
			[]wantErr{{6, `account "ok": port must be an integer, not a string (write port = 995, without quotes)`}}},
		{"port float", ok + "port = 995.0\n", 0,
			[]wantErr{{6, `port must be an integer, not a float`}}},
		{"keep as a string", ok + "keep = \"yes\"\n", 0,
			[]wantErr{{6, `account "ok": keep must be true or false, not a string (write keep = true or keep = false, without quotes)`}}},
		{"bool as an integer", ok + "received_header = 1\n", 0,
			[]wantErr{{6, `received_header must be true or false, not an integer`}}},
		{"host as a table", "[[account]]\nname = \"b\"\nuser = \"u\"\ndeliver.mbox = \"/m\"\n[account.host]\nx = 1\n", 0,
			[]wantErr{{5, `account "b": host must be a string, not a table`}}},
		{"string as an array", ok + "user2 = 1\noauth_client_id = [\"a\"]\n", 0,
			[]wantErr{{6, `unknown key "user2" (did you mean "user"?)`}, {7, `oauth_client_id must be a string, not an array`}}},
		{"date", ok + "timeout = 1979-05-27\n", 0,
			[]wantErr{{6, `timeout must be a duration string like "60s", not a date`}}},
		{"password not a string", ok + "password = 1234\n", 0o600,
			[]wantErr{{6, `account "ok": password must be a string, not an integer`}}},

		// Values.
		{"port out of range", ok + "port = 70000\n", 0,
			[]wantErr{{6, `account "ok": port 70000 is out of range 1-65535`}}},
		{"port zero", ok + "port = 0\n", 0,
			[]wantErr{{6, `port 0 is out of range`}}},
		{"tls", ok + "tls = \"ssl\"\n", 0,
			[]wantErr{{6, `account "ok": tls must be one of implicit, starttls, none, not "ssl"`}}},
		{"tls with a hint", ok + "tls = \"startls\"\n", 0,
			[]wantErr{{6, `(did you mean "starttls"?)`}}},
		{"auth", ok + "auth = \"md5\"\n", 0,
			[]wantErr{{6, `account "ok": auth must be one of auto, user, apop, plain, login, cram-md5, xoauth2, oauthbearer, not "md5"`}}},
		{"host with a port", replaceLine(acct("b", ""), 3, `host = "pop.example.org:995"`), 0,
			[]wantErr{{3, `account "b": host "pop.example.org:995" includes a port: write host = "pop.example.org" and port = 995`}}},
		{"host with a space", replaceLine(acct("b", ""), 3, `host = "pop example"`), 0,
			[]wantErr{{3, `account "b": host "pop example" is not a host name or IP address`}}},
		{"user with a newline", replaceLine(ok, 4, `user = "a\r\nDELE 1"`), 0,
			[]wantErr{{4, `account "ok": user must not contain control characters`}}},

		// Names.
		{"name missing", "[[account]]\nhost = \"h\"\nuser = \"u\"\ndeliver.mbox = \"/m\"\n", 0,
			[]wantErr{{1, `account #1: name is missing`}}},
		{"name empty", ok + replaceLine(acct("x", ""), 2, `name = ""`), 0,
			[]wantErr{{6, `account #2: name is missing`}}},
		{"name invalid", ok + acct("my work", ""), 0,
			[]wantErr{{7, `account #2: name "my work" may contain only letters, digits, ".", "_" and "-"`}}},
		{"name dot-dot", acct("..", ""), 0,
			[]wantErr{{2, `account #1: name ".." is not allowed`}}},
		{"name not a string", strings.Replace(ok, `"ok"`, "7", 1), 0,
			[]wantErr{{2, `account #1: name must be a string, not an integer`}}},
		{"name duplicate", ok + "\n" + ok, 0,
			[]wantErr{{8, `account "ok": duplicate name, first used at line 2`}}},
		{"name duplicate thrice", ok + acct("x", "") + ok + ok, 0,
			[]wantErr{{12, `account "ok": duplicate name, first used at line 2`}, {17, `account "ok": duplicate name, first used at line 2`}}},
		{"name duplicate with other errors", ok + ok + "port = 0\n", 0,
			[]wantErr{{7, `account "ok": duplicate name, first used at line 2`}, {11, `port 0 is out of range`}}},
		{"name in defaults", "[defaults]\nname = \"x\"\n" + ok, 0,
			[]wantErr{{2, `defaults: name cannot have a default`}}},

		// Required keys.
		{"host and user missing", "[[account]]\nname = \"a\"\ndeliver.mbox = \"/m\"\n", 0,
			[]wantErr{{1, `account "a": host is missing`}, {1, `account "a": user is missing`}}},
		{"host of the wrong type is not also missing", "[[account]]\nname = \"a\"\nhost = 1\nuser = \"u\"\ndeliver.mbox = \"/m\"\n", 0,
			[]wantErr{{3, `account "a": host must be a string, not an integer`}}},

		// Delivery.
		{"no delivery", noDeliver("ok"), 0,
			[]wantErr{{1, `account "ok": no delivery target: give deliver.maildir, deliver.mbox, deliver.mda, deliver.lmtp or deliver.smtp (in [account.deliver])`}}},
		{"empty deliver table", noDeliver("ok") + "[account.deliver]\n", 0,
			[]wantErr{{5, `account "ok": no delivery target`}}},
		{"empty delivery target", noDeliver("ok") + "[account.deliver]\nmbox = \"\"\n", 0,
			[]wantErr{{5, `account "ok": no delivery target`}}},
		{"deliver not a string", noDeliver("ok") + "deliver = \"~/Mail\"\n", 0,
			[]wantErr{{5, `account "ok": deliver must be a table with one of maildir, mbox, mda, lmtp or smtp, not a string`}}},
		{"deliver target not a string", noDeliver("ok") + "deliver.mda = [\"procmail\"]\n", 0,
			[]wantErr{{5, `account "ok": deliver.mda must be a string, not an array`}}},
		{"two delivery targets", ok + "deliver.mbox = \"~/mbox\"\n", 0,
			[]wantErr{{6, `account "ok": more than one delivery target: deliver.maildir (line 5), deliver.mbox (line 6); give exactly one`}}},
		{"two delivery targets in a table", noDeliver("ok") + "[account.deliver]\nmda = \"procmail\"\nmbox = \"/m\"\n", 0,
			[]wantErr{{7, `account "ok": more than one delivery target: deliver.mda (line 6), deliver.mbox (line 7); give exactly one`}}},
		{"three inline delivery targets", noDeliver("ok") + "deliver = { mda = \"procmail\", mbox = \"/m\", maildir = \"/d\" }\n", 0,
			[]wantErr{{5, `more than one delivery target: deliver.maildir (line 5), deliver.mbox (line 5), deliver.mda (line 5)`}}},
		{"two delivery targets in defaults", "[defaults]\ndeliver.mbox = \"/m\"\ndeliver.mda = \"x\"\n" + ok + noDeliver("b"), 0,
			[]wantErr{{3, `defaults: more than one delivery target: deliver.mbox (line 2), deliver.mda (line 3)`}}},

		// LMTP and SMTP.
		{"lmtp and maildir", ok + "deliver.lmtp = \"unix:/run/dovecot/lmtp\"\n", 0,
			[]wantErr{{6, `account "ok": more than one delivery target: deliver.maildir (line 5), deliver.lmtp (line 6); give exactly one`}}},
		{"lmtp without a port", noDeliver("ok") + "deliver.lmtp = \"localhost\"\n", 0,
			[]wantErr{{5, `account "ok": deliver.lmtp: "localhost" is neither unix:/path nor host:port`}}},
		{"lmtp relative socket", noDeliver("ok") + "deliver.lmtp = \"unix:run/lmtp\"\n", 0,
			[]wantErr{{5, `account "ok": deliver.lmtp "run/lmtp" is not an absolute path`}}},
		{"smtp bad port", noDeliver("ok") + "deliver.smtp = \"localhost:smtp\"\n", 0,
			[]wantErr{{5, `account "ok": deliver.smtp: "localhost:smtp": port "smtp" is not a number from 1 to 65535`}}},
		{"smtp not a string", noDeliver("ok") + "deliver.smtp = 25\n", 0,
			[]wantErr{{5, `account "ok": deliver.smtp must be a string, not an integer`}}},
		{"misspelled lmtp", noDeliver("ok") + "[account.deliver]\nlmpt = \"unix:/run/lmtp\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "deliver.lmpt" (did you mean "deliver.lmtp"?)`}}},
		{"smtp outside deliver", ok + "smtp = \"localhost\"\n", 0,
			[]wantErr{{6, `account "ok": unknown key "smtp" (did you mean deliver.smtp? it goes in [account.deliver])`}}},
		{"recipient with maildir", ok + "deliver.recipient = \"bob\"\n", 0,
			[]wantErr{{6, `account "ok": deliver.recipient is for deliver.lmtp and deliver.smtp only`}}},
		{"recipient with mda in defaults", "[defaults.deliver]\nmda = \"procmail\"\nrecipient = \"bob\"\n" + noDeliver("ok"), 0,
			[]wantErr{{3, `defaults: deliver.recipient is for deliver.lmtp and deliver.smtp only`}}},
		{"recipient not an address", noDeliver("ok") + "[account.deliver]\nsmtp = \"localhost\"\nrecipient = \"Bob <bob@x>\"\n", 0,
			[]wantErr{{7, `account "ok": deliver.recipient "Bob <bob@x>" is not an address`}}},
		{"recipient with the sender", noDeliver("ok") + "[account.deliver]\nsmtp = \"localhost\"\nrecipient = \"%F\"\n", 0,
			[]wantErr{{7, `account "ok": deliver.recipient: %F (the envelope sender) makes no sense here`}}},

		// Durations and sizes.
		{"bad timeout", ok + "timeout = \"5 minutes\"\n", 0,
			[]wantErr{{6, `account "ok": timeout: invalid duration "5 minutes" (write e.g. "90s", "5m", "1h30m", "30d")`}}},
		{"zero timeout", "[defaults]\ntimeout = \"0s\"\n" + ok, 0,
			[]wantErr{{2, `defaults: timeout must be more than 0`}}},
		{"negative timeout", ok + "timeout = \"-5s\"\n", 0,
			[]wantErr{{6, `timeout must be more than 0`}}},
		{"timeout as a number", ok + "timeout = 60\n", 0,
			[]wantErr{{6, `account "ok": timeout must be a duration string like "60s", not an integer (write timeout = "60s" for 60 seconds)`}}},
		{"bad delete_after", ok + "keep = true\ndelete_after = \"a month\"\n", 0,
			[]wantErr{{7, `account "ok": delete_after: invalid duration "a month"`}}},
		{"negative delete_after", ok + "keep = true\ndelete_after = \"-1d\"\n", 0,
			[]wantErr{{7, `delete_after must not be negative`}}},
		{"bad max_size", ok + "max_size = \"lots\"\n", 0,
			[]wantErr{{6, `account "ok": max_size: invalid size "lots"`}}},
		{"max_size unit", ok + "max_size = \"25 XB\"\n", 0,
			[]wantErr{{6, `max_size: invalid size "25 XB": unknown unit "XB"`}}},
		{"negative max_size", ok + "max_size = -1\n", 0,
			[]wantErr{{6, `max_size must not be negative`}}},
		{"max_size float", ok + "max_size = 1.5\n", 0,
			[]wantErr{{6, `max_size must be a size like "25MB" or a number of bytes, not a float`}}},
		{"negative max_messages", ok + "max_messages = -1\n", 0,
			[]wantErr{{6, `account "ok": max_messages must be 0 (no limit) or more, not -1`}}},
		{"huge max_messages", ok + "max_messages = 99999999999\n", 0,
			[]wantErr{{6, `max_messages 99999999999 is too large`}}},

		// Keys that go together.
		{"delete_after without keep", ok + "delete_after = \"30d\"\n", 0,
			[]wantErr{{6, `account "ok": delete_after needs keep = true`}}},
		{"delete_after with keep = false", ok + "keep = false\ndelete_after = \"30d\"\n", 0,
			[]wantErr{{7, `delete_after needs keep = true`}}},
		{"delete_after from defaults without keep", "[defaults]\ndelete_after = \"30d\"\n" + ok, 0,
			[]wantErr{{2, `account "ok": delete_after needs keep = true`}}},
		{"oauth_provider without client id", ok + "oauth_provider = \"google\"\n", 0,
			[]wantErr{{6, `account "ok": oauth_provider needs oauth_client_id`}}},
		{"oauth_provider and token command", ok + "oauth_token_command = \"tok\"\noauth_provider = \"google\"\noauth_client_id = \"c\"\n", 0,
			[]wantErr{{7, `account "ok": give oauth_token_command (line 6) or oauth_provider, not both`}}},
		{"xoauth2 without token", ok + "auth = \"xoauth2\"\n", 0,
			[]wantErr{{6, `account "ok": auth = "xoauth2" needs oauth_token_command or oauth_provider`}}},
		{"pin without tls", ok + "tls = \"none\"\ntls_fingerprint = \"sha256:" + fp + "\"\n", 0,
			[]wantErr{{7, `account "ok": tls_fingerprint has no effect with tls = "none"`}}},

		// Fingerprints and providers.
		{"bad fingerprint", ok + "tls_fingerprint = \"ab:cd\"\n", 0,
			[]wantErr{{6, `account "ok": tls_fingerprint: invalid fingerprint "ab:cd": want "sha256:" and 64 hex digits`}}},
		{"short fingerprint", ok + "tls_fingerprint = \"sha256:" + fp[1:] + "\"\n", 0,
			[]wantErr{{6, `tls_fingerprint: invalid fingerprint`}}},
		{"oauth_provider unknown", ok + "oauth_provider = \"yahoo\"\noauth_client_id = \"c\"\n", 0,
			[]wantErr{{6, `account "ok": oauth_provider must be "google", "microsoft" or an https:// token URL, not "yahoo"`}}},
		{"oauth_provider http", ok + "oauth_provider = \"http://example.org/token\"\noauth_client_id = \"c\"\n", 0,
			[]wantErr{{6, `oauth_provider "http://example.org/token": a token URL must use https (http only for a loopback host)`}}},
		{"oauth_provider without a host", ok + "oauth_provider = \"https:///token\"\noauth_client_id = \"c\"\n", 0,
			[]wantErr{{6, `oauth_provider must be`}}},

		// Paths.
		{"undefined variable", noDeliver("ok") + "deliver.maildir = \"$MAILDIR/x\"\n", 0,
			[]wantErr{{5, `account "ok": deliver.maildir: $MAILDIR is not set`}}},
		{"undefined variable in state_dir", "[defaults]\nstate_dir = \"${STATE}/popfetch\"\n" + ok, 0,
			[]wantErr{{2, `defaults: state_dir: $STATE is not set`}}},
		{"~user", ok + "tls_ca_file = \"~root/ca.pem\"\n", 0,
			[]wantErr{{6, `account "ok": tls_ca_file: cannot expand ~root: only ~ and ~/ are supported`}}},
		{"relative path", noDeliver("ok") + "deliver.mbox = \"mail/inbox\"\n", 0,
			[]wantErr{{5, `account "ok": deliver.mbox "mail/inbox" is not an absolute path (write /path or ~/path)`}}},

		// Passwords.
		{"password in a readable file", ok + "password = \"S3cret\"\n", 0o644,
			[]wantErr{{6, `account "ok": password in a file that group or others can read (mode 0644): chmod 600 ` + testFile + `, or use password_command`}}},
		{"password in a group-readable file", "[defaults]\npassword = \"S3cret\"\n" + ok + acct("b", ""), 0o640,
			[]wantErr{{2, `defaults: password in a file that group or others can read (mode 0640)`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.mode != 0 {
				opts = append(opts, FileMode(tt.mode))
			}
			cfg, err := Parse(testFile, []byte(tt.src), testEnv(), opts...)
			if err == nil {
				t.Fatalf("no error; accounts: %+v", cfg.Accounts)
			}
			if cfg != nil {
				t.Errorf("config returned with an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not *Errors: %v", err, err)
			}
			checkErrors(t, errs, tt.want)
		})
	}
}

func checkErrors(t *testing.T, errs *Errors, want []wantErr) {
	t.Helper()
	ok := len(errs.List) == len(want)
	for i := 0; ok && i < len(want); i++ {
		e := errs.List[i]
		prefix := fmt.Sprintf("%s:%d: ", testFile, want[i].line)
		if want[i].line == 0 {
			prefix = testFile + ": "
		}
		ok = e.File == testFile && e.Line == want[i].line && strings.Contains(e.Msg, want[i].msg) &&
			strings.HasPrefix(e.Error(), prefix)
	}
	if !ok {
		t.Errorf("errors:\n%v\nwant:", errs)
		for _, w := range want {
			t.Errorf("  line %d: ...%s...", w.line, w.msg)
		}
	}
}

func TestParseManyErrors(t *testing.T) {
	src := `[defaults]
timout = "5s"
max_size = "huge"

[[account]]
name = "work"
hots = "pop.example.org"
port = "995"
keep = "yes"
tls = "ssl"
[account.deliver]
maildir = "~/Mail"
mbox = "~/mbox"

[[account]]
name = "work"
host = "pop.example.org"
user = "bob"
deliver.mda = "procmail"
`
	_, err := Parse(testFile, []byte(src), testEnv())
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	checkErrors(t, errs, []wantErr{
		{2, `defaults: unknown key "timout" (did you mean "timeout"?)`},
		{3, `defaults: max_size: invalid size "huge"`},
		{5, `account "work": host is missing`},
		{5, `account "work": user is missing`},
		{7, `account "work": unknown key "hots" (did you mean "host"?)`},
		{8, `account "work": port must be an integer`},
		{9, `account "work": keep must be true or false`},
		{10, `account "work": tls must be one of`},
		{13, `account "work": more than one delivery target`},
		{16, `account "work": duplicate name, first used at line 6`},
	})
	// Error() gives one problem a line.
	if n := strings.Count(err.Error(), "\n"); n != len(errs.List)-1 {
		t.Errorf("Error() has %d newlines for %d errors:\n%s", n, len(errs.List), err)
	}
	if !strings.HasPrefix(err.Error(), testFile+":2: defaults: unknown key") {
		t.Errorf("Error() = %s", err)
	}
}

func TestParseDefaults(t *testing.T) {
	src := `# popfetch
[[account]]
name = "minimal"
host = "pop.example.org"
user = "alice"
deliver.maildir = "~/Mail"

[[account]]
name = "plain"
host = "10.0.0.1"
user = "bob"
tls = "starttls"
[account.deliver]
mbox = "$HOME/mbox"

[[account]]
name = "everything"
host = "::1"
port = 1110
tls = "none"
allow_insecure = true
user = "carol"
auth = "apop"
password_command = "pass show mail/carol"
keep = true
fetch_all = true
delete_after = "2w"
max_size = 1000
max_messages = 50
received_header = false
timeout = "90s"
state_dir = "${MAILROOT}/state"
deliver = { mda = "/usr/bin/procmail -d %T" }
`
	cfg, err := Parse(testFile, []byte(src), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != testFile || len(cfg.Accounts) != 3 {
		t.Fatalf("config %+v", cfg)
	}
	state := "/home/alice/.state/popfetch"
	want := []*Account{
		{
			Name: "minimal", Host: "pop.example.org", Port: 995, TLS: TLSImplicit, User: "alice",
			Auth: AuthAuto, ReceivedHeader: true, Timeout: time.Minute, StateDir: state,
			Deliver: Deliver{Maildir: "/home/alice/Mail"}, File: testFile,
			Lines: map[string]int{"": 2, "name": 3, "host": 4, "user": 5, "deliver": 6, "deliver.maildir": 6},
		},
		{
			Name: "plain", Host: "10.0.0.1", Port: 110, TLS: TLSStartTLS, User: "bob",
			Auth: AuthAuto, ReceivedHeader: true, Timeout: time.Minute, StateDir: state,
			Deliver: Deliver{Mbox: "/home/alice/mbox"}, File: testFile,
			Lines: map[string]int{"": 8, "name": 9, "host": 10, "user": 11, "tls": 12, "deliver": 13, "deliver.mbox": 14},
		},
		{
			Name: "everything", Host: "::1", Port: 1110, TLS: TLSNone, AllowInsecure: true, User: "carol",
			Auth: AuthAPOP, PasswordCommand: "pass show mail/carol", Keep: true, FetchAll: true,
			DeleteAfter: 14 * 24 * time.Hour, MaxSize: 1000, MaxMessages: 50, ReceivedHeader: false,
			Timeout: 90 * time.Second, StateDir: "/srv/mail/state", AdoptKey: "carol@::1",
			Deliver: Deliver{MDA: "/usr/bin/procmail -d %T"}, File: testFile,
			Lines: map[string]int{
				"": 16, "name": 17, "host": 18, "port": 19, "tls": 20, "allow_insecure": 21, "user": 22,
				"auth": 23, "password_command": 24, "keep": 25, "fetch_all": 26, "delete_after": 27,
				"max_size": 28, "max_messages": 29, "received_header": 30, "timeout": 31, "state_dir": 32,
				"deliver": 33, "deliver.mda": 33,
			},
		},
	}
	for i, a := range cfg.Accounts {
		if !reflect.DeepEqual(a, want[i]) {
			t.Errorf("account %d:\n got %+v\nwant %+v", i, *a, *want[i])
		}
	}
}

func TestParseDefaultsOverride(t *testing.T) {
	fp := strings.Repeat("AB:", 31) + "AB"
	src := `[defaults]
state_dir = "~/state"
timeout = "30s"
host = "pop.example.org"
tls = "starttls"
keep = true
delete_after = "30d"
max_size = "25MB"
tls_fingerprint = "sha256:` + fp + `"
oauth_provider = "http://127.0.0.1:8080/token"
oauth_client_id = "client"
[defaults.deliver]
maildir = "~/Mail/$USER"

[[account]]
name = "inherits"
user = "alice"

[[account]]
name = "overrides"
user = "bob"
host = "other.example.org"
port = 2110
timeout = "1d12h"
keep = false
delete_after = "0"
max_size = ""
tls = "implicit"
oauth_provider = ""
deliver.mbox = "~/mbox"
`
	env := testEnv()
	lookup := env.LookupEnv
	env.LookupEnv = func(n string) (string, bool) {
		if n == "USER" {
			return "alice", true
		}
		return lookup(n)
	}
	cfg, err := Parse(testFile, []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Accounts[0], cfg.Accounts[1]
	pin := "sha256:" + strings.Repeat("ab", 32)
	if a.Host != "pop.example.org" || a.Port != 110 || a.TLS != TLSStartTLS || a.Timeout != 30*time.Second ||
		!a.Keep || a.DeleteAfter != 30*24*time.Hour || a.MaxSize != 25e6 || a.StateDir != "/home/alice/state" ||
		a.TLSFingerprint != pin || a.OAuthProvider != "http://127.0.0.1:8080/token" || a.OAuthClientID != "client" ||
		a.Deliver != (Deliver{Maildir: "/home/alice/Mail/alice"}) {
		t.Errorf("inherits: %+v", *a)
	}
	// Keys from [defaults] have the defaults' lines.
	for k, line := range map[string]int{"": 15, "name": 16, "host": 4, "timeout": 3, "deliver": 12, "deliver.maildir": 13} {
		if a.Lines[k] != line {
			t.Errorf("inherits: line of %q = %d, want %d", k, a.Lines[k], line)
		}
	}
	if a.Line("port") != 15 || a.Line("host") != 4 {
		t.Errorf("Line: port %d, host %d", a.Line("port"), a.Line("host"))
	}
	// The account's deliver table replaces the default one.
	if b.Host != "other.example.org" || b.Port != 2110 || b.TLS != TLSImplicit || b.Timeout != 36*time.Hour ||
		b.Keep || b.DeleteAfter != 0 || b.MaxSize != 0 || b.OAuthProvider != "" ||
		b.Deliver != (Deliver{Mbox: "/home/alice/mbox"}) || b.StateDir != "/home/alice/state" {
		t.Errorf("overrides: %+v", *b)
	}
	if _, ok := b.Lines["deliver.maildir"]; ok || b.Lines["deliver.mbox"] != 30 {
		t.Errorf("overrides: lines %v", b.Lines)
	}
	if got, err := cfg.Select(nil); err != nil || len(got) != 2 {
		t.Errorf("Select(nil) = %v, %v", got, err)
	}
}

func TestParseLMTPAndSMTP(t *testing.T) {
	src := `[defaults.deliver]
lmtp = "unix:~/run/lmtp"
recipient = "%T@example.org"

[[account]]
name = "dovecot"
host = "pop.example.org"
user = "alice"

[[account]]
name = "mta"
host = "pop.example.org"
user = "bob"
deliver.smtp = "localhost"

[[account]]
name = "lmtp-tcp"
host = "pop.example.org"
user = "carol"
deliver = { lmtp = "127.0.0.1:24", recipient = "carol+pop" }
`
	cfg, err := Parse(testFile, []byte(src), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := []Deliver{
		{LMTP: "unix:/home/alice/run/lmtp", Recipient: "%T@example.org"},
		{SMTP: "localhost"},
		{LMTP: "127.0.0.1:24", Recipient: "carol+pop"},
	}
	for i, a := range cfg.Accounts {
		if a.Deliver != want[i] {
			t.Errorf("%s: %+v, want %+v", a.Name, a.Deliver, want[i])
		}
	}
	if l := cfg.Accounts[0].Lines["deliver.recipient"]; l != 3 {
		t.Errorf("line of deliver.recipient: %d", l)
	}
}

func TestParseEmptyEnv(t *testing.T) {
	src := "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\ndeliver.mbox = \"/m\"\n"
	_, err := Parse(testFile, []byte(src), Env{})
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	checkErrors(t, errs, []wantErr{{1, `account "a": no state_dir: $HOME and $XDG_STATE_HOME are not set`}})

	cfg, err := Parse(testFile, []byte(src+"state_dir = \"/s\"\n"), Env{})
	if err != nil || cfg.Accounts[0].StateDir != "/s" {
		t.Errorf("got %v, %v", cfg, err)
	}
}

func TestSelect(t *testing.T) {
	var src string
	for _, n := range []string{"work", "home", "list"} {
		src += fmt.Sprintf("[[account]]\nname = %q\nhost = \"h\"\nuser = %q\ndeliver.mbox = \"/m\"\n", n, n)
	}
	cfg, err := Parse(testFile, []byte(src), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	names := func(as []*Account) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Name)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, "work,home,list"},
		{[]string{}, "work,home,list"},
		{[]string{"list", "work"}, "work,list"},
		{[]string{"home", "home"}, "home"},
	} {
		got, err := cfg.Select(tt.in)
		if err != nil || names(got) != tt.want {
			t.Errorf("Select(%q) = %s, %v; want %s", tt.in, names(got), err, tt.want)
		}
	}
	_, err = cfg.Select([]string{"wrok", "home", "nope", "wrok"})
	var ue *UnknownAccountError
	if !errors.As(err, &ue) || !reflect.DeepEqual(ue.Names, []string{"wrok", "nope"}) {
		t.Fatalf("got %v", err)
	}
	if want := `unknown account "wrok" (did you mean "work"?); unknown account "nope": the accounts of ` + testFile + ` are work, home, list`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

// TestSecretNeverShown checks that no error shows a password, whatever is
// wrong around it.
func TestSecretNeverShown(t *testing.T) {
	const secret = "S3cr3t-pa55w0rd"
	srcs := []string{
		okAccount + "password = \"" + secret + "\"\n",                                // readable file
		okAccount + "password = \"" + secret + "\" \"" + secret + "\"\n",             // syntax
		okAccount + "password = \"" + secret + "\n",                                  // unterminated
		okAccount + "password = '" + secret + "\n",                                   // unterminated
		okAccount + "password = " + secret + "\n",                                    // unquoted
		okAccount + "password = \"" + secret + "\\q\"\n",                             // bad escape
		okAccount + "password = \"\"\"\n" + secret + "\\q\n\"\"\"\n",                 // bad escape, multi-line
		okAccount + "password = \"" + secret + "\"\npassword = \"" + secret + "\"\n", // duplicate
		okAccount + "password = [\"" + secret + "\"]\n",                              // type
		okAccount + "password = { x = \"" + secret + "\" }\n",                        // type
		okAccount + "pasword = \"" + secret + "\"\n",                                 // unknown key
		"password = \"" + secret + "\"\n" + okAccount,                                // top level
		"[defaults]\npassword = \"" + secret + "\"\n" + okAccount,                    // readable file
		okAccount + "password = \"" + secret + "\"\nport = \"x\"\n",                  // other errors
	}
	for i, src := range srcs {
		_, err := Parse(testFile, []byte(src), testEnv(), FileMode(0o644))
		if err == nil {
			t.Errorf("%d: no error", i)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
			t.Errorf("%d: error shows the password: %v", i, err)
		}
	}

	cfg, err := Parse(testFile, []byte(okAccount+"password = \""+secret+"\"\n"), testEnv(), FileMode(0o600))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	if a.Password != secret {
		t.Errorf("password %q", string(a.Password))
	}
	if s := fmt.Sprintf("%v %+v %#v %s", a, *a, *a, a.Password); strings.Contains(s, secret) {
		t.Errorf("account prints the password: %s", s)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string, mode fs.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
		return path
	}
	src := "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword = \"pw\"\ndeliver.mbox = \"/m\"\nstate_dir = \"/s\"\n"

	path := write("private.toml", src, 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("0600: %v", err)
	}
	if cfg.Path != path || cfg.Accounts[0].File != path || cfg.Accounts[0].Password != "pw" {
		t.Errorf("0600: %+v", cfg)
	}

	path = write("shared.toml", src, 0o644)
	_, err = Load(path)
	want := fmt.Sprintf("%s:5: account \"a\": password in a file that group or others can read (mode 0644): chmod 600 %s, or use password_command", path, path)
	if err == nil || err.Error() != want {
		t.Errorf("0644:\n got %v\nwant %s", err, want)
	}

	// Without a password, the mode does not matter.
	path = write("nopw.toml", strings.Replace(src, "password = \"pw\"\n", "", 1), 0o644)
	if _, err := Load(path); err != nil {
		t.Errorf("0644 without a password: %v", err)
	}

	missing := filepath.Join(dir, "missing.toml")
	_, err = Load(missing)
	var errs *Errors
	if !errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != missing+": cannot read: no such file or directory" {
		t.Errorf("missing: %v", err)
	}

	if _, err := Load(dir); !errors.As(err, &errs) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestLoadDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_STATE_HOME", "")
	dir := filepath.Join(home, ".config", "popfetch")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	src := "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\ndeliver.maildir = \"$HOME/Mail\"\n"
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	if a.Deliver.Maildir != filepath.Join(home, "Mail") || a.StateDir != filepath.Join(home, ".local", "state", "popfetch") {
		t.Errorf("%+v", *a)
	}
}

func TestClosest(t *testing.T) {
	known := append(accountKeyNames(), deliverKeyNames()...)
	for in, want := range map[string]string{
		"hots": "host", "prot": "port", "tsl": "tls", "usr": "user", "timout": "timeout",
		"maildr": "maildir", "mbx": "mbox", "keeep": "keep", "deleteafter": "delete_after",
		"nope": "", "x": "", "colour": "", "": "",
	} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMailboxIdentity(t *testing.T) {
	for _, tt := range []struct {
		port       int
		tls        TLSMode
		key, older string
	}{
		{995, TLSImplicit, "u@h", ""},
		{110, TLSStartTLS, "u@h", ""},
		{110, TLSNone, "u@h", ""},
		{995, TLSStartTLS, "u@h:995", "u@h"},
		{110, TLSImplicit, "u@h:110", "u@h"},
		{10995, TLSImplicit, "u@h:10995", "u@h"},
	} {
		a := &Account{User: "u", Host: "h", Port: tt.port, TLS: tt.tls}
		if a.Key() != tt.key || a.LegacyKey() != tt.older {
			t.Errorf("port %d %s: Key %q LegacyKey %q, want %q %q", tt.port, tt.tls, a.Key(), a.LegacyKey(), tt.key, tt.older)
		}
	}
}

func TestSameMailboxTwice(t *testing.T) {
	// two tunnels to one server: two mailboxes; the same port twice: one
	src := acct("a", "port = 10995\n") + acct("b", "port = 10996\n")
	src = strings.ReplaceAll(src, `user = "b"`, `user = "a"`)
	cfg, err := Parse(testFile, []byte(src), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if k0, k1 := cfg.Accounts[0].Key(), cfg.Accounts[1].Key(); k0 != "a@pop.example.org:10995" || k1 != "a@pop.example.org:10996" {
		t.Errorf("keys %q %q", k0, k1)
	}
	// Neither may adopt the old USER@HOST cache: both used it, and it
	// cannot tell whose UIDs it holds.
	if cfg.Accounts[0].AdoptKey != "" || cfg.Accounts[1].AdoptKey != "" {
		t.Errorf("AdoptKey %q %q, want none", cfg.Accounts[0].AdoptKey, cfg.Accounts[1].AdoptKey)
	}
	cfg, err = Parse(testFile, []byte(acct("a", "port = 10995\n")), testEnv())
	if err != nil || cfg.Accounts[0].AdoptKey != "a@pop.example.org" {
		t.Errorf("a lone tunnel: AdoptKey %q, %v", cfg.Accounts[0].AdoptKey, err)
	}
	src = acct("a", "") + acct("b", "port = 995\n")
	src = strings.ReplaceAll(src, `user = "b"`, `user = "a"`)
	_, err = Parse(testFile, []byte(src), testEnv())
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 1 || errs.List[0].Line != 6 ||
		!strings.Contains(errs.List[0].Msg, `same mailbox a@pop.example.org as account "a" at line 1`) {
		t.Fatalf("got %v", err)
	}
	// a standard-port account of the same user and host keeps the old cache
	src = acct("a", "") + acct("b", "port = 10995\n")
	src = strings.ReplaceAll(src, `user = "b"`, `user = "a"`)
	cfg, err = Parse(testFile, []byte(src), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Accounts[1].AdoptKey != "" {
		t.Errorf("AdoptKey %q, want none: account a owns a@pop.example.org", cfg.Accounts[1].AdoptKey)
	}
}

// TestKeyTable: every key is documented and can be checked and set, and
// NewAccount's defaults are what a minimal account loads with.
func TestKeyTable(t *testing.T) {
	for _, k := range Keys() {
		if k.Doc == "" || k.Type == "" || k.parse == nil || k.set == nil {
			t.Errorf("key %q: Doc, Type, parse and set are all needed", k.Name)
		}
		if strings.ContainsAny(k.Doc, "\n") {
			t.Errorf("key %q: Doc has a line break", k.Name)
		}
		if k.Target && !strings.HasPrefix(k.Name, "deliver.") {
			t.Errorf("key %q: a delivery target outside [account.deliver]", k.Name)
		}
	}
	env := Env{Home: "/home/alice"}
	cfg, err := Parse(testFile, []byte(okAccount), env)
	if err != nil {
		t.Fatal(err)
	}
	got := *cfg.Accounts[0]
	want := *NewAccount(env)
	want.Name, want.Host, want.User = "ok", "pop.example.org", "alice"
	want.Deliver.Maildir = "/home/alice/Mail"
	want.File = testFile
	got.Lines, want.Lines = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a minimal account loads as\n%#v\nwant NewAccount's defaults\n%#v", got, want)
	}
}

package cmd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfigCheckWhatFetchWouldHit: config check finds, as FILE:LINE
// lines with a did-you-mean where a close name is there, what a fetch
// would fail on; fetch fails on it the same way, before connecting
// (issue 12, point 9).
func TestConfigCheckWhatFetchWouldHit(t *testing.T) {
	e := newCLIEnv(t)
	dir := e.dir
	file := filepath.Join(dir, "a-file")
	notMaildir := filepath.Join(dir, "Documents")
	for _, p := range []string{file, filepath.Join(notMaildir, "letter.txt")} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "Mail"), 0o700)
	for _, tc := range []struct {
		name, extra, deliver, want string
	}{
		{"missing tls_ca_file", `tls_ca_file = "` + dir + `/ca.perm"`, "",
			`tls_ca_file ` + dir + `/ca.perm: no such file or directory (did you mean ` + dir + `/ca.pem?)`},
		{"tls_ca_file without a certificate", `tls_ca_file = "` + file + `"`, "",
			`tls_ca_file ` + file + ` holds no PEM certificate`},
		{"mda program misspelled", "", `mda = "/usr/bin/procmial -d %T"`,
			`mda program /usr/bin/procmial: no such file or directory (did you mean /usr/bin/procmail?)`},
		{"mda program not in PATH", "", `mda = "procmial -d %T"`,
			`mda program "procmial" is not in $PATH (` + os.Getenv("PATH") + `) (did you mean procmail?)`},
		{"mbox directory missing", "", `mbox = "` + dir + `/Mial/inbox"`,
			`mbox ` + dir + `/Mial/inbox: the directory ` + dir + `/Mial does not exist (popfetch creates the mbox file, not directories) (did you mean ` + dir + `/Mail?)`},
		{"mbox is a directory", "", `mbox = "` + dir + `/Mail"`,
			`mbox ` + dir + `/Mail is a directory, not a file`},
		{"state_dir under a file", `state_dir = "` + file + `/state"`, "",
			`state_dir ` + file + `/state: ` + file + ` is a file, not a directory`},
		{"maildir not a Maildir", "", `maildir = "` + notMaildir + `"`,
			`maildir ` + notMaildir + ` is a directory of 1 entries that is not a Maildir (it has none of cur, new and tmp)`},
		{"maildir under a file", "", `maildir = "` + file + `/Maildir"`,
			`maildir ` + file + `/Maildir: ` + file + ` is a file, not a directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.accts = nil
			a := e.addAccount(&cliAccount{name: "p", password: "pw", extra: tc.extra, deliver: tc.deliver,
				noCA: strings.HasPrefix(tc.extra, "tls_ca_file")}, "pw")
			a.mb.Add(testMessage(1))
			line := lineOf(t, e.config, strings.SplitN(tc.extra+tc.deliver, " ", 2)[0]+" ")
			want := e.config + ":" + line + `: account "p": ` + tc.want
			code, _, errs := e.run("config", "check")
			if code != exitConfig || !strings.HasPrefix(errs, want) {
				t.Errorf("config check: exit %d\n%s\nwant\n%s", code, errs, want)
			}
			sessions := e.srv.Sessions()
			code, _, errs = e.run("fetch")
			if code != exitConfig || !strings.HasPrefix(errs, "popfetch: p: error: "+want) {
				t.Errorf("fetch: exit %d\n%s\nwant\n%s", code, errs, want)
			}
			if e.srv.Sessions() != sessions {
				t.Errorf("fetch connected")
			}
		})
	}
}

// lineOf returns the number of the last line of path that starts with
// prefix.
func lineOf(t *testing.T, path, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n = i + 1
		}
	}
	if n == 0 {
		t.Fatalf("no line %q... in\n%s", prefix, b)
	}
	return strconv.Itoa(n)
}

// TestConfigCheckPortAndTLS: a port that does not fit the TLS mode is
// warned about; the check passes.
func TestConfigCheckPortAndTLS(t *testing.T) {
	code, path, out, errs := configCheck(t, `
[[account]]
name = "a"
host = "pop.example.org"
port = 995
tls = "starttls"
user = "alice"
password_command = "pass a"
[account.deliver]
mda = "/usr/bin/procmail -d %T"

[[account]]
name = "b"
host = "pop.example.org"
port = 110
user = "bob"
password_command = "pass b"
[account.deliver]
mda = "/usr/bin/procmail -d %T"
`)
	if code != 0 || out != path+": 2 accounts OK\n" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		path + `:5: warning: account "a": port 995 is the port of implicit TLS (pop3s), not of tls = "starttls": set tls = "implicit"`,
		path + `:15: warning: account "b": port 110 is the port of POP3 without TLS (STLS), not of implicit TLS: set tls = "starttls"`,
	} {
		if !strings.Contains(errs, want+"\n") {
			t.Errorf("stderr:\n%s\nwant\n%s", errs, want)
		}
	}
}

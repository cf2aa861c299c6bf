package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// configCheck writes a configuration and runs popfetch config check on it.
func configCheck(t *testing.T, toml string) (code int, path, stdout, stderr string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runMain(t, "-c", path, "config", "check")
	return code, path, stdout, stderr
}

func TestConfigCheckReportsEveryProblem(t *testing.T) {
	code, path, out, errs := configCheck(t, `[defaults]
timeout = "soon"

[[account]]
name = "personal"
host = "pop.example.org"
user = "alice"
password_command = "pass show mail"
hots = "typo"

[account.deliver]
maildir = "/tmp/Mail"
mbox = "/tmp/mbox"

[[account]]
name = "personal"
host = "pop.example.net"
user = "bob"
password_command = "pass show bob"
max_size = "lots"
[account.deliver]
maildir = "/tmp/Mail2"
`)
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	var gotLines []int
	for _, l := range lines {
		var n int
		rest, ok := strings.CutPrefix(l, path+":")
		if !ok {
			t.Errorf("not FILE:LINE: %q", l)
			continue
		}
		if _, err := fmt.Sscanf(rest, "%d:", &n); err != nil {
			t.Errorf("no line number: %q", l)
		}
		gotLines = append(gotLines, n)
	}
	// every problem, each at its line: the bad duration, the unknown key,
	// the second delivery target, the duplicate name, the bad size
	if want := []int{2, 9, 13, 16, 20}; !slices.Equal(gotLines, want) {
		t.Errorf("problems at lines %v, want %v:\n%s", gotLines, want, errs)
	}
	for _, want := range []string{"soon", "hots", "lots", "personal"} {
		if !strings.Contains(errs, want) {
			t.Errorf("no mention of %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "popfetch: error:") {
		t.Errorf("problems are FILE:LINE lines, not wrapped:\n%s", errs)
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	code, _, errs := runMain(t, "-c", path, "config", "check")
	if code != exitConfig || !strings.HasPrefix(errs, path+": cannot read: ") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestConfigCheckOK(t *testing.T) {
	code, path, out, errs := configCheck(t, `
[[account]]
name = "a"
host = "pop.example.org"
user = "alice"
password_command = "pass a"
[account.deliver]
mda = "/usr/bin/procmail -d %T"

[[account]]
name = "b"
host = "pop.example.org"
user = "bob"
password_command = "pass b"
[account.deliver]
mda = "/usr/bin/env -f '%F' \"a|b\" x\\;y"
`)
	if code != 0 || out != path+": 2 accounts OK\n" || errs != "" {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

// An mda command with shell operators is valid but surely not meant: it is
// warned about, at its line, and the check still passes.
func TestConfigCheckWarnsAboutShellOperators(t *testing.T) {
	code, path, out, errs := configCheck(t, `
[[account]]
name = "a"
host = "pop.example.org"
user = "alice"
password_command = "pass a"
[account.deliver]
mda = "/usr/bin/procmail -d %T | tee -a /tmp/log; echo done > /tmp/x"
`)
	if code != 0 || out != path+": 1 account OK\n" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	want := path + `:8: warning: mda of account "a" contains "|", ";", ">" outside quotes; popfetch runs the command without a shell`
	if !strings.HasPrefix(errs, want) || strings.Count(errs, "\n") != 1 {
		t.Errorf("stderr:\n%s\nwant:\n%s...", errs, want)
	}
}

func TestShellOperators(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		want []string
	}{
		{"procmail -d %T", nil},
		{"procmail | tee", []string{"|"}},
		{"a;b&c>d<e|f;g", []string{";", "&", ">", "<", "|"}},
		{`a '|;&><' "|;&><"`, nil},
		{`a \| \; \& \> \<`, nil},
		{`a "b\"|" |`, []string{"|"}},
		{`a 'b\' ;`, []string{";"}},
		{`a "unterminated |`, nil},
		{"2>&1", []string{">", "&"}},
	} {
		if got := shellOperators(c.cmd); !slices.Equal(got, c.want) {
			t.Errorf("shellOperators(%q) = %q, want %q", c.cmd, got, c.want)
		}
	}
}

// TestDiagnosesPointAtTheFix: the messages of issue 12, point 11, each
// with what to do.
func TestDiagnosesPointAtTheFix(t *testing.T) {
	e := newCLIEnv(t, serverSetup(func(s *pop3test.Server) { s.Mechanisms = []string{"PLAIN", "LOGIN"} }))
	e.add("personal", "")
	e.add("work", `auth = "cram-md5"`)

	_, errs := e.mustRun(exitUsage, "fetch", "persnal", "x")
	if want := `popfetch: error: unknown account "persnal" (did you mean "personal"?); unknown account "x": the accounts of ` +
		e.config + ` are personal, work`; !strings.Contains(errs, want) {
		t.Errorf("fetch persnal x said:\n%s\nwant %s", errs, want)
	}

	_, errs = e.mustRun(exitNoPerm, "fetch", "work")
	if want := `(the server does not offer cram-md5; it offers user, apop, plain, login: set auth to one of them, or to "auto")`; !strings.Contains(errs, want) {
		t.Errorf("auth = cram-md5 said:\n%s\nwant %s", errs, want)
	}

	code, path, _, errs := configCheck(t, "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\ntimeout = 60\n[account.deliver]\nmaildri = \"/tmp/M\"\n")
	for _, want := range []string{
		path + `:5: account "a": timeout must be a duration string like "60s", not an integer (write timeout = "60s" for 60 seconds)`,
		path + `:7: account "a": unknown key "deliver.maildri" (did you mean "deliver.maildir"?)`,
	} {
		if code != exitConfig || !strings.Contains(errs, want) {
			t.Errorf("config check: exit %d\n%s\nwant %s", code, errs, want)
		}
	}
}

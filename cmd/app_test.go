package cmd

import (
	"strings"
	"testing"
)

// TestGlobalFlagsAfterTheCommandWord: -c, -v, -q and --progress work before
// or after the command word, and after a subcommand's (CONTRACT §3).
func TestGlobalFlagsAfterTheCommandWord(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "keep = true")
	a.mb.Add(testMessage(1))

	// -c after the word, for a command and a subcommand.
	for _, args := range [][]string{
		{"check", "-c", e.config},
		{"check", "--config", e.config, "personal"},
		{"config", "check", "-c", e.config},
		{"config", "-c", e.config, "check"},
		{"cache", "list", "-c", e.config, "personal"},
	} {
		code, out, errs := runMain(t, args...)
		if code != 0 {
			t.Errorf("popfetch %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
		}
	}

	// -v after the word: the summary at -v; -v on both sides is -vv, the
	// protocol trace.
	_, errs := e.mustRun(0, "fetch", "-v", "--progress", "never")
	if !strings.Contains(errs, "popfetch: personal: 1 new, 1 fetched") || strings.Contains(errs, "C: ") {
		t.Errorf("fetch -v said:\n%s", errs)
	}
	_, errs = e.mustRun(0, "-v", "fetch", "-v", "--progress=never")
	if !strings.Contains(errs, "popfetch: personal: C: CAPA") {
		t.Errorf("-v fetch -v traced nothing:\n%s", errs)
	}
	_, errs = e.mustRun(0, "-vv", "fetch", "-q")
	if errs != "" {
		t.Errorf("fetch -q said:\n%s", errs)
	}
	code, _, errs := e.run("fetch", "--progress", "sometimes")
	if code != exitUsage || !strings.Contains(errs, `--progress "sometimes": want auto, always or never`) {
		t.Errorf("fetch --progress sometimes: exit %d\n%s", code, errs)
	}
}

// TestFetchFlagsBeforeTheCommandWord: the application takes fetch's flags
// for `popfetch` without a command; before `fetch` they are fetch's, and
// before any other command they are an error rather than ignored.
func TestFetchFlagsBeforeTheCommandWord(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	a.mb.Add(testMessage(1))

	code, _, errs := e.run("--keep", "check")
	if code != exitUsage || !strings.Contains(errs, "popfetch: error: --keep is a flag of fetch, not of check") {
		t.Errorf("--keep check: exit %d\n%s", code, errs)
	}
	e.mustRun(0, "--keep", "fetch")
	if n := a.mb.Len(); n != 1 {
		t.Errorf("--keep fetch left %d messages on the server, want 1", n)
	}
	if n := e.delivered(a); n != 1 {
		t.Errorf("%d delivered, want 1", n)
	}
	e.mustRun(0, "--keep", "fetch", "--no-keep", "--all")
	if n := a.mb.Len(); n != 0 {
		t.Errorf("--keep fetch --no-keep left %d messages on the server", n)
	}
}

// TestUsageHintNamesTheCommand: a bad command line points to the help of
// the command it was for.
func TestUsageHintNamesTheCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fetch", "--no-such-flag"}, "popfetch: hint: see popfetch fetch --help\n"},
		{[]string{"cache", "list"}, "popfetch: hint: see popfetch cache list --help\n"},
		{[]string{"--no-such-flag"}, "popfetch: hint: see popfetch --help\n"},
	} {
		code, _, errs := e.run(tc.args...)
		if code != exitUsage || !strings.HasSuffix(errs, tc.want) {
			t.Errorf("popfetch %s: exit %d\n%s\nwant it to end with %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
}

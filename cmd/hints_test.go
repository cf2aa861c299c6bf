package cmd

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// TestOneOffFlagsNeedHost: a one-off flag without --host would be ignored
// for a configured account; it is a usage error naming the flag, before
// anything is fetched (CONTRACT §3).
func TestOneOffFlagsNeedHost(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	a.mb.Add(testMessage(1))
	mbox := e.dir + "/mbox"
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"fetch", "--mbox", mbox, "personal"}, "--mbox"},
		{[]string{"fetch", "--port", "1100"}, "--port"},
		{[]string{"fetch", "--tls", "starttls", "personal"}, "--tls"},
		{[]string{"fetch", "--user", "someone"}, "--user"},
		{[]string{"--maildir", e.dir + "/M"}, "--maildir"},
		{[]string{"--mbox", mbox, "fetch"}, "--mbox"},
		{[]string{"serverinfo", "--port", "1", "personal"}, "--port"},
		{[]string{"serverinfo", "--tls-fingerprint", "sha256:00", "personal"}, "--tls-fingerprint"},
		{[]string{"password", "set", "--user", "u", "personal"}, "--user"},
		{[]string{"cache", "list", "--tls", "none", "personal"}, "--tls"},
	} {
		code, _, errs := e.run(tc.args...)
		want := "popfetch: error: " + tc.flag + " needs --host: the one-off flags define an account without a configuration file"
		if code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("popfetch %s: exit %d\n%s\nwant 64 and %q", strings.Join(tc.args, " "), code, errs, want)
		}
	}
	if n := e.delivered(a); n != 0 || a.mb.Len() != 1 {
		t.Errorf("%d delivered, %d on the server: a refused command line fetched", n, a.mb.Len())
	}
	if n := e.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions for refused command lines", n)
	}
}

// hintCommand returns the command quoted in backticks on the hint or
// error lines of stderr that contain about, split into arguments as a
// shell would (without "popfetch").
func hintCommand(t *testing.T, stderr, about string) []string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, about) {
			continue
		}
		for _, m := range regexp.MustCompile("`(popfetch [^`]*)`").FindAllStringSubmatch(line, -1) {
			words := shellWords(t, m[1])
			return words[1:]
		}
	}
	t.Fatalf("no command about %q in:\n%s", about, stderr)
	return nil
}

// shellWords splits a command line as a POSIX shell would, for the words
// shellJoin makes: plain, or in single quotes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteByte(c)
		case c == '\'':
			quoted, in = true, true
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case strings.IndexByte("\"\\$`;&|<>", c) >= 0:
			t.Fatalf("%q: a shell would read %q specially", s, c)
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quoted {
		t.Fatalf("%q: unterminated quote", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// TestHintsWorkAsPrinted: the commands hints name run as printed — with
// -c FILE for a configuration that is not the default, with the one-off
// flags for a one-off fetch — and do what the hint says.
func TestHintsWorkAsPrinted(t *testing.T) {
	t.Run("configured untrusted certificate", func(t *testing.T) {
		e := newCLIEnv(t)
		e.addAccount(&cliAccount{name: "work", noCA: true, password: "pw"}, "pw")
		_, errs := e.mustRun(exitUnavailable, "fetch")
		args := hintCommand(t, errs, "shows the certificate")
		if args[0] != "-c" || args[1] != e.config || args[2] != "serverinfo" || args[3] != "work" {
			t.Errorf("hint %q, want -c CONFIG serverinfo work", args)
		}
		code, out, serr := runMain(t, args...)
		if code != exitUnavailable || !strings.Contains(out, "certificate:           NOT TRUSTED") {
			t.Errorf("popfetch %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, serr)
		}
	})
	t.Run("one-off untrusted certificate", func(t *testing.T) {
		e := newCLIEnv(t)
		e.srv.AddUser("solo", "pw").Add(testMessage(1))
		host, port, _ := net.SplitHostPort(e.srv.Addr())
		_, errs := mustMain(t, exitUnavailable, "fetch", "--host", host, "--port", port, "--user", "solo",
			"--password-command", "echo pw", "--maildir", e.dir+"/M")
		args := hintCommand(t, errs, "shows the certificate")
		want := []string{"serverinfo", "--host", host, "--port", port, "--user", "solo"}
		if strings.Join(args, " ") != strings.Join(want, " ") {
			t.Errorf("hint %q, want %q", args, want)
		}
		if !strings.Contains(errs, "--tls-fingerprint") {
			t.Errorf("the hint for a one-off fetch names the configuration keys:\n%s", errs)
		}
		code, out, serr := runMain(t, args...)
		if code != exitUnavailable || !strings.Contains(out, "certificate:           NOT TRUSTED") {
			t.Fatalf("popfetch %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, serr)
		}
		// serverinfo's pin, given as the hint says, makes the fetch work.
		pin := regexp.MustCompile(`tls_fingerprint = "(sha256:[0-9a-f]+)"`).FindStringSubmatch(out)
		if pin == nil {
			t.Fatalf("no pin in:\n%s", out)
		}
		mustMain(t, 0, "fetch", "--host", host, "--port", port, "--user", "solo",
			"--password-command", "echo pw", "--maildir", e.dir+"/M", "--tls-fingerprint", pin[1])
	})
	t.Run("cache list after a refused forget", func(t *testing.T) {
		e := newCLIEnv(t)
		a := e.add("kept", "keep = true")
		a.mb.Add(testMessage(1))
		e.mustRun(0, "fetch")
		_, errs := e.mustRun(exitUsage, "cache", "forget", "kept", "no-such-uid")
		args := hintCommand(t, errs, "shows the UIDs remembered")
		code, out, serr := runMain(t, args...)
		if code != 0 || !strings.Contains(out, "1 UID") {
			t.Errorf("popfetch %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, serr)
		}
	})
	t.Run("tripwire", func(t *testing.T) {
		e := newCLIEnv(t)
		a := e.add("kept", "keep = true")
		for i := range 12 {
			a.mb.Add(testMessage(i))
		}
		// The cache remembers UIDs none of which is on the server.
		c, err := uidcache.Open(e.state, e.key(a))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			c.Put(fmt.Sprintf("old-%d", i), uidcache.Entry{Seen: time.Now(), State: uidcache.Retrieved})
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		_, errs := e.mustRun(exitCacheMatch, "fetch")
		args := hintCommand(t, errs, "fetches them all as new")
		code, _, serr := runMain(t, args...)
		if code != 0 || e.delivered(a) != 12 {
			t.Errorf("popfetch %s: exit %d, %d delivered\n%s", strings.Join(args, " "), code, e.delivered(a), serr)
		}
	})
}

// mustMain runs popfetch args... (no -c) and fails unless it exits want.
func mustMain(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errs := runMain(t, args...)
	if code != want {
		t.Fatalf("popfetch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// TestOneOffServerinfoAndCache: serverinfo and cache take the one-off
// flags in place of ACCOUNT.
func TestOneOffServerinfoAndCache(t *testing.T) {
	e := newCLIEnv(t, plainServer(), serverSetup(func(s *pop3test.Server) { s.OfferSTLS = true }))
	e.srv.AddUser("solo", "pw").Add(testMessage(1))
	host, port, _ := net.SplitHostPort(e.srv.Addr())
	out, _ := mustMain(t, 0, "serverinfo", "--host", host, "--port", port, "--tls", "starttls", "--tls-ca-file", e.ca)
	if !strings.Contains(out, "capabilities (TLS):") || !strings.Contains(out, "trusted: verified against the system roots and "+e.ca) {
		t.Errorf("serverinfo said:\n%s", out)
	}
	state := e.dir + "/state"
	t.Setenv("XDG_STATE_HOME", state)
	mustMain(t, 0, "fetch", "--keep", "--host", host, "--port", port, "--tls", "starttls", "--tls-ca-file", e.ca,
		"--user", "solo", "--password-command", "echo pw", "--maildir", e.dir+"/M")
	out, _ = mustMain(t, 0, "cache", "list", "--host", host, "--port", port, "--tls", "starttls", "--user", "solo")
	if !strings.Contains(out, "(solo@"+host+":"+port+")") || !strings.Contains(out, "1 UID") {
		t.Errorf("cache list said:\n%s", out)
	}
	code, _, errs := runMain(t, "cache", "list", "--host", host, "personal")
	if code != exitUsage || !strings.Contains(errs, "takes no ACCOUNT with it") {
		t.Errorf("cache list --host with an ACCOUNT: exit %d\n%s", code, errs)
	}
}

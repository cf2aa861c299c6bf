package cmd

import (
	"strings"
	"testing"
)

// TestMDAFailureLines: each message an MDA fails on gets one line, in the
// style of every other line, and nothing repeats it; an MDA's "try later"
// (exit 75) is a notice shown at -v only, so cron mails nothing, and the
// run exits 75 (issue 12, point 10).
func TestMDAFailureLines(t *testing.T) {
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "p", password: "pw",
		deliver: `mda = "sh -c 'cat >/dev/null; echo procmail: cannot write >&2; exit 1'"`}, "pw")
	u1 := a.mb.Add(testMessage(1))
	u2 := a.mb.Add(testMessage(2))

	_, errs := e.mustRun(exitIOErr, "fetch")
	want := "popfetch: p: error: message 1 (uid " + u1 + ") not delivered; it stays on the server: mda delivery: running sh: exited with status 1: procmail: cannot write\n" +
		"popfetch: p: error: message 2 (uid " + u2 + ") not delivered; it stays on the server: mda delivery: running sh: exited with status 1: procmail: cannot write\n"
	if errs != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, want)
	}
	_, errs = e.mustRun(exitIOErr, "fetch", "-q")
	if errs != want {
		t.Errorf("-q: stderr:\n%s\nwant:\n%s", errs, want)
	}

	e.accts[0].deliver = `mda = "sh -c 'cat >/dev/null; exit 75'"`
	e.writeConfig()
	_, errs = e.mustRun(exitTempFail, "fetch")
	if errs != "" {
		t.Errorf("an MDA's try later said, without -v:\n%s", errs)
	}
	_, errs = e.mustRun(exitTempFail, "fetch", "-v")
	for _, w := range []string{
		"popfetch: p: message 1 (uid " + u1 + ") not delivered; it stays on the server: mda delivery: running sh: exited with status 75 (temporary failure)\n",
		"popfetch: p: message 2 (uid " + u2 + ") not delivered; it stays on the server: mda delivery: running sh: exited with status 75 (temporary failure)\n",
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("-v: stderr lacks\n%s\nit is:\n%s", w, errs)
		}
	}
	if strings.Contains(errs, "error:") || strings.Contains(errs, "warning:") {
		t.Errorf("-v: a try later shown as a problem:\n%s", errs)
	}
	if a.mb.Len() != 2 || e.delivered(a) != 0 {
		t.Errorf("%d on the server, %d delivered", a.mb.Len(), e.delivered(a))
	}
}

// TestTLSModeMistakes: tls = "starttls" on a port of implicit TLS, and
// implicit TLS on a plain port, are told at once (the timeout is an hour)
// with the fix, for fetch and serverinfo alike (issue 12, point 8).
func TestTLSModeMistakes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain bool
		tls   string
		want  string
	}{
		{"starttls on a TLS port", false, "starttls", `speaks TLS from the first byte, where tls = "starttls" waits for a greeting in plain text: set tls = "implicit"`},
		{"none on a TLS port", false, "none", `speaks TLS from the first byte, where tls = "none" waits for a greeting in plain text: set tls = "implicit"`},
		{"implicit on a plain port", true, "implicit", `speaks POP3 without TLS (it greeted where a TLS handshake was expected): set tls = "starttls" (or "none")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.plain {
				opts = append(opts, plainServer())
			}
			e := newCLIEnv(t, opts...)
			a := e.addAccount(&cliAccount{name: "p", password: "pw", tls: tc.tls, noCA: tc.tls == "none", extra: `timeout = "1h"`}, "pw")
			a.mb.Add(testMessage(1))
			_, port, _ := strings.Cut(e.srv.Addr(), ":")
			_, errs := e.mustRun(exitConfig, "fetch")
			if want := "popfetch: p: error: port " + port + " " + tc.want + "\n"; !strings.HasPrefix(errs, want) {
				t.Errorf("fetch said:\n%s\nwant it to start with\n%s", errs, want)
			}
			if want := "popfetch: hint: tls is set at " + e.config + ":"; !strings.Contains(errs, want) {
				t.Errorf("fetch said:\n%s\nwant %s", errs, want)
			}
			_, errs = e.mustRun(exitConfig, "serverinfo", "p")
			if !strings.Contains(errs, tc.want) {
				t.Errorf("serverinfo said:\n%s", errs)
			}
			if e.delivered(a) != 0 {
				t.Error("delivered")
			}
		})
	}
}

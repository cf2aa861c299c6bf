package cmd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// siEnv starts a server with user alice, with implicit TLS or (plain,
// offering STLS unless noSTLS) not, and configures account "s" for it
// with tls = tlsMode, whose password_command would create the file
// "asked": serverinfo must never run it. The server's certificate is
// trusted only if extra says so.
func siEnv(t *testing.T, implicit, noSTLS bool, tlsMode, extra string) *cliEnv {
	t.Helper()
	opts := []envOption{serverSetup(func(s *pop3test.Server) { s.OfferSTLS = !noSTLS })}
	if !implicit {
		opts = append(opts, plainServer())
	}
	e := newCLIEnv(t, opts...)
	pwCmd := fmt.Sprintf("password_command = \"touch %s; echo secret\"\n", filepath.Join(e.dir, "asked"))
	e.addAccount(&cliAccount{name: "s", user: "alice", tls: tlsMode, noCA: true, extra: pwCmd + extra}, "secret")
	return e
}

// siPin is the tls_fingerprint of the server's certificate.
func siPin(srv *pop3test.Server) string {
	sum := sha256.Sum256(srv.Certificate().Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type siResult struct {
	code           int
	stdout, stderr string
}

func siRun(e *cliEnv, args ...string) siResult {
	e.t.Helper()
	code, out, errs := e.run(args...)
	return siResult{code, out, errs}
}

// siNoLogin checks that the server received no command that logs in or
// carries a credential, and that the password was never looked up.
func siNoLogin(t *testing.T, e *cliEnv) {
	t.Helper()
	for _, l := range e.srv.Received() {
		w, _, _ := strings.Cut(l, " ")
		switch strings.ToUpper(w) {
		case "USER", "PASS", "APOP", "AUTH":
			t.Errorf("serverinfo sent %q", l)
		}
		if strings.Contains(l, "secret") {
			t.Errorf("serverinfo sent the password: %q", l)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "asked")); err == nil {
		t.Error("serverinfo ran password_command")
	}
}

// siField returns the value of "key:" in serverinfo's output.
func siField(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in the output:\n%s", key, out)
	return ""
}

// TestServerinfoImplicit: everything the contract lists, the pin line
// byte-exact, and nothing but CAPA and QUIT sent.
func TestServerinfoImplicit(t *testing.T) {
	e := siEnv(t, true, false, "implicit", "")
	e.accts[0].noCA = false
	e.writeConfig()
	srv, ca := e.srv, e.ca
	r := siRun(e, "serverinfo", "s")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for key, want := range map[string]string{
		"account":             "s",
		"server":              srv.Addr() + " (connected to " + srv.Addr() + ")",
		"tls mode":            "implicit",
		"greeting":            `^\+OK pop3test ready <[0-9a-f]+\.[0-9]+@pop3test>$`,
		"capabilities":        `^AUTH-RESP-CODE, IMPLEMENTATION pop3test, PIPELINING, RESP-CODES, SASL PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER, TOP, UIDL, USER$`,
		"sasl mechanisms":     "PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER",
		"apop":                "offered (the greeting has a timestamp)",
		"tls version":         "TLS 1.3",
		"cipher suite":        `^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$`,
		"certificate":         "trusted: verified against the system roots and " + ca,
		"subject":             "CN=popfetch test server,O=pop3test",
		"issuer":              "CN=popfetch test server,O=pop3test",
		"names":               "localhost, 127.0.0.1, ::1",
		"not after":           `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((364|365) days left\)$`,
		"sha-256 fingerprint": "^" + siPin(srv) + "$",
	} {
		got := siField(t, r.stdout, key)
		if strings.HasPrefix(want, "^") {
			if !regexp.MustCompile(want).MatchString(got) {
				t.Errorf("%s: %q does not match %s", key, got, want)
			}
		} else if got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if want := "tls_fingerprint = \"" + siPin(srv) + "\"\n"; !strings.HasSuffix(r.stdout, want) {
		t.Errorf("output does not end with %q:\n%s", want, r.stdout)
	}
	if got := srv.Received(); !slices.Equal(got, []string{"CAPA", "QUIT"}) {
		t.Errorf("server received %q, want CAPA and QUIT", got)
	}
	siNoLogin(t, e)
}

// TestServerinfoStartTLS shows the capabilities before and after STLS,
// which are asked for again once protected (RFC 2595 §4).
func TestServerinfoStartTLS(t *testing.T) {
	e := siEnv(t, false, false, "starttls", "")
	srv := e.srv
	e.accts[0].extra += fmt.Sprintf("tls_fingerprint = %q", siPin(srv))
	e.writeConfig()
	r := siRun(e, "serverinfo", "s")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := siField(t, r.stdout, "capabilities (plain)"); !strings.Contains(got, "STLS") {
		t.Errorf("capabilities before STLS lack STLS: %q", got)
	}
	if got := siField(t, r.stdout, "capabilities (TLS)"); strings.Contains(got, "STLS") || !strings.Contains(got, "SASL PLAIN") {
		t.Errorf("capabilities after STLS: %q", got)
	}
	if got := siField(t, r.stdout, "certificate"); got != "trusted: it matches tls_fingerprint" {
		t.Errorf("certificate: %q", got)
	}
	if got := srv.Received(); !slices.Equal(got, []string{"CAPA", "STLS", "CAPA", "QUIT"}) {
		t.Errorf("server received %q, want CAPA STLS CAPA QUIT", got)
	}
	siNoLogin(t, e)
}

// TestServerinfoUntrusted: a certificate that does not verify, or is not
// the pinned one, is shown all the same, marked NOT TRUSTED, with its pin
// line, and the exit status is 69. Nothing is ever sent that logs in.
func TestServerinfoUntrusted(t *testing.T) {
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, mode, extra, reason string
		received                  []string
	}{
		{"unknown CA implicit", "implicit", "", "x509: certificate signed by unknown authority",
			[]string{"CAPA", "QUIT"}},
		{"unknown CA starttls", "starttls", "", "x509: certificate signed by unknown authority",
			[]string{"CAPA", "STLS", "CAPA", "STLS", "CAPA", "QUIT"}},
		{"wrong pin", "implicit", `tls_fingerprint = "sha256:` + other + `"`, "",
			[]string{"CAPA", "QUIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := siEnv(t, tc.mode == "implicit", false, tc.mode, tc.extra)
			srv := e.srv
			r := siRun(e, "serverinfo", "s")
			if r.code != exitUnavailable {
				t.Fatalf("exit %d, want 69\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			reason := tc.reason
			if reason == "" {
				reason = "certificate fingerprint " + siPin(srv) + " does not match tls_fingerprint sha256:" + other
			}
			if got := siField(t, r.stdout, "certificate"); got != "NOT TRUSTED: "+reason {
				t.Errorf("certificate: %q, want NOT TRUSTED: %s", got, reason)
			}
			if want := "# NOT TRUSTED: pin it only if this fingerprint is the one your provider publishes:\ntls_fingerprint = \"" + siPin(srv) + "\"\n"; !strings.HasSuffix(r.stdout, want) {
				t.Errorf("output does not end with\n%s\ngot:\n%s", want, r.stdout)
			}
			wantErr := "popfetch: s: error: the certificate of 127.0.0.1 is NOT TRUSTED: " + reason + "\n"
			if !strings.HasPrefix(r.stderr, wantErr) || !strings.Contains(r.stderr, "popfetch: hint: ") {
				t.Errorf("stderr:\n%s\nwant it to start with\n%s", r.stderr, wantErr)
			}
			if got := srv.Received(); !slices.Equal(got, tc.received) {
				t.Errorf("server received %q, want %q", got, tc.received)
			}
			siNoLogin(t, e)
		})
	}
}

// TestServerinfoNoSTLS: with tls = "starttls" a server without STLS is
// refused (69), after showing what it offers in the clear.
func TestServerinfoNoSTLS(t *testing.T) {
	e := siEnv(t, false, true, "starttls", "")
	srv := e.srv
	r := siRun(e, "serverinfo", "s")
	if r.code != exitUnavailable {
		t.Fatalf("exit %d, want 69\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := siField(t, r.stdout, "capabilities (plain)"); strings.Contains(got, "STLS") || !strings.Contains(got, "USER") {
		t.Errorf("capabilities: %q", got)
	}
	if strings.Contains(r.stdout, "capabilities (TLS)") || strings.Contains(r.stdout, "tls_fingerprint") {
		t.Errorf("output claims a TLS connection:\n%s", r.stdout)
	}
	if want := `popfetch: s: error: 127.0.0.1 offers no STLS, and tls = "starttls" forbids going on without TLS`; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr: %q, want %q", r.stderr, want)
	}
	if got := srv.Received(); !slices.Equal(got, []string{"CAPA", "QUIT"}) {
		t.Errorf("server received %q, want CAPA QUIT", got)
	}
	siNoLogin(t, e)
}

// TestServerinfoNoTLS: without TLS the output says so; a probe sends no
// credential, so it is not refused even where a fetch would be.
func TestServerinfoNoTLS(t *testing.T) {
	e := siEnv(t, false, false, "none", "")
	r := siRun(e, "serverinfo", "s")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := siField(t, r.stdout, "tls"); got != "none: the connection is not encrypted" {
		t.Errorf("tls: %q", got)
	}
	if strings.Contains(r.stdout, "tls_fingerprint") {
		t.Errorf("a pin without TLS:\n%s", r.stdout)
	}
	siNoLogin(t, e)
}

// TestServerinfoTrace: -vv traces the probe.
func TestServerinfoTrace(t *testing.T) {
	e := newCLIEnv(t)
	e.addAccount(&cliAccount{name: "s", user: "alice", noCA: true, extra: fmt.Sprintf("tls_fingerprint = %q", siPin(e.srv))}, "secret")
	r := siRun(e, "-vv", "serverinfo", "s")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"popfetch: s: C: CAPA\n", "popfetch: s: C: QUIT\n", "popfetch: s: S: +OK pop3test ready"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("trace lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestServerinfoUsage: one ACCOUNT, known, and the help lists the exit
// statuses.
func TestServerinfoUsage(t *testing.T) {
	e := siEnv(t, true, false, "implicit", "")
	srv := e.srv
	for _, args := range [][]string{{}, {"s", "t"}, {"nosuch"}} {
		r := siRun(e, append([]string{"serverinfo"}, args...)...)
		if r.code != exitUsage {
			t.Errorf("serverinfo %q: exit %d, want 64\n%s", args, r.code, r.stderr)
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d connections for bad command lines", n)
	}
	r := siRun(e, "serverinfo", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "EXIT STATUS") || !strings.Contains(r.stdout, "NOT TRUSTED") {
		t.Errorf("help: exit %d\n%s", r.code, r.stdout)
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		after time.Time
		want  string
	}{
		{now.Add(90*24*time.Hour + time.Hour), "90 days left"},
		{now.Add(36 * time.Hour), "1 day left"},
		{now.Add(time.Hour), "0 days left"},
		{now.Add(-time.Hour), "EXPIRED less than a day ago"},
		{now.Add(-49 * time.Hour), "EXPIRED 2 days ago"},
	} {
		if got := daysLeft(tc.after, now); got != tc.want {
			t.Errorf("daysLeft(%v) = %q, want %q", tc.after.Sub(now), got, tc.want)
		}
	}
}

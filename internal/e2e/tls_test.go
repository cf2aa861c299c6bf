package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// ptServer starts a pop3test server, with implicit TLS or plain (offering
// STLS unless srv.OfferSTLS is turned off by setup), holding user alice
// with password pass and one message.
func ptServer(t *testing.T, implicit bool, pass string, setup func(*pop3test.Server)) *pop3test.Server {
	t.Helper()
	srv := pop3test.NewServer()
	mb := srv.AddUser("alice", pass)
	mb.Add([]byte("From: bob@example.org\nSubject: hello\n\nhello alice\n"))
	if setup != nil {
		setup(srv)
	}
	start := srv.Start
	if implicit {
		start = srv.StartTLS
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// ptPin is the tls_fingerprint of a pop3test server's certificate.
func ptPin(srv *pop3test.Server) string {
	sum := sha256.Sum256(srv.Certificate().Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ptConfig writes a configuration with one account "p" for user alice at
// addr; extra holds the TLS, authentication and credential settings.
func ptConfig(t *testing.T, dir, addr, tlsMode, extra string) string {
	t.Helper()
	return userConfig(t, dir, addr, tlsMode, "alice", extra)
}

// userConfig is ptConfig for another user.
func userConfig(t *testing.T, dir, addr, tlsMode, user, extra string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	return writeConfig(t, dir, fmt.Sprintf(`
[defaults]
state_dir = %q
timeout = "20s"

[[account]]
name = "p"
host = %q
port = %s
tls = %q
user = %q
%s

[account.deliver]
maildir = %q
`, filepath.Join(dir, "state"), host, port, tlsMode, user, extra, filepath.Join(dir, "Maildir")))
}

// ptCAFile writes a pop3test server's certificate as a CA file.
func ptCAFile(t *testing.T, dir string, srv *pop3test.Server) string {
	t.Helper()
	path := filepath.Join(dir, "pop3test-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// credentialCommands are the commands that log in or carry a credential.
var credentialCommands = []string{"USER", "PASS", "APOP", "AUTH"}

// noCredentialSent proves from the server's side that no command that logs
// in, and no secret, reached it.
func noCredentialSent(t *testing.T, srv *pop3test.Server, secrets ...string) {
	t.Helper()
	for _, l := range srv.Received() {
		w, _, _ := strings.Cut(l, " ")
		if slices.Contains(credentialCommands, strings.ToUpper(w)) {
			t.Errorf("the server received %q", l)
		}
		for _, s := range secrets {
			if strings.Contains(l, s) {
				t.Errorf("the server received the secret in %q", l)
			}
		}
	}
}

// wantExit fails unless r exited with code.
func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// TestServerinfoDovecot: serverinfo against a real Dovecot on both ports,
// trusted through tls_ca_file; Dovecot's own log shows that no login was
// attempted.
func TestServerinfoDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("alice", "secret"))
	for _, tc := range []struct{ mode, addr string }{
		{"implicit", srv.TLSAddr()},
		{"starttls", srv.PlainAddr()},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			cfg := ptConfig(t, dir, tc.addr, tc.mode, fmt.Sprintf("tls_ca_file = %q\npassword = \"secret\"", srv.CAFile()))
			r := popfetch(t, nil, "-c", cfg, "serverinfo", "p")
			wantExit(t, r, 0)
			t.Logf("serverinfo output:\n%s", r.stdout)
			for _, re := range []string{
				`(?m)^greeting: +\+OK .*<.+@.+>$`, // apop is on: a timestamp
				`(?m)^sasl mechanisms: +PLAIN LOGIN CRAM-MD5$`,
				`(?m)^apop: +offered`,
				`(?m)^tls version: +TLS 1\.[23]$`,
				`(?m)^cipher suite: +TLS_`,
				`(?m)^certificate: +trusted: verified against the system roots and ` + regexp.QuoteMeta(srv.CAFile()) + `$`,
				`(?m)^subject: +.+$`,
				`(?m)^issuer: +.+$`,
				`(?m)^not after: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ days left\)$`,
				`(?m)^tls_fingerprint = "` + srv.Fingerprint() + `"$`,
			} {
				if !regexp.MustCompile(re).MatchString(r.stdout) {
					t.Errorf("output does not match %s", re)
				}
			}
			if tc.mode == "starttls" {
				if !regexp.MustCompile(`(?m)^capabilities \(plain\): .*\bSTLS\b`).MatchString(r.stdout) ||
					!regexp.MustCompile(`(?m)^capabilities \(TLS\): .*\bSASL PLAIN\b`).MatchString(r.stdout) {
					t.Errorf("capabilities before and after STLS are not both shown")
				}
			}
		})
	}
	log := srv.Log()
	if !strings.Contains(log, "no auth attempts") || strings.Contains(log, "user=<alice>") || strings.Contains(log, "method=") {
		t.Errorf("dovecot's log shows a login attempt, or not the probes:\n%s", log)
	}
}

// TestServerinfoUntrustedThenPin: without tls_ca_file the Dovecot
// certificate is not trusted: serverinfo exits 69 but shows it, and the
// tls_fingerprint line it prints, pasted into the account, makes a fetch
// work.
func TestServerinfoUntrustedThenPin(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("alice", "secret"))
	msgs := mailgen.Traps(3, 5)
	srv.Populate("alice", msgs)
	dir := t.TempDir()
	cfg := ptConfig(t, dir, srv.TLSAddr(), "implicit", `password = "secret"`)
	r := popfetch(t, nil, "-c", cfg, "serverinfo", "p")
	wantExit(t, r, 69)
	if !regexp.MustCompile(`(?m)^certificate: +NOT TRUSTED: x509: certificate signed by unknown authority$`).MatchString(r.stdout) {
		t.Errorf("the certificate is not marked NOT TRUSTED:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "popfetch: p: error: the certificate of 127.0.0.1 is NOT TRUSTED") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	m := regexp.MustCompile(`(?m)^tls_fingerprint = "sha256:[0-9a-f]{64}"$`).FindString(r.stdout)
	if m != `tls_fingerprint = "`+srv.Fingerprint()+`"` {
		t.Fatalf("pin line %q, want the server's fingerprint %s", m, srv.Fingerprint())
	}
	if n := srv.Count("alice"); n != 3 {
		t.Fatalf("serverinfo changed the mailbox: %d messages", n)
	}
	// Paste it.
	cfg = ptConfig(t, dir, srv.TLSAddr(), "implicit", "password = \"secret\"\n"+m)
	mustRun(t, 0, "-c", cfg, "fetch")
	checkDelivered(t, maildirMessages(t, filepath.Join(dir, "Maildir")), msgs)
}

// TestRefuseUntrustedCertificate: a certificate that no CA vouches for
// stops the fetch with 69 before any credential is sent, implicit TLS and
// STLS alike.
func TestRefuseUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			srv := ptServer(t, mode == "implicit", "pw-untrusted", nil)
			dir := t.TempDir()
			cfg := ptConfig(t, dir, srv.Addr(), mode, `password = "pw-untrusted"`)
			r := popfetch(t, nil, "-c", cfg, "fetch")
			wantExit(t, r, 69)
			if !strings.Contains(r.stderr, "popfetch: p: error: ") ||
				!strings.Contains(r.stderr, "failed to verify certificate: x509: certificate signed by unknown authority") {
				t.Errorf("the message does not say the certificate failed verification:\n%s", r.stderr)
			}
			want := []string(nil)
			if mode == "starttls" {
				want = []string{"CAPA", "STLS"}
			}
			if got := srv.Received(); !slices.Equal(got, want) {
				t.Errorf("the server received %q, want %q", got, want)
			}
			noCredentialSent(t, srv, "pw-untrusted")
		})
	}
}

// TestRefuseWrongPin: a certificate other than the pinned one stops the
// fetch with 69 and a message naming both fingerprints, even though a CA
// file that would trust it is given (the pin alone decides).
func TestRefuseWrongPin(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			srv := ptServer(t, mode == "implicit", "pw-pin", nil)
			dir := t.TempDir()
			wrong := "sha256:" + strings.Repeat("0f", 32)
			cfg := ptConfig(t, dir, srv.Addr(), mode, fmt.Sprintf("password = \"pw-pin\"\ntls_fingerprint = %q\ntls_ca_file = %q", wrong, ptCAFile(t, dir, srv)))
			r := popfetch(t, nil, "-c", cfg, "fetch")
			wantExit(t, r, 69)
			want := "certificate fingerprint " + ptPin(srv) + " does not match tls_fingerprint " + wrong
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
			noCredentialSent(t, srv, "pw-pin")
		})
	}
}

// TestRefuseNoSTLS: tls = "starttls" with a server that does not offer
// STLS: 69 (the server is unusable as configured), and nothing but CAPA
// and QUIT was sent: no fall-back to plaintext.
func TestRefuseNoSTLS(t *testing.T) {
	srv := ptServer(t, false, "pw-nostls", func(s *pop3test.Server) { s.OfferSTLS = false })
	dir := t.TempDir()
	cfg := ptConfig(t, dir, srv.Addr(), "starttls", fmt.Sprintf("password = \"pw-nostls\"\ntls_fingerprint = %q", ptPin(srv)))
	r := popfetch(t, nil, "-c", cfg, "fetch")
	wantExit(t, r, 69)
	if want := `popfetch: p: error: 127.0.0.1 offers no STLS, and tls = "starttls" forbids going on without TLS`; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
	}
	if got := srv.Received(); !slices.Equal(got, []string{"CAPA", "QUIT"}) {
		t.Errorf("the server received %q, want CAPA and QUIT", got)
	}
	noCredentialSent(t, srv, "pw-nostls")
}

// TestRefuseSTLSRefused: a server that lists STLS but answers it with -ERR
// is as unusable as one without STLS: 69, no credential sent.
func TestRefuseSTLSRefused(t *testing.T) {
	srv := ptServer(t, false, "pw-stls-err", func(s *pop3test.Server) {
		s.Faults.Respond = func(cmd string, _ []string) (string, bool) {
			return "-ERR TLS not available right now", cmd == "STLS"
		}
	})
	dir := t.TempDir()
	cfg := ptConfig(t, dir, srv.Addr(), "starttls", fmt.Sprintf("password = \"pw-stls-err\"\ntls_fingerprint = %q", ptPin(srv)))
	r := popfetch(t, nil, "-c", cfg, "fetch")
	wantExit(t, r, 69)
	if !strings.Contains(r.stderr, "STLS") {
		t.Errorf("the message does not name STLS:\n%s", r.stderr)
	}
	noCredentialSent(t, srv, "pw-stls-err")
}

// TestRefuseCleartextNonLoopback: tls = "none" to a host that is not
// loopback, without allow_insecure, is a configuration error (78) found
// before connecting: 192.0.2.1 (TEST-NET-1, RFC 5737) is never reached, so
// the refusal is immediate, while with allow_insecure the same account
// does try to connect (and fails with 69).
func TestRefuseCleartextNonLoopback(t *testing.T) {
	dir := t.TempDir()
	cfg := ptConfig(t, dir, "192.0.2.1:110", "none", "password = \"pw-cleartext\"")
	start := time.Now()
	r := popfetch(t, nil, "-c", cfg, "fetch")
	elapsed := time.Since(start)
	wantExit(t, r, 78)
	want := `popfetch: p: error: refusing to send credentials to 192.0.2.1 without TLS: set tls = "implicit" or "starttls", or allow_insecure = true`
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
	}
	if strings.Contains(r.stderr, "pw-cleartext") {
		t.Error("the password appears in the output")
	}
	if elapsed > 5*time.Second {
		t.Errorf("the refusal took %v: was a connection attempted?", elapsed)
	}

	cfg = ptConfig(t, dir, "192.0.2.1:110", "none", "password = \"pw-cleartext\"\nallow_insecure = true\ntimeout = \"1s\"")
	r = popfetch(t, nil, "-c", cfg, "fetch")
	wantExit(t, r, 69)
	if !strings.Contains(r.stderr, "connecting to 192.0.2.1:110") {
		t.Errorf("with allow_insecure, no connection was attempted:\n%s", r.stderr)
	}
}

// TestRefuseTLS11: a server that speaks at most TLS 1.1 is refused (69),
// before any credential is sent, with implicit TLS and STLS, and by
// serverinfo too (which does not lower the minimum to show the server).
// A client that allows TLS 1.1 completes the handshake with the same
// server: the refusal is popfetch's.
func TestRefuseTLS11(t *testing.T) {
	tls11 := func(s *pop3test.Server) {
		s.Faults.TLS = func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }
	}
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			srv := ptServer(t, mode == "implicit", "pw-tls11", tls11)
			dir := t.TempDir()
			cfg := ptConfig(t, dir, srv.Addr(), mode, fmt.Sprintf("password = \"pw-tls11\"\ntls_ca_file = %q", ptCAFile(t, dir, srv)))
			for _, cmd := range []string{"fetch", "serverinfo"} {
				args := []string{"-c", cfg, cmd}
				if cmd == "serverinfo" {
					args = append(args, "p")
				}
				r := popfetch(t, nil, args...)
				wantExit(t, r, 69)
				if !strings.Contains(r.stderr, "TLS handshake") || !strings.Contains(r.stderr, "protocol version") {
					t.Errorf("%s: the message does not say the TLS version was refused:\n%s", cmd, r.stderr)
				}
				if strings.Contains(r.stdout, "tls_fingerprint") {
					t.Errorf("%s showed a certificate of a TLS 1.1 connection:\n%s", cmd, r.stdout)
				}
			}
			noCredentialSent(t, srv, "pw-tls11")

			if mode == "implicit" {
				conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS10})
				if err != nil {
					t.Fatalf("control: a TLS 1.0-1.1 client cannot connect either: %v", err)
				}
				defer conn.Close()
				if v := conn.ConnectionState().Version; v != tls.VersionTLS11 {
					t.Fatalf("control: negotiated %s, want TLS 1.1", tls.VersionName(v))
				}
			}
		})
	}
}

// TestCapaAfterSTLSAndLogin: the real binary asks for the capabilities
// again after STLS (RFC 2595 §4) and after logging in (RFC 2449 §4).
func TestCapaAfterSTLSAndLogin(t *testing.T) {
	srv := ptServer(t, false, "pw-capa", nil)
	dir := t.TempDir()
	cfg := ptConfig(t, dir, srv.Addr(), "starttls", fmt.Sprintf("password = \"pw-capa\"\nauth = \"plain\"\ntls_fingerprint = %q", ptPin(srv)))
	mustRun(t, 0, "-c", cfg, "fetch")
	var got []string
	for _, l := range srv.Received() {
		w, _, _ := strings.Cut(l, " ")
		got = append(got, w)
	}
	want := []string{"CAPA", "STLS", "CAPA", "AUTH", "CAPA", "UIDL", "LIST", "RETR", "DELE", "QUIT"}
	if !slices.Equal(got, want) {
		t.Errorf("command order %q, want %q", got, want)
	}
}

package cmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// Text from outside — a server's responses, its certificate, an OAuth
// provider, a message — reaches the terminal escaped on every path that
// prints it: error lines, warnings, serverinfo, the -vv trace, check.

// hostile sets the window title and clears the screen, and tries a C1 CSI
// and a bidirectional override.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e"

// hostileShown is hostile as it must be shown.
const hostileShown = `\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e`

// checkEscaped fails the test if out holds a control character (other than
// the line ends of its lines) or a bidirectional control, or does not
// show hostile escaped.
func checkEscaped(t *testing.T, what, out string) {
	t.Helper()
	checkShown(t, what, out, hostileShown)
}

// checkShown is checkEscaped for text that must show shown.
func checkShown(t *testing.T, what, out, shown string) {
	t.Helper()
	for _, r := range out {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u202e' {
			t.Errorf("%s: %U reached the terminal:\n%q", what, r, out)
			return
		}
	}
	if !strings.Contains(out, shown) {
		t.Errorf("%s: the text from outside is not shown escaped (%s):\n%s", what, shown, out)
	}
}

// A -ERR text in the default error line (fetch and check), and in the
// -vv trace.
func TestEscapeErrText(t *testing.T) {
	e := newCLIEnv(t, serverSetup(func(s *pop3test.Server) {
		s.Faults.Respond = func(cmd string, _ []string) (string, bool) {
			if cmd == "AUTH" || cmd == "PASS" {
				return "-ERR [AUTH] " + hostile, true
			}
			return "", false
		}
	}))
	e.add("personal", "")
	_, errs := e.mustRun(exitNoPerm, "fetch")
	checkEscaped(t, "fetch", errs)
	if !strings.HasPrefix(errs, "popfetch: personal: error: ") || strings.Count(errs, "\n") != 1 {
		t.Errorf("fetch said:\n%s", errs)
	}
	_, errs = e.mustRun(exitNoPerm, "check")
	checkEscaped(t, "check", errs)
	_, errs = e.mustRun(exitNoPerm, "-vv", "fetch")
	checkEscaped(t, "fetch -vv", errs)
	if !strings.Contains(errs, "S: -ERR [AUTH] "+hostileShown) {
		t.Errorf("the trace does not show the line escaped:\n%s", errs)
	}
	code, out, _ := e.run("check", "--json")
	if code != exitNoPerm || strings.ContainsAny(out, "\x1b\x07\u009b\u202e") || !strings.Contains(out, `\\x1b]0;pwned`) {
		t.Errorf("check --json: exit %d\n%q", code, out)
	}
}

// A UID and a -ERR text in a warning's uid= and error= values.
func TestEscapeWarningValues(t *testing.T) {
	e := newCLIEnv(t, serverSetup(func(s *pop3test.Server) {
		s.Faults.Respond = func(cmd string, _ []string) (string, bool) {
			if cmd == "DELE" {
				return "-ERR " + hostile, true
			}
			return "", false
		}
	}))
	a := e.add("personal", "")
	a.mb.AddWithUID("uid-"+hostile, plainMessage(1))
	_, errs := e.mustRun(0, "fetch")
	checkEscaped(t, "warning", errs)
	want := "popfetch: personal: warning: the server refused to delete a message; it stays on the server: " +
		"uid=uid-" + hostileShown + " error=pop3: server refused DELE: " + hostileShown + "\n"
	if errs != want {
		t.Errorf("fetch said:\n%q\nwant\n%q", errs, want)
	}
}

// A greeting, before STLS (anyone on the path can write it) and after:
// in serverinfo, in the trace, and as the error of a refused greeting.
func TestEscapeGreeting(t *testing.T) {
	// The server's faults are set before it starts: its sessions read
	// them.
	env := func(greeting string) *cliEnv {
		e := newCLIEnv(t, plainServer(), serverSetup(func(srv *pop3test.Server) {
			srv.OfferSTLS = true
			srv.Faults.Greeting = greeting
			srv.ExtraCaps = []string{"X-CAP " + hostile}
		}))
		e.addAccount(&cliAccount{name: "s", user: "alice", password: "secret", tls: "starttls"}, "secret")
		return e
	}
	e := env("+OK " + hostile)
	r := siRun(e, "serverinfo", "s")
	if r.code != 0 {
		t.Fatalf("serverinfo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkEscaped(t, "serverinfo", r.stdout)
	for _, want := range []string{"greeting:              +OK " + hostileShown, "X-CAP " + hostileShown} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serverinfo does not show %q:\n%s", want, r.stdout)
		}
	}
	r = siRun(e, "-vv", "serverinfo", "s")
	checkEscaped(t, "serverinfo -vv", r.stderr)

	r = siRun(env("-ERR [SYS/PERM] "+hostile), "fetch")
	if r.code != exitUnavailable {
		t.Errorf("fetch: exit %d", r.code)
	}
	checkEscaped(t, "refused greeting", r.stderr)
}

// hostileCertificate is a self-signed certificate whose names and subject
// hold hostile text.
func hostileCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cn-" + hostile},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"\x1b]0;pwned\x07\x1b[2J.example.org"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A certificate's names, quoted by Go's hostname-mismatch error (which
// needs no trust at all), in the error line and in serverinfo.
func TestEscapeCertificateNames(t *testing.T) {
	cert := hostileCertificate(t)
	e := newCLIEnv(t, serverSetup(func(s *pop3test.Server) {
		s.Faults.TLS = func(c *tls.Config) { c.Certificates = []tls.Certificate{cert} }
	}))
	if err := os.WriteFile(e.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	// the name checked is the host's: localhost, not 127.0.0.1
	e.add("s", "")
	e.setConfig(strings.Replace(readFile(t, e.config), `host = "127.0.0.1"`, `host = "localhost"`, 1))
	const names = `\x1b]0;pwned\x07\x1b[2J.example.org`
	r := siRun(e, "fetch")
	if r.code != exitUnavailable || !strings.HasPrefix(r.stderr, "popfetch: s: error: ") {
		t.Errorf("fetch: exit %d\n%s", r.code, r.stderr)
	}
	checkShown(t, "fetch", r.stderr, "x509: certificate is valid for "+names+", not localhost")
	r = siRun(e, "serverinfo", "s")
	if r.code != exitUnavailable {
		t.Errorf("serverinfo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkShown(t, "serverinfo", r.stdout, "names:                 "+names)
	checkShown(t, "serverinfo's subject", r.stdout, `subject:               CN=cn-\x1b]0\;pwned\x07\x1b[2J\u009b31m\u202e`)
	checkShown(t, "serverinfo's error", r.stderr, "is NOT TRUSTED: x509: certificate is valid for "+names)
}

// An OAuth provider's error description, in fetch's error line.
func TestEscapeOAuthProviderError(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "refused " + hostile})
	}))
	t.Cleanup(idp.Close)
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "mail", user: "olga",
		extra: fmt.Sprintf("oauth_provider = %q\noauth_client_id = \"id\"", idp.URL+"/token")}, "pw")
	if err := keyringSet("oauth:"+e.key(a), "a-refresh-token"); err != nil {
		t.Fatal(err)
	}
	_, errs := e.mustRun(exitNoPerm, "fetch")
	checkShown(t, "fetch", errs, "invalid_grant: refused "+hostileShown)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package engine

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

type staticCreds struct{ password, token string }

func (c staticCreds) Password(context.Context) (string, error) { return c.password, nil }
func (c staticCreds) Token(context.Context) (string, error)    { return c.token, nil }

// fixture is a pop3test server with user alice and an account for it.
type fixture struct {
	srv  *pop3test.Server
	mb   *pop3test.Mailbox
	acct *config.Account
	dir  string
	logs *bytes.Buffer
}

func newFixture(t testing.TB, msgs int) *fixture {
	t.Helper()
	f := &fixture{srv: pop3test.NewServer(), dir: t.TempDir(), logs: &bytes.Buffer{}}
	f.mb = f.srv.AddUser("alice", "secret")
	for i := 0; i < msgs; i++ {
		f.mb.Add(testMessage(i))
	}
	ca := filepath.Join(f.dir, "ca.pem")
	writeCertPEM(t, ca, f.srv)
	f.acct = &config.Account{
		Name: "test", Host: "127.0.0.1", TLS: config.TLSImplicit, TLSCAFile: ca,
		User: "alice", Auth: config.AuthAuto, Timeout: 10 * time.Second, ReceivedHeader: true,
		StateDir: filepath.Join(f.dir, "state"),
		Deliver:  config.Deliver{Maildir: filepath.Join(f.dir, "Maildir")},
	}
	return f
}

// start starts the server, once: tests set its Faults and Latency before,
// as pop3test requires.
func (f *fixture) start(t testing.TB) {
	t.Helper()
	if f.acct.Port != 0 {
		return
	}
	if err := f.srv.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	_, port, _ := net.SplitHostPort(f.srv.Addr())
	f.acct.Port, _ = strconv.Atoi(port)
}

func testMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: sender%d@example.org\nSubject: message %d\n\nbody %d\n.leading dot\n", i, i, i))
}

func (f *fixture) run(t *testing.T, opts Options) (Result, error) {
	t.Helper()
	f.start(t)
	opts.Account = f.acct
	if opts.Credentials == nil {
		opts.Credentials = staticCreds{password: "secret"}
	}
	opts.Log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return Run(context.Background(), opts)
}

// delivered returns the contents of the Maildir's new/, sorted.
func (f *fixture) delivered(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(f.acct.Deliver.Maildir, "new")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Name(), ",S="+strconv.Itoa(len(b))) {
			t.Errorf("%s: size in name does not match %d", e.Name(), len(b))
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// stripReceived removes the Received header popfetch prepends.
func stripReceived(t *testing.T, msg string) string {
	t.Helper()
	if !strings.HasPrefix(msg, "Received: from ") {
		t.Fatalf("message does not start with Received: %q", msg[:min(len(msg), 60)])
	}
	i := strings.Index(msg, "\nFrom: ")
	return msg[i+1:]
}

func TestDeleteMode(t *testing.T) {
	f := newFixture(t, 20)
	res, err := f.run(t, Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, f.logs)
	}
	if res.Fetched != 20 || res.Deleted != 20 || f.mb.Len() != 0 {
		t.Fatalf("result %+v, %d left on server", res, f.mb.Len())
	}
	got := f.delivered(t)
	if len(got) != 20 {
		t.Fatalf("%d delivered", len(got))
	}
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, string(testMessage(i)))
	}
	sort.Strings(want)
	var stripped []string
	for _, m := range got {
		stripped = append(stripped, stripReceived(t, m))
	}
	sort.Strings(stripped)
	for i := range want {
		if stripped[i] != want[i] {
			t.Errorf("message %d: got %q want %q", i, stripped[i], want[i])
		}
	}
	c, err := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("cache holds %d entries after a committed delete run", c.Len())
	}
}

func TestKeepMode(t *testing.T) {
	f := newFixture(t, 5)
	f.acct.Keep = true
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 5 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	cachePath := filepath.Join(f.acct.StateDir, uidcache.FileName(f.acct.Key()))
	st1, err := os.Stat(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 0 || res.Listed != 5 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	st2, _ := os.Stat(cachePath)
	if !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("a run with no new mail rewrote the cache")
	}
	f.mb.Add([]byte("Subject: late\n\nlate body\n"))
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 1 {
		t.Fatalf("third run: %+v %v", res, err)
	}
	if n := len(f.delivered(t)); n != 6 || f.mb.Len() != 6 {
		t.Fatalf("%d delivered, %d on server", n, f.mb.Len())
	}
	if st, _ := os.Stat(f.acct.StateDir); st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(cachePath); st.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v", st.Mode().Perm())
	}
}

func TestQuitNeverAnswered(t *testing.T) {
	f := newFixture(t, 10)
	f.srv.Faults.DropQuit = true
	_, err := f.run(t, Options{})
	if err == nil {
		t.Fatal("no error when QUIT was not answered")
	}
	if f.mb.Len() != 10 {
		t.Fatalf("server holds %d, want 10 (nothing committed)", f.mb.Len())
	}
	if n := len(f.delivered(t)); n != 10 {
		t.Fatalf("%d delivered", n)
	}
	f.srv.Faults.DropQuit = false
	res, err := f.run(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 0 || res.Deleted != 10 || f.mb.Len() != 0 {
		t.Fatalf("recovery run: %+v, %d left", res, f.mb.Len())
	}
	if n := len(f.delivered(t)); n != 10 {
		t.Fatalf("%d delivered after recovery, want 10 (no duplicates)", n)
	}
	retrs := 0
	for _, line := range f.srv.Received() {
		if strings.HasPrefix(line, "RETR") {
			retrs++
		}
	}
	if retrs != 10 {
		t.Fatalf("%d RETRs over both sessions, want 10: the recovery run must not download again", retrs)
	}
}

func TestLocked(t *testing.T) {
	f := newFixture(t, 1)
	f.start(t)
	lock, err := lockAccount(nil, f.acct.StateDir, f.acct.Key())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	_, err = f.run(t, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if f.srv.Sessions() != 0 {
		t.Fatal("connected although locked")
	}
}

func TestTripwire(t *testing.T) {
	f := newFixture(t, 0)
	f.acct.Keep = true
	f.start(t)
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	for i := 0; i < 15; i++ {
		c.Put(fmt.Sprintf("old-%d", i), uidcache.Entry{Seen: time.Now(), State: uidcache.Retrieved})
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		f.mb.Add(testMessage(i))
	}
	_, err := f.run(t, Options{})
	var mm *CacheMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("got %v, want CacheMismatchError", err)
	}
	res, err := f.run(t, Options{AcceptAllAsNew: true})
	if err != nil || res.Fetched != 12 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestMaxSizeReportedOnce(t *testing.T) {
	f := newFixture(t, 2)
	f.acct.Keep = true
	f.acct.MaxSize = 1000
	f.mb.Add(append([]byte("Subject: big\n\n"), bytes.Repeat([]byte("x"), 2000)...))
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 2 || res.Skipped != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(f.logs.String(), "larger than max_size") {
		t.Fatal("oversized message not reported")
	}
	f.logs.Reset()
	res, err = f.run(t, Options{})
	if err != nil || res.Skipped != 0 || strings.Contains(f.logs.String(), "larger than max_size") {
		t.Fatalf("reported again: %+v %v", res, err)
	}
	f.acct.MaxSize = 0
	if res, err = f.run(t, Options{}); err != nil || res.Fetched != 1 {
		t.Fatalf("after raising the limit: %+v %v", res, err)
	}
}

func TestWrongPassword(t *testing.T) {
	f := newFixture(t, 1)
	_, err := f.run(t, Options{Credentials: staticCreds{password: "nope"}})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want AuthError", err)
	}
	if strings.Contains(err.Error(), "nope") {
		t.Fatal("error holds the password")
	}
}

func TestLockStepServer(t *testing.T) {
	f := newFixture(t, 50)
	f.srv.Faults.HideCaps = []string{"PIPELINING"}
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 50 || f.mb.Len() != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := f.srv.EarlyCommands(); n != 0 {
		t.Fatalf("%d commands sent early to a server without PIPELINING", n)
	}
}

func TestExpireContradictsKeep(t *testing.T) {
	f := newFixture(t, 1)
	f.acct.Keep = true
	f.srv.ExtraCaps = []string{"EXPIRE 0", "LOGIN-DELAY 900"}
	res, err := f.run(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs.String(), "EXPIRE 0") {
		t.Errorf("no warning about EXPIRE 0 in keep mode:\n%s", f.logs)
	}
	if res.LoginDelay != 900*time.Second {
		t.Errorf("LoginDelay = %v, want 900s", res.LoginDelay)
	}
}

// TestCAFileOfAnotherCA: a tls_ca_file that did not sign the server's
// certificate gives no trust (and the system roots do not know it either).
func TestCAFileOfAnotherCA(t *testing.T) {
	f := newFixture(t, 1)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err := os.WriteFile(f.acct.TLSCAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.run(t, Options{})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		t.Fatalf("got %v, want a certificate verification error", err)
	}
	if f.mb.Len() != 1 {
		t.Fatal("messages went away")
	}
}

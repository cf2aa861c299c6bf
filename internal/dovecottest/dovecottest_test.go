package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/popfetch/popfetch/internal/mailgen"
)

// conn is a minimal POP3 client for testing the server.
type conn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
	// greeting line
	greeting string
}

func dial(t testing.TB, addr string, cfg *tls.Config) *conn {
	t.Helper()
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	p := &conn{t: t, c: c, r: bufio.NewReader(c)}
	p.greeting = p.line()
	if !strings.HasPrefix(p.greeting, "+OK") {
		t.Fatalf("greeting %q", p.greeting)
	}
	return p
}

func (p *conn) line() string {
	p.t.Helper()
	l, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		p.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command and returns the status line.
func (p *conn) cmd(format string, a ...any) string {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.c, format+"\r\n", a...); err != nil {
		p.t.Fatalf("write: %v", err)
	}
	return p.line()
}

func (p *conn) ok(format string, a ...any) string {
	p.t.Helper()
	l := p.cmd(format, a...)
	if !strings.HasPrefix(l, "+OK") {
		p.t.Fatalf("%s: %q", strings.Fields(fmt.Sprintf(format, a...))[0], l)
	}
	return l
}

// multi reads a multi-line response body with dot-stuffing undone; lines
// keep their CRLF.
func (p *conn) multi() []byte {
	p.t.Helper()
	var b bytes.Buffer
	for {
		l, err := p.r.ReadBytes('\n')
		if err != nil {
			p.t.Fatalf("read: %v", err)
		}
		if string(l) == ".\r\n" {
			return b.Bytes()
		}
		if l[0] == '.' {
			l = l[1:]
		}
		b.Write(l)
	}
}

func (p *conn) login(user, pass string) {
	p.t.Helper()
	p.ok("USER %s", user)
	p.ok("PASS %s", pass)
}

func (p *conn) capa() map[string]string {
	p.t.Helper()
	p.ok("CAPA")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(p.multi())), "\r\n") {
		k, v, _ := strings.Cut(l, " ")
		m[k] = v
	}
	return m
}

// retr returns message n as the client must deliver it (CRLF -> LF).
func (p *conn) retr(n int) []byte {
	p.t.Helper()
	p.ok("RETR %d", n)
	return bytes.ReplaceAll(p.multi(), []byte("\r\n"), []byte("\n"))
}

func (p *conn) uidl() []string {
	p.t.Helper()
	p.ok("UIDL")
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(p.multi())), "\r\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != strconv.Itoa(len(out)+1) {
			p.t.Fatalf("UIDL line %q", l)
		}
		out = append(out, f[1])
	}
	return out
}

func (p *conn) quit() {
	p.t.Helper()
	p.ok("QUIT")
	p.c.Close()
}

// checkLog fails if dovecot logged an error, e.g. about a wrong W= size.
func checkLog(t *testing.T, s *Server) {
	t.Helper()
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "Error:") || strings.Contains(l, "Fatal:") || strings.Contains(l, "Panic:") ||
			strings.Contains(l, "Warning:") {
			t.Errorf("dovecot log: %s", l)
		}
	}
}

var apopRE = regexp.MustCompile(`<[^<>@ ]+@[^<> ]+>`)

func TestPlainPortSTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("alice", "secret"))
	p := dial(t, s.PlainAddr(), nil)
	if !apopRE.MatchString(p.greeting) {
		t.Errorf("greeting %q has no APOP timestamp", p.greeting)
	}
	capa := p.capa()
	for _, k := range []string{"PIPELINING", "UIDL", "TOP", "USER", "SASL", "STLS", "RESP-CODES", "AUTH-RESP-CODE"} {
		if _, ok := capa[k]; !ok {
			t.Errorf("CAPA on the plain port lacks %s: %v", k, capa)
		}
	}
	for _, m := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
		if !strings.Contains(" "+capa["SASL"]+" ", " "+m+" ") {
			t.Errorf("SASL %q lacks %s", capa["SASL"], m)
		}
	}
	p.ok("STLS")
	tc := tls.Client(p.c, s.ClientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STLS handshake: %v", err)
	}
	if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x", v)
	}
	p.c, p.r = tc, bufio.NewReader(tc)
	capa = p.capa()
	if _, ok := capa["STLS"]; ok {
		t.Error("STLS still offered after STLS")
	}
	p.login("alice", "secret")
	p.ok("STAT")
	p.quit()

	// tls_fingerprint pinning: the fingerprint of what the server presents
	sum := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != s.Fingerprint() {
		t.Errorf("Fingerprint() = %s, server presents %s", s.Fingerprint(), got)
	}
	checkLog(t, s)
}

func TestTLSPort(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("alice", "secret"))
	// the CA as a client would load it, from CAFile; by name and by IP SAN
	pem, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	if _, err := os.Stat(s.CertFile()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		p := dial(t, s.TLSAddr(), &tls.Config{RootCAs: pool, ServerName: name})
		capa := p.capa()
		for _, k := range []string{"PIPELINING", "UIDL", "TOP", "USER", "SASL"} {
			if _, ok := capa[k]; !ok {
				t.Errorf("CAPA on the TLS port lacks %s: %v", k, capa)
			}
		}
		if _, ok := capa["STLS"]; ok {
			t.Error("STLS offered on the implicit-TLS port")
		}
		p.login("alice", "secret")
		p.quit()
	}
	checkLog(t, s)
}

func TestWrongCA(t *testing.T) {
	t.Parallel()
	s := Start(t)
	foreign, err := newCerts("other") // another server's CA
	if err != nil {
		t.Fatal(err)
	}
	other := x509.NewCertPool()
	other.AppendCertsFromPEM(foreign.caPEM)
	cfg := &tls.Config{RootCAs: other, ServerName: "localhost"}

	_, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.TLSAddr(), cfg)
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Errorf("TLS port with a foreign CA: got %v, want an unknown-authority error", err)
	}
	p := dial(t, s.PlainAddr(), nil)
	p.ok("STLS")
	err = tls.Client(p.c, cfg).Handshake()
	if !errors.As(err, &ua) {
		t.Errorf("STLS with a foreign CA: got %v, want an unknown-authority error", err)
	}
	// and a wrong name
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.TLSAddr(),
		&tls.Config{RootCAs: s.CAPool(), ServerName: "pop.example.org"})
	var hn x509.HostnameError
	if !errors.As(err, &hn) {
		t.Errorf("wrong server name: got %v, want a hostname error", err)
	}
}

func TestAuthMechanisms(t *testing.T) {
	t.Parallel()
	const user, pass = "bob", "pa:ss wörd"
	s := Start(t, WithUser(user, pass))
	cfg := s.ClientTLSConfig()
	for _, mech := range []string{"USER", "APOP", "PLAIN", "LOGIN", "CRAM-MD5"} {
		t.Run(mech, func(t *testing.T) {
			for _, addr := range []string{s.PlainAddr(), s.TLSAddr()} {
				var p *conn
				if addr == s.TLSAddr() {
					p = dial(t, addr, cfg)
				} else {
					p = dial(t, addr, nil)
				}
				b64 := base64.StdEncoding.EncodeToString
				switch mech {
				case "USER":
					p.ok("USER %s", user)
					p.ok("PASS %s", pass)
				case "APOP":
					ts := apopRE.FindString(p.greeting)
					if ts == "" {
						t.Fatalf("no APOP timestamp in %q", p.greeting)
					}
					p.ok("APOP %s %x", user, md5.Sum([]byte(ts+pass)))
				case "PLAIN":
					p.ok("AUTH PLAIN %s", b64([]byte("\x00"+user+"\x00"+pass)))
				case "LOGIN":
					if l := p.cmd("AUTH LOGIN"); !strings.HasPrefix(l, "+ ") {
						t.Fatalf("AUTH LOGIN: %q", l)
					}
					if l := p.cmd("%s", b64([]byte(user))); !strings.HasPrefix(l, "+ ") {
						t.Fatalf("AUTH LOGIN user: %q", l)
					}
					p.ok("%s", b64([]byte(pass)))
				case "CRAM-MD5":
					l := p.cmd("AUTH CRAM-MD5")
					ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
					if err != nil || !strings.HasPrefix(l, "+ ") {
						t.Fatalf("AUTH CRAM-MD5: %q %v", l, err)
					}
					mac := hmac.New(md5.New, []byte(pass))
					mac.Write(ch)
					p.ok("%s", b64([]byte(fmt.Sprintf("%s %x", user, mac.Sum(nil)))))
				}
				p.ok("STAT")
				p.quit()
			}
		})
	}

	// Wrong passwords fail without the growing per-IP penalty: dovecot
	// answers failures on a 500 ms timer, so three take about 1.5 s; with
	// the penalty they would take at least 0.5+2+4 s. (The bound leaves
	// room for a loaded CI machine.)
	start := time.Now()
	p := dial(t, s.PlainAddr(), nil)
	p.ok("USER %s", user)
	if l := p.cmd("PASS wrong"); !strings.HasPrefix(l, "-ERR [AUTH]") {
		t.Fatalf("wrong password: %q", l)
	}
	p.ok("USER nobody")
	if l := p.cmd("PASS %s", pass); !strings.HasPrefix(l, "-ERR [AUTH]") {
		t.Fatalf("unknown user: %q", l)
	}
	if l := p.cmd("AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00x"))); !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("AUTH PLAIN with a wrong password: %q", l)
	}
	p.quit()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("three failed logins took %v", d)
	}
}

func TestPopulateRetr(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("carol", "secret"))
	msgs := [][]byte{
		[]byte("From: a@example.org\nSubject: one\n\nhello\n"),
		[]byte("From: b@example.org\nSubject: two\n\n.\n..\n.x\nFrom here\n\nno final newline"),
		[]byte("From: c@example.org\nSubject: three\n\n\xff\xfe raw \x00 bytes\r\nand a CRLF line\n"),
	}
	s.Populate("carol", msgs)
	if n := s.Count("carol"); n != 3 {
		t.Fatalf("Count = %d", n)
	}
	p := dial(t, s.TLSAddr(), s.ClientTLSConfig())
	p.login("carol", "secret")
	if l := p.ok("STAT"); !strings.HasPrefix(l, "+OK 3 ") {
		t.Fatalf("STAT: %q", l)
	}
	for i, m := range msgs {
		if got, want := p.retr(i+1), mailgen.Canonical(m); !bytes.Equal(got, want) {
			t.Errorf("RETR %d:\n got %q\nwant %q", i+1, got, want)
		}
	}
	p.quit()
	// the server's copy is untouched
	for i, m := range s.Messages("carol") {
		if !bytes.Equal(m, msgs[i]) {
			t.Errorf("Messages()[%d] = %q, want %q", i, m, msgs[i])
		}
	}
	checkLog(t, s)
}

// TestTraps sends every mailgen trap through dovecot and back: what a POP3
// client receives must be mailgen.Canonical of what was stored, and LIST must
// agree with the bytes on the wire (the W= size in the file name).
func TestTraps(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("dave", "secret"))
	msgs := mailgen.Traps(40, 11)
	s.Populate("dave", msgs)
	p := dial(t, s.PlainAddr(), nil)
	p.login("dave", "secret")
	p.ok("LIST")
	var sizes []int
	for _, l := range strings.Split(strings.TrimSpace(string(p.multi())), "\r\n") {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[1])
		sizes = append(sizes, n)
	}
	if len(sizes) != len(msgs) {
		t.Fatalf("LIST has %d messages, want %d", len(sizes), len(msgs))
	}
	// pipelined, as a client would
	var cmds strings.Builder
	for i := range msgs {
		fmt.Fprintf(&cmds, "RETR %d\r\n", i+1)
	}
	if _, err := p.c.Write([]byte(cmds.String())); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if l := p.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("RETR %d: %q", i+1, l)
		}
		raw := p.multi()
		got := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
		if want := mailgen.Canonical(m); !bytes.Equal(got, want) {
			t.Errorf("message %d (%s): got %d bytes, want %d", i, mailgen.ID(m), len(got), len(want))
		}
		if id := mailgen.ID(got); id != fmt.Sprintf("11-%d", i) {
			t.Errorf("message %d has id %q", i, id)
		}
		// LIST counts the stored message with CRLF line ends, without the
		// CRLF a server adds after an unterminated last line.
		wire := len(raw)
		if !bytes.HasSuffix(m, []byte("\n")) {
			wire -= 2
		}
		if sizes[i] != wire {
			t.Errorf("message %d: LIST size %d, %d bytes on the wire", i, sizes[i], wire)
		}
	}
	p.quit()
	checkLog(t, s)
}

func TestUIDsAcrossSessions(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("erin", "secret"))
	msgs := mailgen.Traps(6, 3)
	s.Populate("erin", msgs[:2])

	p := dial(t, s.PlainAddr(), nil)
	p.login("erin", "secret")
	first := p.uidl()
	// added during a session: not visible in it
	s.Populate("erin", msgs[2:3])
	if got := p.uidl(); len(got) != 2 {
		t.Errorf("session sees %d messages, want 2", len(got))
	}
	p.quit()

	s.Populate("erin", msgs[3:5])
	p = dial(t, s.PlainAddr(), nil)
	p.login("erin", "secret")
	second := p.uidl()
	if len(second) != 5 || second[0] != first[0] || second[1] != first[1] {
		t.Fatalf("UIDLs not stable: first session %v, second %v", first, second)
	}
	for i := 2; i < 5; i++ {
		if id := mailgen.ID(p.retr(i + 1)); id != mailgen.ID(msgs[i]) {
			t.Errorf("message %d is %s, want %s (UIDs not in the order added)", i+1, id, mailgen.ID(msgs[i]))
		}
	}
	if !uniqueStrings(second) {
		t.Errorf("duplicate UIDLs %v", second)
	}
	p.ok("DELE 1")
	p.ok("DELE 3")
	p.quit()

	if n := s.Count("erin"); n != 3 {
		t.Errorf("Count after deleting two = %d, want 3", n)
	}
	got := s.Messages("erin")
	for i, want := range [][]byte{msgs[1], msgs[3], msgs[4]} {
		if i >= len(got) || !bytes.Equal(got[i], want) {
			t.Errorf("Messages()[%d] is not %s", i, mailgen.ID(want))
		}
	}

	// added after deletions: new UIDs, never reused
	s.Populate("erin", msgs[5:6])
	p = dial(t, s.PlainAddr(), nil)
	p.login("erin", "secret")
	third := p.uidl()
	want := []string{second[1], second[3], second[4]}
	if len(third) != 4 || strings.Join(third[:3], " ") != strings.Join(want, " ") {
		t.Fatalf("after DELE: UIDLs %v, want %v + one new", third, want)
	}
	for _, u := range second {
		if third[3] == u {
			t.Fatalf("UIDL %s reused", u)
		}
	}
	p.quit()

	// ResetUIDs: every UIDL changes (a server restored from backup)
	s.ResetUIDs("erin")
	p = dial(t, s.PlainAddr(), nil)
	p.login("erin", "secret")
	fourth := p.uidl()
	if len(fourth) != 4 {
		t.Fatalf("after ResetUIDs: %d messages", len(fourth))
	}
	for i := range fourth {
		if fourth[i] == third[i] {
			t.Errorf("UIDL %d unchanged after ResetUIDs: %s", i+1, fourth[i])
		}
	}
	if id := mailgen.ID(p.retr(4)); id != mailgen.ID(msgs[5]) {
		t.Errorf("after ResetUIDs message 4 is %s", id)
	}
	p.quit()
	checkLog(t, s)
}

func uniqueStrings(xs []string) bool {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}

func TestAddUserWhileRunning(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := dial(t, s.PlainAddr(), nil)
	p.ok("USER frank")
	if l := p.cmd("PASS one"); !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("unknown user logged in: %q", l)
	}
	p.quit()

	s.AddUser("frank", "one")
	s.Populate("frank", mailgen.Traps(1, 1))
	p = dial(t, s.PlainAddr(), nil)
	p.login("frank", "one")
	if l := p.ok("STAT"); !strings.HasPrefix(l, "+OK 1 ") {
		t.Errorf("STAT %q", l)
	}
	p.quit()

	// a new password of the same length, within the same second
	s.AddUser("frank", "two")
	s.AddUser("grace", "three")
	p = dial(t, s.PlainAddr(), nil)
	p.ok("USER frank")
	if l := p.cmd("PASS one"); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("old password still accepted: %q", l)
	}
	p.quit()
	for u, pw := range map[string]string{"frank": "two", "grace": "three"} {
		p = dial(t, s.PlainAddr(), nil)
		p.login(u, pw)
		p.quit()
	}
	if s.Count("grace") != 0 {
		t.Error("new user has mail")
	}
}

func TestParallelServers(t *testing.T) {
	t.Parallel()
	a := Start(t, WithUser("u", "p"))
	b := Start(t, WithUser("u", "p"))
	if a.PlainAddr() == b.PlainAddr() || a.Dir() == b.Dir() {
		t.Fatal("two servers share an address or directory")
	}
	a.Populate("u", mailgen.Traps(2, 1))
	var wg sync.WaitGroup
	res := make([]string, 2)
	for i, s := range []*Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", s.TLSAddr(), s.ClientTLSConfig())
			if err != nil {
				res[i] = err.Error()
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			_, _ = r.ReadString('\n')
			fmt.Fprintf(c, "USER u\r\nPASS p\r\nSTAT\r\nQUIT\r\n")
			for k := 0; k < 3; k++ {
				res[i], _ = r.ReadString('\n')
			}
		}()
	}
	wg.Wait()
	if !strings.HasPrefix(res[0], "+OK 2 ") || !strings.HasPrefix(res[1], "+OK 0 ") {
		t.Errorf("STAT: %q %q", res[0], res[1])
	}
	// Stop makes the server unreachable
	b.Stop()
	if c, err := net.DialTimeout("tcp", b.PlainAddr(), time.Second); err == nil {
		c.Close()
		t.Error("server still reachable after Stop")
	}
	b.Stop() // idempotent
}

// fakeTB records Fatal/Skip instead of ending the test; Start is run in its
// own goroutine and ends it with runtime.Goexit, as testing does.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	skipped  string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, a...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, a ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprintf(format, a...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func runStart(tb *fakeTB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(tb)
	}()
	<-done
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("DOVECOT_BINARY", "/nonexistent/dovecot")
	t.Setenv(SkipEnv, "")
	f := &fakeTB{TB: t}
	runStart(f)
	if !strings.Contains(f.fatal, "dovecot-core") || !strings.Contains(f.fatal, "dovecot-pop3d") || f.skipped != "" {
		t.Errorf("missing binary: fatal %q, skipped %q", f.fatal, f.skipped)
	}

	t.Setenv(SkipEnv, "1")
	f = &fakeTB{TB: t}
	runStart(f)
	if f.skipped == "" || f.fatal != "" {
		t.Errorf("missing binary with %s=1: fatal %q, skipped %q", SkipEnv, f.fatal, f.skipped)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	s := Start(t, WithUser("u", "p"), WithMechanisms("plain", "login"),
		WithConfig("login_greeting = popfetch test server"))
	p := dial(t, s.PlainAddr(), nil)
	if p.greeting != "+OK popfetch test server" {
		t.Errorf("greeting %q, want no APOP timestamp and the configured text", p.greeting)
	}
	if got := p.capa()["SASL"]; got != "PLAIN LOGIN" {
		t.Errorf("SASL %q", got)
	}
	if l := p.cmd("APOP u 0123456789abcdef0123456789abcdef"); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("APOP without apop mechanism: %q", l)
	}
	p.quit()
	p = dial(t, s.PlainAddr(), nil)
	p.login("u", "p")
	p.quit()
	if !strings.Contains(s.Log(), "starting up for pop3") {
		t.Errorf("Log() lacks dovecot's start-up line:\n%s", s.Log())
	}
}

// TestLMTP delivers over LMTP, on the port and on the socket, into a
// user's Maildir and, by the user's Sieve script, into a folder.
func TestLMTP(t *testing.T) {
	srv := Start(t, WithLMTP(), WithUser("bob", "secret"))
	srv.SetSieve("bob", `require "fileinto";
if header :contains "subject" "file me" { fileinto "Filed"; }
`)
	send := func(network, addr, msg string) {
		t.Helper()
		conn, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c := smtp.NewClientLMTP(conn)
		defer c.Close()
		if err := c.SendMail("a@example.org", []string{"bob"}, strings.NewReader(msg)); err != nil {
			t.Fatalf("%s %s: %v", network, addr, err)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
	}
	send("tcp", srv.LMTPAddr(), "Subject: one\r\n\r\nby port\r\n")
	send("unix", srv.LMTPSocket(), "Subject: two\r\n\r\nby socket \xc3\xa9\r\n")
	send("tcp", srv.LMTPAddr(), "Subject: please file me\r\n\r\nto the folder\r\n")
	got := srv.Messages("bob")
	want := []string{
		"Return-Path: <a@example.org>\nSubject: one\n\nby port\n",
		"Return-Path: <a@example.org>\nSubject: two\n\nby socket \xc3\xa9\n",
	}
	if len(got) != len(want) {
		t.Fatalf("INBOX holds %d messages, want %d: %q\n%s", len(got), len(want), got, srv.Log())
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
	filed := srv.MessagesIn("bob", "Filed")
	if len(filed) != 1 || string(filed[0]) != "Return-Path: <a@example.org>\nSubject: please file me\n\nto the folder\n" {
		t.Fatalf("Filed holds %q\n%s", filed, srv.Log())
	}
}

package pop3test_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// These tests speak raw POP3 to the server, so that they check the server's
// bytes and not what a client makes of them.

type conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *pop3test.Server) *conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{t: t, c: c, br: bufio.NewReader(c)}
}

// line reads a line without its CRLF, which must be there.
func (c *conn) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command line and returns the status line.
func (c *conn) cmd(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.line()
}

// ok sends a command and fails unless the answer is +OK.
func (c *conn) ok(line string) string {
	c.t.Helper()
	resp := c.cmd(line)
	if !strings.HasPrefix(resp, "+OK") {
		c.t.Fatalf("%s: %s", line, resp)
	}
	return resp
}

// multi reads the lines of a multi-line response up to ".", raw (still
// byte-stuffed), joined with CRLF as on the wire.
func (c *conn) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(l + "\r\n")
	}
}

func start(t *testing.T, s *pop3test.Server) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
}

func login(t *testing.T, s *pop3test.Server) *conn {
	t.Helper()
	c := dial(t, s)
	c.line()
	c.ok("USER alice")
	c.ok("PASS secret")
	return c
}

func TestGreetingAndCapa(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	start(t, s)
	c := dial(t, s)
	g := c.line()
	if !strings.HasPrefix(g, "+OK ") || !strings.Contains(g, "@pop3test>") || !strings.Contains(g, "<") {
		t.Fatalf("greeting %q has no APOP timestamp", g)
	}
	c.ok("CAPA")
	caps := c.multi()
	for _, want := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "USER",
		"SASL PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER", "IMPLEMENTATION pop3test"} {
		if !strings.Contains(caps, want+"\r\n") {
			t.Errorf("CAPA lacks %q:\n%s", want, caps)
		}
	}
	if resp := c.cmd("STAT"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("STAT before login: %s", resp)
	}
	c.ok("USER alice")
	c.ok("PASS secret")
	c.ok("CAPA")
	caps = c.multi()
	for _, gone := range []string{"STLS", "USER", "SASL"} {
		if strings.Contains(caps, gone) {
			t.Errorf("CAPA after login lists %s:\n%s", gone, caps)
		}
	}
	if resp := c.cmd("NOSUCH"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("unknown command: %s", resp)
	}
	if resp := c.cmd(""); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("empty command: %s", resp)
	}
}

// TestWireFormat checks the exact bytes of RETR and TOP: CRLF line endings,
// dot-stuffing, the size as LIST reports it.
func TestWireFormat(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: a\n\n.one\n..two\nthree\r\n.\nlast"))
	mb.Add([]byte(""))
	mb.Add([]byte("a\r\r\nb\x00\xff\n"))
	start(t, s)
	c := login(t, s)

	if got := c.ok("STAT"); got != "+OK 3 52" {
		t.Errorf("STAT: %s", got)
	}
	c.ok("LIST")
	if got := c.multi(); got != "1 43\r\n2 0\r\n3 9\r\n" {
		t.Errorf("LIST: %q", got)
	}
	for i, m := range mb.Messages() {
		if want := []int64{43, 0, 9}[i]; m.Size() != want {
			t.Errorf("message %d: Size() = %d", i+1, m.Size())
		}
	}
	if got := c.ok("LIST 2"); got != "+OK 2 0" {
		t.Errorf("LIST 2: %s", got)
	}
	if got := c.ok("UIDL 3"); got != "+OK 3 pt00000003" {
		t.Errorf("UIDL 3: %s", got)
	}
	c.ok("UIDL")
	if got := c.multi(); got != "1 pt00000001\r\n2 pt00000002\r\n3 pt00000003\r\n" {
		t.Errorf("UIDL: %q", got)
	}

	if got := c.ok("RETR 1"); got != "+OK 43 octets" {
		t.Errorf("RETR 1: %s", got)
	}
	if got := c.multi(); got != "Subject: a\r\n\r\n..one\r\n...two\r\nthree\r\n..\r\nlast\r\n" {
		t.Errorf("RETR 1: %q", got)
	}
	c.ok("RETR 2")
	if got := c.multi(); got != "" {
		t.Errorf("RETR 2: %q", got)
	}
	c.ok("RETR 3")
	if got := c.multi(); got != "a\r\r\nb\x00\xff\r\n" {
		t.Errorf("RETR 3: %q", got)
	}

	for n, want := range map[string]string{
		"0":  "Subject: a\r\n\r\n",
		"1":  "Subject: a\r\n\r\n..one\r\n",
		"3":  "Subject: a\r\n\r\n..one\r\n...two\r\nthree\r\n",
		"99": "Subject: a\r\n\r\n..one\r\n...two\r\nthree\r\n..\r\nlast\r\n",
	} {
		c.ok("TOP 1 " + n)
		if got := c.multi(); got != want {
			t.Errorf("TOP 1 %s: %q, want %q", n, got, want)
		}
	}
	// a message without a blank line is all header
	c.ok("TOP 3 0")
	if got := c.multi(); got != "a\r\r\nb\x00\xff\r\n" {
		t.Errorf("TOP 3 0: %q", got)
	}
	for _, bad := range []string{"RETR 0", "RETR 4", "RETR x", "RETR", "TOP 1", "TOP 1 -1", "TOP 9 1", "LIST 9", "UIDL 0", "DELE 4", "DELE"} {
		if resp := c.cmd(bad); !strings.HasPrefix(resp, "-ERR") {
			t.Errorf("%s: %s", bad, resp)
		}
	}
}

// TestDeletion: DELE hides a message for the session, RSET brings it back,
// only QUIT commits; and once QUIT is answered the deletion has happened.
func TestDeletion(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	for i := 0; i < 3; i++ {
		mb.Add([]byte("message\n"))
	}
	start(t, s)
	c := login(t, s)
	c.ok("DELE 2")
	if resp := c.cmd("DELE 2"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("DELE twice: %s", resp)
	}
	if resp := c.cmd("RETR 2"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("RETR of a deleted message: %s", resp)
	}
	if got := c.ok("STAT"); got != "+OK 2 18" {
		t.Errorf("STAT: %s", got)
	}
	c.ok("LIST")
	if got := c.multi(); got != "1 9\r\n3 9\r\n" {
		t.Errorf("LIST: %q", got)
	}
	c.ok("RSET")
	if got := c.ok("STAT"); got != "+OK 3 27" {
		t.Errorf("STAT after RSET: %s", got)
	}
	c.ok("DELE 1")
	c.ok("DELE 3")
	c.ok("NOOP")
	if mb.Len() != 3 {
		t.Fatal("deleted before QUIT")
	}
	c.ok("QUIT")
	// RFC 1939 §6: +OK to QUIT means the messages are gone
	if got := mb.Messages(); len(got) != 1 || got[0].UID != "pt00000002" {
		t.Fatalf("after QUIT: %d messages", len(got))
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Errorf("connection open after QUIT: %v", err)
	}
}

// TestQuitCommitsBeforeAnswer repeats the race between the +OK to QUIT and
// the commit: a client that sees +OK must see the messages gone.
func TestQuitCommitsBeforeAnswer(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	start(t, s)
	for i := 0; i < 50; i++ {
		mb.Add([]byte("x\n"))
		c := login(t, s)
		c.ok("DELE 1")
		c.ok("QUIT")
		if n := mb.Len(); n != 0 {
			t.Fatalf("round %d: %d messages left after +OK to QUIT", i, n)
		}
		// the maildrop is free again for the next session
		c.c.Close()
	}
}

func TestCloseCommitsNothing(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("x\n"))
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	c.c.Close()
	s.Close() // waits for the session
	if mb.Len() != 1 {
		t.Fatal("deletion committed without QUIT")
	}
}

func TestDropQuit(t *testing.T) {
	s := pop3test.NewServer()
	s.Faults.DropQuit = true
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("x\n"))
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	io.WriteString(c.c, "QUIT\r\n")
	if l, err := c.br.ReadString('\n'); err != io.EOF {
		t.Fatalf("got %q, %v; want the connection closed", l, err)
	}
	s.Close()
	if mb.Len() != 1 {
		t.Fatal("dropped QUIT committed the deletion")
	}
}

func TestInUse(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	start(t, s)
	c1 := login(t, s)
	c2 := dial(t, s)
	c2.line()
	c2.ok("USER alice")
	if got := c2.cmd("PASS secret"); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Fatalf("second session: %s", got)
	}
	c1.ok("QUIT")
	c2.ok("USER alice")
	c2.ok("PASS secret")
	if s.Sessions() != 2 {
		t.Errorf("Sessions() = %d", s.Sessions())
	}
}

func TestAuthFailures(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	s.AddUser("nopass", "")
	s.Mechanisms = []string{"plain"}
	start(t, s)
	c := dial(t, s)
	c.line()
	for _, seq := range [][]string{
		{"USER alice", "PASS wrong"},
		{"USER bob", "PASS secret"},
		{"USER nopass", "PASS "},
		{"PASS secret"},
		{"APOP alice 0123456789abcdef0123456789abcdef"},
		{"AUTH PLAIN AGFsaWNlAHdyb25n"}, // \0alice\0wrong
	} {
		var resp string
		for _, line := range seq {
			resp = c.cmd(line)
		}
		if !strings.HasPrefix(resp, "-ERR [AUTH]") {
			t.Errorf("%q: %s", seq, resp)
		}
	}
	if resp := c.cmd("AUTH CRAM-MD5"); resp != "-ERR unsupported mechanism" {
		t.Errorf("AUTH of a mechanism not offered: %s", resp)
	}
	if resp := c.cmd("AUTH PLAIN !!!"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("AUTH with bad base64: %s", resp)
	}
	c.ok("AUTH")
	if got := c.multi(); got != "PLAIN\r\n" {
		t.Errorf("AUTH list: %q", got)
	}
	// cancelled exchange
	if resp := c.cmd("AUTH PLAIN"); resp != "+ " {
		t.Fatalf("AUTH PLAIN: %q", resp)
	}
	if resp := c.cmd("*"); resp != "-ERR authentication cancelled" {
		t.Fatalf("cancel: %q", resp)
	}
	// exchange after an empty challenge
	if resp := c.cmd("AUTH PLAIN"); resp != "+ " {
		t.Fatalf("AUTH PLAIN: %q", resp)
	}
	c.ok("AGFsaWNlAHNlY3JldA==") // \0alice\0secret
	want := []string{"USER alice", "PASS wrong", "USER bob", "PASS secret", "USER nopass", "PASS ", "PASS secret",
		"APOP alice 0123456789abcdef0123456789abcdef", "AUTH PLAIN AGFsaWNlAHdyb25n", "AUTH CRAM-MD5", "AUTH PLAIN !!!",
		"AUTH", "AUTH PLAIN", "*", "AUTH PLAIN", "AGFsaWNlAHNlY3JldA=="}
	if got := s.Received(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Received() = %q", got)
	}
}

// TestEarlyCommands: the server counts commands that arrive before the
// previous response while it does not offer PIPELINING.
func TestEarlyCommands(t *testing.T) {
	for _, hide := range []bool{false, true} {
		s := pop3test.NewServer()
		if hide {
			s.Faults.HideCaps = []string{"PIPELINING"}
		}
		s.AddUser("alice", "secret")
		start(t, s)
		c := dial(t, s)
		c.line()
		c.ok("CAPA")
		if caps := c.multi(); strings.Contains(caps, "PIPELINING") == hide {
			t.Errorf("hide=%v: CAPA %q", hide, caps)
		}
		io.WriteString(c.c, "NOOP\r\nNOOP\r\nNOOP\r\n")
		for i := 0; i < 3; i++ {
			c.line()
		}
		early := s.EarlyCommands()
		if hide && early == 0 {
			t.Errorf("pipelined commands not counted as early")
		}
		if !hide && early != 0 {
			t.Errorf("EarlyCommands() = %d with PIPELINING offered", early)
		}
	}
}

func TestFaults(t *testing.T) {
	s := pop3test.NewServer()
	s.Faults.Greeting = "+OK custom greeting"
	s.Faults.HideCaps = []string{"uidl", "TOP", "STLS", "SASL"}
	s.Faults.Respond = func(cmd string, args []string) (string, bool) {
		if cmd == "NOOP" && len(args) == 1 {
			return "garbage " + args[0], true
		}
		return "", false
	}
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("x\n"))
	start(t, s)
	c := dial(t, s)
	if g := c.line(); g != "+OK custom greeting" {
		t.Errorf("greeting %q", g)
	}
	c.ok("CAPA")
	caps := c.multi()
	for _, gone := range []string{"UIDL", "TOP", "STLS", "SASL"} {
		if strings.Contains(caps, gone) {
			t.Errorf("CAPA lists hidden %s:\n%s", gone, caps)
		}
	}
	for _, refused := range []string{"STLS", "AUTH PLAIN"} {
		if resp := c.cmd(refused); !strings.HasPrefix(resp, "-ERR") {
			t.Errorf("hidden %s: %s", refused, resp)
		}
	}
	c.ok("USER alice")
	c.ok("PASS secret")
	for _, refused := range []string{"UIDL", "TOP 1 0"} {
		if resp := c.cmd(refused); !strings.HasPrefix(resp, "-ERR") {
			t.Errorf("hidden %s: %s", refused, resp)
		}
	}
	if resp := c.cmd("NOOP 42"); resp != "garbage 42" {
		t.Errorf("substituted response: %q", resp)
	}
	c.ok("NOOP")
}

func TestNoCAPA(t *testing.T) {
	s := pop3test.NewServer()
	s.Faults.NoCAPA = true
	s.AddUser("alice", "secret")
	start(t, s)
	c := dial(t, s)
	c.line()
	if resp := c.cmd("CAPA"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("CAPA: %s", resp)
	}
	c.ok("USER alice")
	c.ok("PASS secret")
}

func TestSTLS(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	start(t, s)
	c := dial(t, s)
	c.line()
	c.ok("STLS")
	tc := tls.Client(c.c, &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &conn{t: t, c: tc, br: bufio.NewReader(tc)}
	c.ok("CAPA")
	if caps := c.multi(); strings.Contains(caps, "STLS") {
		t.Errorf("CAPA lists STLS inside TLS:\n%s", caps)
	}
	if resp := c.cmd("STLS"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("STLS twice: %s", resp)
	}
	c.ok("USER alice")
	c.ok("PASS secret")

	s2 := pop3test.NewServer()
	s2.OfferSTLS = false
	start(t, s2)
	c2 := dial(t, s2)
	c2.line()
	c2.ok("CAPA")
	if caps := c2.multi(); strings.Contains(caps, "STLS") {
		t.Errorf("CAPA lists STLS with OfferSTLS false:\n%s", caps)
	}
	if resp := c2.cmd("STLS"); !strings.HasPrefix(resp, "-ERR") {
		t.Errorf("STLS with OfferSTLS false: %s", resp)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	if err := s.StartTLS(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		tc, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := &conn{t: t, c: tc, br: bufio.NewReader(tc)}
		c.line()
		c.ok("CAPA")
		if caps := c.multi(); strings.Contains(caps, "STLS") {
			t.Errorf("CAPA lists STLS on implicit TLS:\n%s", caps)
		}
		tc.Close()
	}
	if _, err := tls.Dial("tcp", s.Addr(), &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("the test certificate verified without CertPool")
	}
	if cert := s.Certificate(); cert == nil || cert.Subject.CommonName == "" {
		t.Fatal("no certificate")
	}
}

// TestCloseWaits: Close drops open sessions and returns once they ended;
// later connections are refused.
func TestCloseWaits(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	start(t, s)
	c := login(t, s)
	addr := s.Addr()
	s.Close()
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("session open after Close")
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("listening after Close")
	}
	s.Close() // twice is fine
}

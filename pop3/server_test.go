package pop3_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// Behaviour against the in-process server: authentication, TLS, pipelining
// and lock-step, listings and deletion.

func dialPlain(t *testing.T, s *pop3test.Server, opts *pop3.Options) *pop3.Client {
	t.Helper()
	c, err := pop3.Dial(context.Background(), s.Addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tlsOpts(s *pop3test.Server) *pop3.Options {
	return &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}}
}

// canonical is what reading a message added to a pop3test Mailbox must
// give: lines split at LF, a CR before it dropped, every line ending in LF.
func canonical(data []byte) []byte {
	var out []byte
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}

func TestUserPass(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	if err := c.User("alice").Wait(); err != nil {
		t.Fatal(err)
	}
	err := c.Pass("wrong").Wait()
	var e *pop3.Error
	if !errors.As(err, &e) || e.Code != pop3.CodeAuth || e.Command != "PASS" || e.Temporary() {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error holds the password: %v", err)
	}
	// the session goes on after a refusal
	c.User("alice")
	if err := c.Pass("secret").Wait(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat().Wait(); err != nil || n != 0 {
		t.Fatalf("STAT: %d %v", n, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestAPOPServer(t *testing.T) {
	s, _ := startServer(t, "", "Subject: x\n\n")
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	if c.APOPTimestamp() == "" {
		t.Fatalf("no timestamp in %q", c.Greeting())
	}
	var e *pop3.Error
	if err := c.APOP("alice", "wrong").Wait(); !errors.As(err, &e) || e.Code != pop3.CodeAuth {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := c.APOP("alice", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat().Wait(); err != nil || n != 1 {
		t.Fatalf("STAT: %d %v", n, err)
	}
	for _, line := range s.Received() {
		if strings.Contains(line, "secret") {
			t.Fatalf("the secret was sent: %q", line)
		}
	}
}

func TestAuthServer(t *testing.T) {
	for name, tc := range map[string]struct {
		good, bad sasl.Client
	}{
		"PLAIN":    {sasl.NewPlainClient("", "alice", "secret"), sasl.NewPlainClient("", "alice", "wrong")},
		"LOGIN":    {sasl.NewLoginClient("alice", "secret"), sasl.NewLoginClient("alice", "wrong")},
		"CRAM-MD5": {pop3.NewCRAMMD5Client("alice", "secret"), pop3.NewCRAMMD5Client("alice", "wrong")},
		"OAUTHBEARER": {
			sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "tok"}),
			nil,
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := startServer(t, "", "Subject: x\n\n")
			s.SetToken("alice", "tok")
			begin(t, s, true)
			c := dialTLS(t, s)
			if _, err := c.Capa().Wait(); err != nil {
				t.Fatal(err)
			}
			if tc.bad != nil {
				var e *pop3.Error
				if err := c.Auth(tc.bad); !errors.As(err, &e) || e.Code != pop3.CodeAuth || e.Command != "AUTH" {
					t.Fatalf("bad credentials: %v", err)
				}
			}
			if err := c.Auth(tc.good); err != nil {
				t.Fatal(err)
			}
			if n, _, err := c.Stat().Wait(); err != nil || n != 1 {
				t.Fatalf("STAT: %d %v", n, err)
			}
		})
	}
}

// TestAuthInitialResponseServer: a PLAIN response too long for the AUTH
// line goes after the empty challenge, and the server accepts it.
func TestAuthInitialResponseServer(t *testing.T) {
	s := pop3test.NewServer()
	long := strings.Repeat("p", 300)
	s.AddUser("alice", long)
	begin(t, s, true)
	c := dialTLS(t, s)
	if err := c.Auth(sasl.NewPlainClient("", "alice", long)); err != nil {
		t.Fatal(err)
	}
	got := s.Received()
	if len(got) != 2 || got[0] != "AUTH PLAIN" {
		t.Fatalf("Received() = %q", got)
	}
}

func TestDialStartTLS(t *testing.T) {
	s, _ := startServer(t, "", "Subject: x\n\nbody\n")
	begin(t, s, false)
	c, err := pop3.DialStartTLS(context.Background(), s.Addr(), tlsOpts(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, ok := c.TLSConnectionState()
	if !ok || !st.HandshakeComplete || st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %+v", ok, st)
	}
	// the capabilities were asked again inside TLS
	if c.Caps() == nil || c.Caps().Has("STLS") || !c.Caps().Has("USER") {
		t.Fatalf("caps after STLS: %v", c.Caps())
	}
	login(t, c)
	body, err := c.Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(body); string(got) != "Subject: x\n\nbody\n" {
		t.Fatalf("read %q", got)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	want := "CAPA|STLS|CAPA|CAPA|USER alice|PASS secret|RETR 1|QUIT"
	if got := strings.Join(s.Received(), "|"); got != want {
		t.Fatalf("Received() = %q, want %q", got, want)
	}
}

// TestDialStartTLSNotOffered: a server without STLS is refused with
// ErrNoSTLS; nothing but CAPA and QUIT is sent in the clear.
func TestDialStartTLSNotOffered(t *testing.T) {
	for name, setup := range map[string]func(s *pop3test.Server){
		"OfferSTLS=false": func(s *pop3test.Server) { s.OfferSTLS = false },
		"hidden":          func(s *pop3test.Server) { s.Faults.HideCaps = []string{"STLS"} },
		"no CAPA":         func(s *pop3test.Server) { s.Faults.NoCAPA = true },
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := startServer(t, "")
			setup(s)
			begin(t, s, false)
			c, err := pop3.DialStartTLS(context.Background(), s.Addr(), tlsOpts(s))
			if !errors.Is(err, pop3.ErrNoSTLS) || c != nil {
				t.Fatalf("got %v, want ErrNoSTLS", err)
			}
			s.Close()
			if got := strings.Join(s.Received(), "|"); got != "CAPA|QUIT" {
				t.Fatalf("Received() = %q", got)
			}
		})
	}
}

// TestTLSVerification: a certificate that does not verify is a *TLSError,
// and no credentials are sent.
func TestTLSVerification(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, false)
	_, err := pop3.DialStartTLS(context.Background(), s.Addr(), nil)
	var te *pop3.TLSError
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &te) || !errors.As(err, &ua) {
		t.Fatalf("STLS with an unknown CA: %v (%T)", err, err)
	}
	if !strings.HasPrefix(err.Error(), "pop3: TLS handshake: ") {
		t.Errorf("Error() = %q", err.Error())
	}

	si, _ := startServer(t, "")
	begin(t, si, true)
	_, err = pop3.DialTLS(context.Background(), si.Addr(), nil)
	if !errors.As(err, &te) || !errors.As(err, &ua) {
		t.Fatalf("implicit TLS with an unknown CA: %v", err)
	}
	opts := tlsOpts(si)
	opts.TLSConfig.ServerName = "pop.example.org"
	_, err = pop3.DialTLS(context.Background(), si.Addr(), opts)
	var he x509.HostnameError
	if !errors.As(err, &te) || !errors.As(err, &he) {
		t.Fatalf("implicit TLS with the wrong name: %v", err)
	}
	// TLS 1.2 at least, whatever the caller asks for
	opts = tlsOpts(si)
	opts.TLSConfig.MaxVersion = tls.VersionTLS11
	if _, err = pop3.DialTLS(context.Background(), si.Addr(), opts); !errors.As(err, &te) {
		t.Fatalf("TLS 1.1: %v", err)
	}
	// the caller's config is not changed
	if opts.TLSConfig.ServerName != "" || opts.TLSConfig.MinVersion != 0 {
		t.Fatalf("caller's tls.Config modified: %+v", opts.TLSConfig)
	}
	s.Close()
	si.Close()
	for _, line := range append(s.Received(), si.Received()...) {
		if strings.HasPrefix(line, "USER") || strings.HasPrefix(line, "PASS") {
			t.Fatalf("sent %q", line)
		}
	}
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = pop3.Dial(context.Background(), addr, nil)
	var oe *net.OpError
	var te *pop3.TLSError
	if !errors.As(err, &oe) || errors.As(err, &te) {
		t.Fatalf("got %v (%T)", err, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pop3.DialTLS(ctx, addr, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestInUse(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, true)
	c1 := dialTLS(t, s)
	login(t, c1)
	c2 := dialTLS(t, s)
	c2.User("alice")
	err := c2.Pass("secret").Wait()
	var e *pop3.Error
	if !errors.As(err, &e) || e.Code != pop3.CodeInUse || !e.Temporary() {
		t.Fatalf("second session: %v", err)
	}
	if err := c1.Quit(); err != nil {
		t.Fatal(err)
	}
	c2.User("alice")
	if err := c2.Pass("secret").Wait(); err != nil {
		t.Fatalf("after the first session quit: %v", err)
	}
}

func addNumbered(mb *pop3test.Mailbox, n int) []string {
	var want []string
	for i := 1; i <= n; i++ {
		m := fmt.Sprintf("Subject: message %d\n\n.dot line %d\n%s\n", i, i, strings.Repeat("x", i*37))
		mb.Add([]byte(m))
		want = append(want, m)
	}
	return want
}

// retrAll issues RETR for messages 1..n at once, then reads them in order.
func retrAll(t *testing.T, c *pop3.Client, want []string) {
	t.Helper()
	var retrs []pop3.RetrCommand
	for i := range want {
		retrs = append(retrs, c.Retr(i+1))
	}
	for i, r := range retrs {
		body, err := r.Body()
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if string(got) != want[i] {
			t.Fatalf("message %d: got %q, want %q", i+1, got, want[i])
		}
	}
}

// TestLockStepServer: a server that does not offer PIPELINING never sees a
// command before the response to the previous one, though the caller
// issued 50 RETRs at once.
func TestLockStepServer(t *testing.T) {
	s, mb := startServer(t, "")
	s.Faults.HideCaps = []string{"PIPELINING"}
	want := addNumbered(mb, 50)
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	if c.Pipelining() {
		t.Fatal("pipelining without PIPELINING")
	}
	retrAll(t, c, want)
	var deles []*pop3.Command
	for i := range want {
		deles = append(deles, c.Dele(i+1))
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	for i, d := range deles {
		if err := d.Wait(); err != nil {
			t.Fatalf("DELE %d: %v", i+1, err)
		}
	}
	if n := s.EarlyCommands(); n != 0 {
		t.Fatalf("%d commands arrived early", n)
	}
	if mb.Len() != 0 {
		t.Fatalf("%d messages left", mb.Len())
	}
}

// TestPipelinedServer: with PIPELINING, 50 RETRs issued at once all arrive,
// in order, with a small window and the default one.
func TestPipelinedServer(t *testing.T) {
	for _, window := range []int{1, 4, 0} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			s, mb := startServer(t, "")
			want := addNumbered(mb, 50)
			begin(t, s, true)
			opts := tlsOpts(s)
			opts.Window = window
			c, err := pop3.DialTLS(context.Background(), s.Addr(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			login(t, c)
			if !c.Pipelining() {
				t.Fatal("not pipelining")
			}
			retrAll(t, c, want)
			for i := range want {
				c.Dele(i + 1)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			if mb.Len() != 0 {
				t.Fatalf("%d messages left", mb.Len())
			}
		})
	}
}

// TestLongPipeline issues thousands of commands before reading anything,
// with responses much larger than the socket buffers: writing from a
// goroutine, the client cannot deadlock.
func TestLongPipeline(t *testing.T) {
	s, mb := startServer(t, "")
	const n = 300
	body := strings.Repeat("0123456789abcdef", 2048) + "\n" // 32 KiB
	for i := 0; i < n; i++ {
		mb.Add([]byte(body))
	}
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	login(t, c)
	uidl, list := c.UIDL(), c.List()
	var retrs []pop3.RetrCommand
	var deles []*pop3.Command
	for i := 1; i <= n; i++ {
		retrs = append(retrs, c.Retr(i))
		deles = append(deles, c.Dele(i))
		c.Noop()
	}
	uids, err := uidl.Wait()
	if err != nil || len(uids) != n {
		t.Fatalf("UIDL: %d %v", len(uids), err)
	}
	sizes, err := list.Wait()
	if err != nil || len(sizes) != n {
		t.Fatalf("LIST: %d %v", len(sizes), err)
	}
	for i, r := range retrs {
		b, err := r.Body()
		if err != nil {
			t.Fatal(err)
		}
		k, err := io.Copy(io.Discard, b)
		if err != nil || k != int64(len(body)) || b.Octets() != sizes[i].Size {
			t.Fatalf("message %d: %d octets, %v; Octets() %d, LIST %d", i+1, k, err, b.Octets(), sizes[i].Size)
		}
	}
	if err := deles[n-1].Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if mb.Len() != 0 {
		t.Fatalf("%d messages left", mb.Len())
	}
}

func TestErrBodySkippedServer(t *testing.T) {
	for _, hide := range []bool{false, true} {
		s, _ := startServer(t, "", "Subject: 1\n\none\n", "Subject: 2\n\ntwo\n", "Subject: 3\n\nthree\n")
		if hide {
			s.Faults.HideCaps = []string{"PIPELINING"}
		}
		begin(t, s, true)
		c := dialTLS(t, s)
		login(t, c)
		r1, r2, r3 := c.Retr(1), c.Retr(2), c.Retr(3)
		b3, err := r3.Body()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(b3); string(got) != "Subject: 3\n\nthree\n" {
			t.Fatalf("message 3: %q", got)
		}
		for i, r := range []pop3.RetrCommand{r1, r2} {
			if _, err := r.Body(); !errors.Is(err, pop3.ErrBodySkipped) {
				t.Fatalf("pipelining=%v, message %d: %v", !hide, i+1, err)
			}
		}
		// the session is in step
		if n, _, err := c.Stat().Wait(); err != nil || n != 3 {
			t.Fatalf("STAT: %d %v", n, err)
		}
	}
}

func TestTopServer(t *testing.T) {
	s, _ := startServer(t, "", "Subject: x\nFrom: a@example.org\n\nline 1\n.line 2\nline 3\n")
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	for lines, want := range map[int]string{
		0:  "Subject: x\nFrom: a@example.org\n\n",
		2:  "Subject: x\nFrom: a@example.org\n\nline 1\n.line 2\n",
		10: "Subject: x\nFrom: a@example.org\n\nline 1\n.line 2\nline 3\n",
	} {
		body, err := c.Top(1, lines).Body()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(body); err != nil || string(got) != want {
			t.Errorf("TOP 1 %d: %q %v", lines, got, err)
		}
	}
	var e *pop3.Error
	if _, err := c.Top(2, 0).Body(); !errors.As(err, &e) {
		t.Errorf("TOP of no message: %v", err)
	}
}

// TestMessageBytes: every byte is preserved except for POP3's own framing,
// and Octets agrees with LIST.
func TestMessageBytes(t *testing.T) {
	msgs := [][]byte{
		[]byte("Subject: plain\r\n\r\nbody\r\n"),
		[]byte("Subject: dots\n\n.\n..\n...\n.x\n. \n"),
		[]byte("Subject: binary\n\n\x00\x01\xff\xfe\x80 caf\xc3\xa9\n"),
		[]byte("Subject: bare CR\n\na\rb\nc\r\r\nd\r"),
		[]byte("Subject: long\n\n" + strings.Repeat("L", 1<<20) + "\n" + "." + strings.Repeat("M", 70000) + "\n"),
		[]byte("no header, no final newline"),
		[]byte(""),
		[]byte("\n"),
	}
	s, mb := startServer(t, "")
	for _, m := range msgs {
		mb.Add(m)
	}
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	sizes, err := c.List().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		body, err := c.Retr(i + 1).Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, canonical(m)) {
			t.Errorf("message %d: got %s, want %s", i+1, abbrevQ(got), abbrevQ(canonical(m)))
		}
		if body.Octets() != sizes[i].Size || sizes[i].Size != mb.Messages()[i].Size() {
			t.Errorf("message %d: Octets() %d, LIST %d, server %d", i+1, body.Octets(), sizes[i].Size, mb.Messages()[i].Size())
		}
	}
}

func abbrevQ(b []byte) string {
	if len(b) > 60 {
		return fmt.Sprintf("%q...(%d)", b[:60], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// TestOddUIDs: UIDs outside RFC 1939's rules are returned as sent, and
// ValidUID says they are not valid.
func TestOddUIDs(t *testing.T) {
	uids := []string{
		"ok-uid",
		"has space",
		"caf\xc3\xa9",
		"\xff\xfe",
		strings.Repeat("u", 71),
		"../../etc/passwd",
		"dup",
		"dup",
		"tab\there",
		"-ERR",
		".",
	}
	s, mb := startServer(t, "")
	for _, u := range uids {
		mb.AddWithUID(u, []byte("Subject: "+u+"\n\n"))
	}
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	got, err := c.UIDL().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(uids) {
		t.Fatalf("%d UIDs, want %d", len(got), len(uids))
	}
	for i, m := range got {
		if m.Number != i+1 || m.UID != uids[i] {
			t.Errorf("line %d: %+v, want %q", i+1, m, uids[i])
		}
		valid := uids[i] != "has space" && uids[i] != "caf\xc3\xa9" && uids[i] != "\xff\xfe" &&
			len(uids[i]) <= 70 && uids[i] != "tab\there"
		if pop3.ValidUID(m.UID) != valid {
			t.Errorf("ValidUID(%q) = %v", m.UID, !valid)
		}
	}
}

func TestDeletionCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *pop3.Client) error
		left int
		fail bool
	}{
		{"quit", func(c *pop3.Client) error { return c.Quit() }, 1, false},
		{"close", func(c *pop3.Client) error { return c.Close() }, 3, false},
		{"rset then quit", func(c *pop3.Client) error { c.Rset(); return c.Quit() }, 3, false},
		{"noop then quit", func(c *pop3.Client) error { c.Noop(); return c.Quit() }, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, mb := startServer(t, "", "1\n", "2\n", "3\n")
			begin(t, s, true)
			c := dialTLS(t, s)
			login(t, c)
			c.Dele(1)
			c.Dele(3)
			if err := tc.end(c); err != nil {
				t.Fatal(err)
			}
			s.Close() // wait for the session
			if mb.Len() != tc.left {
				t.Fatalf("%d messages left, want %d", mb.Len(), tc.left)
			}
		})
	}
}

// TestDropQuit: a connection that ends before the answer to QUIT is an
// error: the deletions may not have been committed (and here were not).
func TestDropQuit(t *testing.T) {
	s, mb := startServer(t, "", "1\n", "2\n")
	s.Faults.DropQuit = true
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	c.Dele(1)
	c.Dele(2)
	err := c.Quit()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Quit: %v, want io.ErrUnexpectedEOF", err)
	}
	s.Close()
	if mb.Len() != 2 {
		t.Fatalf("%d messages left", mb.Len())
	}
}

// TestProtocolErrorSilences: after a garbage response the client sends
// nothing more, not even QUIT, so no DELE can be committed after a desync.
func TestProtocolErrorSilences(t *testing.T) {
	s, mb := startServer(t, "", "1\n", "2\n")
	s.Faults.Respond = func(cmd string, args []string) (string, bool) {
		if cmd == "STAT" {
			return "garbage", true
		}
		return "", false
	}
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	c.Dele(1)
	_, _, err := c.Stat().Wait()
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v", err)
	}
	if err2 := c.Quit(); err2 != err {
		t.Fatalf("Quit after the protocol error: %v", err2)
	}
	c.Close()
	s.Close()
	if got := s.Received(); got[len(got)-1] != "STAT" {
		t.Fatalf("client went on after the protocol error: %q", got)
	}
	if mb.Len() != 2 {
		t.Fatal("deletion committed")
	}
}

// TestStallServer: a server that stops answering is a timeout; Close from
// another goroutine ends the wait sooner.
func TestStallServer(t *testing.T) {
	release := make(chan struct{})
	s, _ := startServer(t, "")
	s.Faults.Respond = func(cmd string, args []string) (string, bool) {
		if cmd == "NOOP" {
			<-release
		}
		return "", false
	}
	begin(t, s, false)
	t.Cleanup(func() { close(release) }) // before s.Close, which waits for sessions

	c := dialPlain(t, s, &pop3.Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	checkTimeout(t, c.Noop().Wait(), start)

	c2 := dialPlain(t, s, nil)
	go func() {
		time.Sleep(50 * time.Millisecond)
		c2.Close()
	}()
	if err := c2.Noop().Wait(); !errors.Is(err, pop3.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestRemoteAddr(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, true)
	c := dialTLS(t, s)
	if got := c.RemoteAddr().String(); got != s.Addr() {
		t.Fatalf("RemoteAddr() = %s, want %s", got, s.Addr())
	}
	st, ok := c.TLSConnectionState()
	if !ok || st.Version < tls.VersionTLS12 || len(st.PeerCertificates) == 0 {
		t.Fatalf("TLS state: %v %+v", ok, st)
	}
}

// TestStartTLSDirect: StartTLS on a client dialled in the clear; the
// capabilities are forgotten (RFC 2595 §4) and asked again.
func TestStartTLSDirect(t *testing.T) {
	s, _ := startServer(t, "", "Subject: x\n\n")
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has("STLS") {
		t.Fatal("no STLS in CAPA")
	}
	cfg := &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10}
	if err := c.StartTLS(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS10 {
		t.Fatal("caller's tls.Config modified")
	}
	if c.Caps() != nil || c.Pipelining() {
		t.Fatalf("capabilities kept across STLS: %v", c.Caps())
	}
	if st, ok := c.TLSConnectionState(); !ok || st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %x", ok, st.Version)
	}
	if err := c.StartTLS(context.Background(), cfg); !errors.Is(err, pop3.ErrNoSTLS) {
		t.Fatalf("STLS twice: %v", err)
	}
	login(t, c)
	if c.Caps().Has("STLS") {
		t.Fatal("STLS listed inside TLS")
	}
	if n, _, err := c.Stat().Wait(); err != nil || n != 1 {
		t.Fatalf("STAT: %d %v", n, err)
	}
}

// TestStartTLSNilConfig: a nil config means Options.TLSConfig; without one
// the handshake fails as a *TLSError (there is no name to verify).
func TestStartTLSNilConfig(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, false)
	opts := &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost"}}
	c := dialPlain(t, s, opts)
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	login(t, c)

	c2 := dialPlain(t, s, nil)
	if _, err := c2.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	var te *pop3.TLSError
	if err := c2.StartTLS(context.Background(), nil); !errors.As(err, &te) {
		t.Fatalf("got %v, want *TLSError", err)
	}
}

// TestHangup: Hangup ends the session without QUIT, and returns once the
// server has seen the end, so a server that locks the mailbox for the
// session has released it: a second session can log in at once. Plain and
// implicit TLS; with a message still in flight.
func TestHangup(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		s, mb := startServer(t, "", "Subject: a\n\nbody\n", "Subject: b\n\nbody\n")
		begin(t, s, implicit)
		var c *pop3.Client
		var err error
		if implicit {
			c, err = pop3.DialTLS(context.Background(), s.Addr(), tlsOpts(s))
		} else {
			c, err = pop3.Dial(context.Background(), s.Addr(), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.User("alice")
		if err := c.Pass("secret").Wait(); err != nil {
			t.Fatal(err)
		}
		c.Dele(1)
		c.Retr(2) // in flight, never read
		if err := c.Hangup(5 * time.Second); err != nil {
			t.Fatalf("implicit %v: %v", implicit, err)
		}
		if !errors.Is(c.Err(), pop3.ErrClosed) {
			t.Errorf("Err after Hangup: %v", c.Err())
		}
		if s.Active() != 0 {
			t.Errorf("implicit %v: the server still has %d sessions after Hangup", implicit, s.Active())
		}
		if mb.Len() != 2 {
			t.Errorf("implicit %v: %d messages left, want 2: no QUIT, no deletion", implicit, mb.Len())
		}
	}
}

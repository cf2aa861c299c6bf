package pop3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
)

// Exact-bytes and fault tests: the server is a function run as the peer of
// the client over net.Pipe, and the whole transcript of what the client
// wrote is compared at the end.

// peer is the server side of a scripted session.
type peer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader

	mu  sync.Mutex
	got bytes.Buffer // every byte the client wrote
}

// peerTimeout bounds every wait of the peer, so that a client that does
// not send what the script expects fails the test instead of hanging it.
const peerTimeout = 10 * time.Second

// write sends lines, each followed by CRLF, in a single write.
func (p *peer) write(lines ...string) error {
	return p.writeRaw(strings.Join(lines, "\r\n") + "\r\n")
}

// writeRaw sends s as it is, in a single write.
func (p *peer) writeRaw(s string) error {
	p.conn.SetWriteDeadline(time.Now().Add(peerTimeout))
	_, err := io.WriteString(p.conn, s)
	return err
}

// readLine reads a line of the client, without its CRLF.
func (p *peer) readLine() (string, error) {
	p.conn.SetReadDeadline(time.Now().Add(peerTimeout))
	line, err := p.br.ReadString('\n')
	p.mu.Lock()
	p.got.WriteString(line)
	p.mu.Unlock()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// expect reads a line and fails the test if it is not want.
func (p *peer) expect(want string) bool {
	p.t.Helper()
	got, err := p.readLine()
	if err != nil {
		p.t.Errorf("peer: waiting for %q: %v", want, err)
		return false
	}
	if got != want {
		p.t.Errorf("peer: got %q, want %q", got, want)
		return false
	}
	return true
}

// expectNothing fails the test if the client sends anything within d: a
// check that a command was not written early.
func (p *peer) expectNothing(d time.Duration) {
	p.t.Helper()
	if p.br.Buffered() > 0 {
		p.t.Errorf("peer: client sent %d octets early", p.br.Buffered())
		return
	}
	p.conn.SetReadDeadline(time.Now().Add(d))
	if _, err := p.br.Peek(1); err == nil {
		p.t.Errorf("peer: client sent a line early")
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		p.t.Errorf("peer: %v", err)
	}
}

// transcript returns what the client has written so far.
func (p *peer) transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String()
}

// scripted runs serve as the peer of a client made by NewClient with opts.
// finish closes the client, waits for serve, reads whatever else the client
// wrote until it closed the connection, and returns the whole transcript.
type scripted struct {
	c    *pop3.Client
	err  error // of NewClient
	p    *peer
	done chan struct{}
	once sync.Once
}

func runScript(t *testing.T, opts *pop3.Options, serve func(p *peer)) *scripted {
	t.Helper()
	cconn, sconn := net.Pipe()
	p := &peer{t: t, conn: sconn, br: bufio.NewReader(sconn)}
	s := &scripted{p: p, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		serve(p)
		// keep reading, so that anything the client writes after the script
		// shows up in the transcript
		for {
			if _, err := p.readLine(); err != nil {
				return
			}
		}
	}()
	s.c, s.err = pop3.NewClient(tcpLike{cconn}, opts)
	t.Cleanup(func() {
		cconn.Close()
		s.finish()
		sconn.Close()
	})
	return s
}

// client returns the client, failing the test if NewClient failed.
func (s *scripted) client() *pop3.Client {
	s.p.t.Helper()
	if s.err != nil {
		s.p.t.Fatalf("NewClient: %v", s.err)
	}
	return s.c
}

func (s *scripted) finish() string {
	s.once.Do(func() {
		if s.c != nil {
			s.c.Close()
		}
		select {
		case <-s.done:
		case <-time.After(2 * peerTimeout):
			s.p.t.Error("peer script did not end")
		}
	})
	return s.p.transcript()
}

// checkTranscript compares the whole transcript with want, after closing.
func (s *scripted) checkTranscript(want ...string) {
	s.p.t.Helper()
	w := ""
	if len(want) > 0 {
		w = strings.Join(want, "\r\n") + "\r\n"
	}
	if got := s.finish(); got != w {
		s.p.t.Errorf("client wrote:\n%q\nwant:\n%q", got, w)
	}
}

// tcpLike gives a net.Pipe end TCP's behaviour once the other end has
// closed: setting a deadline still works (net.Pipe refuses with
// io.ErrClosedPipe), so the next read sees io.EOF, as on a socket.
type tcpLike struct{ net.Conn }

func (c tcpLike) SetReadDeadline(t time.Time) error {
	c.Conn.SetReadDeadline(t)
	return nil
}

func (c tcpLike) SetWriteDeadline(t time.Time) error {
	c.Conn.SetWriteDeadline(t)
	return nil
}

const rfcGreeting = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"

func TestGreeting(t *testing.T) {
	s := runScript(t, nil, func(p *peer) { p.write(rfcGreeting) })
	c := s.client()
	if got := c.Greeting(); got != "POP3 server ready <1896.697170952@dbc.mtview.ca.us>" {
		t.Errorf("Greeting() = %q", got)
	}
	if got := c.APOPTimestamp(); got != "<1896.697170952@dbc.mtview.ca.us>" {
		t.Errorf("APOPTimestamp() = %q", got)
	}
	if c.Pipelining() || c.Caps() != nil {
		t.Error("pipelining or capabilities before CAPA")
	}
	if c.Err() != nil {
		t.Errorf("Err() = %v on a usable client", c.Err())
	}
	if _, ok := c.TLSConnectionState(); ok {
		t.Error("TLS on a plain connection")
	}
	s.checkTranscript()
}

func TestGreetingRefused(t *testing.T) {
	s := runScript(t, nil, func(p *peer) { p.write("-ERR [SYS/TEMP] too many connections") })
	var e *pop3.Error
	if !errors.As(s.err, &e) || e.Code != pop3.CodeSysTemp || e.Text != "too many connections" || !e.Temporary() {
		t.Fatalf("got %#v, want *Error with SYS/TEMP", s.err)
	}
	if s.c != nil {
		t.Fatal("a client for a refused session")
	}
	s.checkTranscript() // not even QUIT
}

func TestGreetingGarbage(t *testing.T) {
	for _, greeting := range []string{
		"* OK IMAP4rev1 Service Ready",
		"220 mail.example.com ESMTP",
		"SSH-2.0-OpenSSH_9.6",
		"",
		"+OKAY",
		"\x16\x03\x01\x00", // a TLS record, as from a port-995 server
	} {
		s := runScript(t, nil, func(p *peer) { p.write(greeting) })
		var pe *pop3.ProtocolError
		if !errors.As(s.err, &pe) || pe.Command != "" {
			t.Errorf("%q: got %v, want *ProtocolError in the greeting", greeting, s.err)
		}
		s.checkTranscript()
	}
}

// TestGreetingTooLong sends a 1 MB greeting: it is refused as a
// *ProtocolError after reading no more than the client's fixed buffer.
func TestGreetingTooLong(t *testing.T) {
	var sent int
	s := runScript(t, nil, func(p *peer) {
		chunk := strings.Repeat("a", 4096)
		if err := p.writeRaw("+OK "); err != nil {
			return
		}
		for sent < 1<<20 {
			n, err := p.conn.Write([]byte(chunk))
			sent += n
			if err != nil {
				return
			}
		}
		p.write("")
	})
	var pe *pop3.ProtocolError
	if !errors.As(s.err, &pe) {
		t.Fatalf("got %v (%T), want *ProtocolError", s.err, s.err)
	}
	s.checkTranscript()
	if sent > 128<<10 {
		t.Errorf("client read %d octets of an over-long greeting", sent)
	}
}

// TestGreetingCut: the connection ends before the greeting.
func TestGreetingCut(t *testing.T) {
	for _, greeting := range []string{"", "+OK half a line"} {
		s := runScript(t, nil, func(p *peer) {
			p.writeRaw(greeting)
			p.conn.Close()
		})
		if !errors.Is(s.err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: got %v, want io.ErrUnexpectedEOF", greeting, s.err)
		}
	}
}

// TestGreetingTimeout: a server that never greets fails within the timeout.
func TestGreetingTimeout(t *testing.T) {
	start := time.Now()
	s := runScript(t, &pop3.Options{Timeout: 50 * time.Millisecond}, func(p *peer) {})
	checkTimeout(t, s.err, start)
	s.checkTranscript()
}

// checkTimeout checks that err is a network timeout, reported in a time
// that has to do with the timeout (the bound is loose: the machine is busy).
func checkTimeout(t *testing.T, err error, start time.Time) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v (%T), want a timeout", err, err)
	}
	if d := time.Since(start); d > peerTimeout/2 {
		t.Errorf("timeout took %v", d)
	}
}

func TestCapa(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK Capability list follows",
			"TOP", "user", "SASL PLAIN login", "RESP-CODES", "LOGIN-DELAY 900",
			"pipelining", "EXPIRE 60", "UIDL", "IMPLEMENTATION Shlemazle-Plotz-v302",
			"", "..X-DOTTED", ".")
		p.expect("NOOP")
		p.write("+OK")
	})
	c := s.client()
	caps, err := c.Capa().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"TOP", "USER", "user", "SASL", "RESP-CODES", "LOGIN-DELAY", "PIPELINING", "EXPIRE", "UIDL", "IMPLEMENTATION", ".X-DOTTED"} {
		if !caps.Has(name) {
			t.Errorf("capability %s missing from %v", name, caps)
		}
	}
	if caps.Has("STLS") {
		t.Error("STLS listed")
	}
	if got := strings.Join(caps.Args("sasl"), " "); got != "PLAIN login" {
		t.Errorf("SASL args %q", got)
	}
	if got := strings.Join(caps.Args("IMPLEMENTATION"), " "); got != "Shlemazle-Plotz-v302" {
		t.Errorf("IMPLEMENTATION args %q", got)
	}
	if !c.Pipelining() || !c.Caps().Has("TOP") {
		t.Error("Caps not kept after CAPA")
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("CAPA", "NOOP")
}

// TestCapaRefused: an RFC 1939 server without CAPA; the client goes on
// lock-step.
func TestCapaRefused(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("-ERR unknown command")
		p.expect("USER mrose")
		p.expectNothing(50 * time.Millisecond)
		p.write("+OK mrose is a real hoopy frood")
		p.expect("PASS tanstaaf")
		p.write("+OK mrose's maildrop has 2 messages (320 octets)")
	})
	c := s.client()
	_, err := c.Capa().Wait()
	var e *pop3.Error
	if !errors.As(err, &e) || e.Command != "CAPA" {
		t.Fatalf("got %v, want *Error for CAPA", err)
	}
	if c.Pipelining() {
		t.Fatal("pipelining without CAPA")
	}
	u, pw := c.User("mrose"), c.Pass("tanstaaf")
	if err := u.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pw.Wait(); err != nil {
		t.Fatal(err)
	}
	if pw.Text() != "mrose's maildrop has 2 messages (320 octets)" {
		t.Errorf("Text() = %q", pw.Text())
	}
	s.checkTranscript("CAPA", "USER mrose", "PASS tanstaaf")
}

// TestRFC1939Session replays the example session of RFC 1939 §10, with
// the commands pipelined (the server lists PIPELINING).
func TestRFC1939Session(t *testing.T) {
	msg1 := "Subject: one\r\n\r\n..a stuffed line\r\nend\r\n"
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", ".")
		p.expect("APOP mrose c4c9334bac560ecc979e58001b3e22fb")
		p.expect("STAT")
		p.expect("LIST")
		p.expect("UIDL")
		p.expect("RETR 1")
		p.expect("DELE 1")
		p.expect("TOP 2 0")
		// every command came before any response: they were pipelined
		p.write("+OK mrose's maildrop has 2 messages (320 octets)",
			"+OK 2 320",
			"+OK 2 messages (320 octets)", "1 120", "2 200", ".",
			"+OK", "1 whqtswO00WBw418f9t5JxYwZ", "2 QhdPYR:00WBw1Ph7x7", ".",
			"+OK 120 octets")
		p.writeRaw(msg1 + ".\r\n")
		p.write("+OK message 1 deleted",
			"+OK top of message follows", "Subject: two", "", ".")
		p.expect("QUIT")
		p.write("+OK dewey POP3 server signing off (maildrop empty)")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	apop := c.APOP("mrose", "tanstaaf")
	stat := c.Stat()
	list := c.List()
	uidl := c.UIDL()
	retr := c.Retr(1)
	dele := c.Dele(1)
	top := c.Top(2, 0)
	if err := apop.Wait(); err != nil {
		t.Fatal(err)
	}
	n, size, err := stat.Wait()
	if err != nil || n != 2 || size != 320 {
		t.Fatalf("STAT: %d %d %v", n, size, err)
	}
	sizes, err := list.Wait()
	if err != nil || len(sizes) != 2 || sizes[0] != (pop3.MessageInfo{Number: 1, Size: 120}) || sizes[1] != (pop3.MessageInfo{Number: 2, Size: 200}) {
		t.Fatalf("LIST: %+v %v", sizes, err)
	}
	uids, err := uidl.Wait()
	if err != nil || len(uids) != 2 || uids[0].UID != "whqtswO00WBw418f9t5JxYwZ" || uids[1] != (pop3.MessageInfo{Number: 2, UID: "QhdPYR:00WBw1Ph7x7"}) {
		t.Fatalf("UIDL: %+v %v", uids, err)
	}
	body, err := retr.Body()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || string(got) != "Subject: one\n\n.a stuffed line\nend\n" {
		t.Fatalf("RETR: %q %v", got, err)
	}
	if body.Octets() != int64(len(msg1)-1) {
		t.Errorf("Octets() = %d", body.Octets())
	}
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dele.Wait(); err != nil {
		t.Fatal(err)
	}
	tb, err := top.Body()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(tb); err != nil || string(got) != "Subject: two\n\n" {
		t.Fatalf("TOP: %q %v", got, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); !errors.Is(err, pop3.ErrClosed) {
		t.Fatalf("after QUIT: %v", err)
	}
	s.checkTranscript("CAPA", "APOP mrose c4c9334bac560ecc979e58001b3e22fb", "STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "TOP 2 0", "QUIT")
}

// TestLockStep: without PIPELINING in CAPA, a command is written only once
// the previous response has been read, though the caller issued them all.
func TestLockStep(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "TOP", "UIDL", ".")
		for _, cmd := range []string{"NOOP", "RETR 1", "DELE 1", "NOOP"} {
			p.expect(cmd)
			p.expectNothing(30 * time.Millisecond)
			switch cmd {
			case "RETR 1":
				p.write("+OK", "body", ".")
			default:
				p.write("+OK")
			}
		}
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	noop, retr, dele, noop2 := c.Noop(), c.Retr(1), c.Dele(1), c.Noop()
	// wait on the last: the earlier ones are answered on the way, the
	// message read and discarded
	if err := noop2.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := noop.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := dele.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := retr.Body(); !errors.Is(err, pop3.ErrBodySkipped) {
		t.Fatalf("Body of a skipped message: %v", err)
	}
	s.checkTranscript("CAPA", "NOOP", "RETR 1", "DELE 1", "NOOP")
}

// TestWindow: with pipelining, no more than Options.Window commands are on
// the wire unanswered.
func TestWindow(t *testing.T) {
	s := runScript(t, &pop3.Options{Window: 2}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", ".")
		p.expect("DELE 1")
		p.expect("DELE 2")
		p.expectNothing(50 * time.Millisecond)
		p.write("+OK")
		p.expect("DELE 3")
		p.expectNothing(50 * time.Millisecond)
		p.write("+OK", "+OK")
		p.expect("DELE 4")
		p.expect("DELE 5")
		p.write("+OK", "+OK")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	var cmds []*pop3.Command
	for i := 1; i <= 5; i++ {
		cmds = append(cmds, c.Dele(i))
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("DELE %d: %v", i+1, err)
		}
	}
	s.checkTranscript("CAPA", "DELE 1", "DELE 2", "DELE 3", "DELE 4", "DELE 5")
}

func TestStat(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("STAT")
		p.write("+OK 0 0")
		p.expect("STAT")
		p.write("+OK 3 1024 extra words")
		p.expect("STAT")
		p.write("-ERR [SYS/TEMP] not now")
		p.expect("STAT")
		p.write("+OK lots")
	})
	c := s.client()
	if n, size, err := c.Stat().Wait(); err != nil || n != 0 || size != 0 {
		t.Fatalf("%d %d %v", n, size, err)
	}
	if n, size, err := c.Stat().Wait(); err != nil || n != 3 || size != 1024 {
		t.Fatalf("%d %d %v", n, size, err)
	}
	var e *pop3.Error
	if _, _, err := c.Stat().Wait(); !errors.As(err, &e) || e.Code != pop3.CodeSysTemp || e.Command != "STAT" {
		t.Fatalf("got %v", err)
	}
	_, _, err := c.Stat().Wait()
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) || pe.Command != "STAT" {
		t.Fatalf("got %v, want *ProtocolError", err)
	}
	if err2 := c.Noop().Wait(); !errors.Is(err2, err) {
		t.Fatalf("after a malformed STAT: %v", err2)
	}
	s.checkTranscript("STAT", "STAT", "STAT", "STAT")
}

// TestMultiLineErr: -ERR to a multi-line command has no body, and the
// session goes on.
func TestMultiLineErr(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("LIST")
		p.write("-ERR [SYS/TEMP] listing unavailable")
		p.expect("UIDL")
		p.write("-ERR unknown command")
		p.expect("RETR 9")
		p.write("-ERR no such message, only 2 messages in maildrop")
		p.expect("TOP 1 0")
		p.write("-ERR nope")
		p.expect("NOOP")
		p.write("+OK still here")
	})
	c := s.client()
	var e *pop3.Error
	if _, err := c.List().Wait(); !errors.As(err, &e) || e.Command != "LIST" || e.Code != pop3.CodeSysTemp {
		t.Fatalf("LIST: %v", err)
	}
	if _, err := c.UIDL().Wait(); !errors.As(err, &e) || e.Command != "UIDL" || e.Code != "" {
		t.Fatalf("UIDL: %v", err)
	}
	if _, err := c.Retr(9).Body(); !errors.As(err, &e) || e.Command != "RETR" || e.Text != "no such message, only 2 messages in maildrop" {
		t.Fatalf("RETR: %v", err)
	}
	if err := c.Top(1, 0).Wait(); !errors.As(err, &e) || e.Command != "TOP" {
		t.Fatalf("TOP: %v", err)
	}
	noop := c.Noop()
	if err := noop.Wait(); err != nil || noop.Text() != "still here" {
		t.Fatalf("NOOP: %v %q", err, noop.Text())
	}
	s.checkTranscript("LIST", "UIDL", "RETR 9", "TOP 1 0", "NOOP")
}

// TestBrokenStaysBroken: after a protocol or I/O error every later call
// returns that error, and nothing more is written, not even QUIT.
func TestBrokenStaysBroken(t *testing.T) {
	tests := []struct {
		name  string
		cmd   string // the command the peer answers badly
		reply string // raw bytes sent in reply
		cut   bool   // then the peer closes the connection
		kind  func(error) bool
		issue func(c *pop3.Client) error
	}{
		{name: "garbage status", cmd: "NOOP", reply: "* OK garbage\r\n", kind: isProtocolError,
			issue: func(c *pop3.Client) error { return c.Noop().Wait() }},
		{name: "over-long status", cmd: "NOOP", reply: "+OK " + strings.Repeat("x", 20000) + "\r\n", kind: isProtocolError,
			issue: func(c *pop3.Client) error { return c.Noop().Wait() }},
		{name: "over-long listing line", cmd: "UIDL", reply: "+OK\r\n1 " + strings.Repeat("u", 100000) + "\r\n.\r\n", kind: isProtocolError,
			issue: func(c *pop3.Client) error { _, err := c.UIDL().Wait(); return err }},
		{name: "malformed scan listing", cmd: "LIST", reply: "+OK\r\n1 120\r\ntwo 200\r\n.\r\n", kind: isProtocolError,
			issue: func(c *pop3.Client) error { _, err := c.List().Wait(); return err }},
		{name: "malformed uid listing", cmd: "UIDL", reply: "+OK\r\n1\r\n.\r\n", kind: isProtocolError,
			issue: func(c *pop3.Client) error { _, err := c.UIDL().Wait(); return err }},
		{name: "cut in a listing", cmd: "LIST", reply: "+OK\r\n1 120\r\n", cut: true, kind: isUnexpectedEOF,
			issue: func(c *pop3.Client) error { _, err := c.List().Wait(); return err }},
		{name: "cut before status", cmd: "DELE 1", reply: "", cut: true, kind: isUnexpectedEOF,
			issue: func(c *pop3.Client) error { return c.Dele(1).Wait() }},
		{name: "cut in a message", cmd: "RETR 1", reply: "+OK\r\nSubject: x\r\n\r\nbo", cut: true, kind: isUnexpectedEOF,
			issue: func(c *pop3.Client) error {
				body, err := c.Retr(1).Body()
				if err != nil {
					return err
				}
				_, err = io.ReadAll(body)
				return err
			}},
		{name: "cut in a skipped message", cmd: "RETR 1", reply: "+OK\r\nSubject: x\r\n", cut: true, kind: isUnexpectedEOF,
			issue: func(c *pop3.Client) error { return c.Retr(1).Wait() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				p.expect(tc.cmd)
				p.writeRaw(tc.reply)
				if tc.cut {
					p.conn.Close()
				}
			})
			c := s.client()
			err := tc.issue(c)
			if !tc.kind(err) {
				t.Fatalf("got %v (%T)", err, err)
			}
			sticky := c.Noop().Wait()
			if sticky == nil || !tc.kind(sticky) {
				t.Fatalf("NOOP after the failure: %v", sticky)
			}
			if c.Err() != sticky {
				t.Fatalf("Err() = %v, want %v", c.Err(), sticky)
			}
			for name, later := range map[string]func() error{
				"NOOP": func() error { return c.Noop().Wait() },
				"STAT": func() error { _, _, err := c.Stat().Wait(); return err },
				"LIST": func() error { _, err := c.List().Wait(); return err },
				"RETR": func() error { _, err := c.Retr(1).Body(); return err },
				"DELE": func() error { return c.Dele(1).Wait() },
				"CAPA": func() error { _, err := c.Capa().Wait(); return err },
				"AUTH": func() error { return c.Auth(sasl.NewPlainClient("", "u", "p")) },
				"STLS": func() error { return c.StartTLS(context.Background(), &tls.Config{}) },
				"QUIT": c.Quit,
			} {
				if err2 := later(); err2 != sticky {
					t.Errorf("%s after the failure: %v, want %v", name, err2, sticky)
				}
			}
			if !tc.cut {
				s.checkTranscript(tc.cmd)
			} else {
				s.finish()
				if got := s.p.transcript(); got != tc.cmd+"\r\n" {
					t.Errorf("client wrote %q", got)
				}
			}
		})
	}
}

func isProtocolError(err error) bool {
	var pe *pop3.ProtocolError
	return errors.As(err, &pe)
}

func isUnexpectedEOF(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }

// TestCloseUnblocks: Close from another goroutine ends a call blocked on
// the network, with ErrClosed, and writes nothing.
func TestCloseUnblocks(t *testing.T) {
	for _, what := range []string{"status", "body"} {
		t.Run(what, func(t *testing.T) {
			waiting := make(chan struct{})
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				if what == "status" {
					p.expect("NOOP")
				} else {
					p.expect("RETR 1")
					p.write("+OK", "first line")
				}
				close(waiting) // and stall
			})
			c := s.client()
			go func() {
				<-waiting
				time.Sleep(20 * time.Millisecond) // let the call block
				c.Close()
			}()
			var err error
			if what == "status" {
				err = c.Noop().Wait()
				if !errors.Is(err, pop3.ErrClosed) {
					t.Fatalf("got %v, want ErrClosed", err)
				}
			} else {
				body, err := c.Retr(1).Body()
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(body)
				if string(got) != "first line\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read %q, %v", got, err)
				}
			}
			if err := c.Noop().Wait(); !errors.Is(err, pop3.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
			if !errors.Is(c.Err(), pop3.ErrClosed) {
				t.Fatalf("Err() after Close: %v", c.Err())
			}
			if err := c.Quit(); !errors.Is(err, pop3.ErrClosed) {
				t.Fatalf("Quit after Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if what == "status" {
				s.checkTranscript("NOOP")
			} else {
				s.checkTranscript("RETR 1")
			}
		})
	}
}

// TestTimeout: a server that stalls makes the call fail with a timeout,
// and the client is broken afterwards.
func TestTimeout(t *testing.T) {
	for _, what := range []string{"status", "listing", "body"} {
		t.Run(what, func(t *testing.T) {
			s := runScript(t, &pop3.Options{Timeout: 50 * time.Millisecond}, func(p *peer) {
				p.write(rfcGreeting)
				switch what {
				case "status":
					p.expect("NOOP")
				case "listing":
					p.expect("UIDL")
					p.write("+OK", "1 a")
				case "body":
					p.expect("RETR 1")
					p.write("+OK", "line")
				}
				// stall
			})
			c := s.client()
			start := time.Now()
			var err error
			switch what {
			case "status":
				err = c.Noop().Wait()
			case "listing":
				_, err = c.UIDL().Wait()
			case "body":
				var body *pop3.MessageReader
				body, err = c.Retr(1).Body()
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(body)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("cut body: %v", err)
				}
			}
			checkTimeout(t, err, start)
			if err2 := c.Noop().Wait(); !errors.Is(err2, os.ErrDeadlineExceeded) {
				t.Fatalf("after the timeout: %v", err2)
			}
		})
	}
}

// TestSlowButMoving: the timeout measures a stall, not the length of a
// transfer: a message that keeps coming (here 10 KiB a timeout, more than
// DefaultMinProgress) takes as long as it takes.
func TestSlowButMoving(t *testing.T) {
	const timeout = 300 * time.Millisecond
	line := strings.Repeat("l", 1022)
	s := runScript(t, &pop3.Options{Timeout: timeout}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("RETR 1")
		p.write("+OK")
		for i := 0; i < 15; i++ {
			time.Sleep(timeout / 10)
			p.write(line)
		}
		p.write(".")
		p.expect("NOOP")
		p.write("+OK")
	})
	c := s.client()
	start := time.Now()
	body, err := c.Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || string(got) != strings.Repeat(line+"\n", 15) {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < timeout {
		t.Logf("transfer took %v, less than the timeout: the test proves nothing", d)
	}
	s.checkTranscript("RETR 1", "NOOP")
}

// TestBadArguments: arguments that would break the framing are refused with
// ErrBadArgument, without sending anything and without breaking the client.
func TestBadArguments(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("NOOP")
		p.write("+OK")
	})
	c := s.client()
	for name, f := range map[string]func() error{
		"USER CRLF":       func() error { return c.User("alice\r\nDELE 1").Wait() },
		"USER LF":         func() error { return c.User("alice\nDELE 1").Wait() },
		"USER CR":         func() error { return c.User("alice\r").Wait() },
		"USER NUL":        func() error { return c.User("alice\x00").Wait() },
		"USER empty":      func() error { return c.User("").Wait() },
		"PASS CRLF":       func() error { return c.Pass("secret\r\nDELE 1").Wait() },
		"PASS NUL":        func() error { return c.Pass("sec\x00ret").Wait() },
		"PASS empty":      func() error { return c.Pass("").Wait() },
		"APOP user LF":    func() error { return c.APOP("mrose\nDELE 1", "tanstaaf").Wait() },
		"DELE 0":          func() error { return c.Dele(0).Wait() },
		"DELE -1":         func() error { return c.Dele(-1).Wait() },
		"RETR 0":          func() error { return c.Retr(0).Wait() },
		"RETR 0 Body":     func() error { _, err := c.Retr(0).Body(); return err },
		"TOP 0 1":         func() error { _, err := c.Top(0, 1).Body(); return err },
		"TOP 1 -1":        func() error { return c.Top(1, -1).Wait() },
		"AUTH mech space": func() error { return c.Auth(&scriptedMech{name: "PL AIN"}) },
		"AUTH mech CRLF":  func() error { return c.Auth(&scriptedMech{name: "PLAIN\r\nDELE 1"}) },
		"AUTH mech empty": func() error { return c.Auth(&scriptedMech{name: ""}) },
	} {
		if err := f(); !errors.Is(err, pop3.ErrBadArgument) {
			t.Errorf("%s: got %v, want ErrBadArgument", name, err)
		}
		if strings.Contains(name, "PASS") && strings.Contains(errString(f()), "secret") {
			t.Errorf("%s: the error holds the password", name)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("NOOP")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestAPOP checks the digest against RFC 1939 §7's example.
func TestAPOP(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("APOP mrose c4c9334bac560ecc979e58001b3e22fb")
		p.write("-ERR [AUTH] permission denied")
		p.expect("APOP mrose c4c9334bac560ecc979e58001b3e22fb")
		p.write("+OK maildrop has 1 message (369 octets)")
	})
	c := s.client()
	var e *pop3.Error
	if err := c.APOP("mrose", "tanstaaf").Wait(); !errors.As(err, &e) || e.Code != pop3.CodeAuth || e.Command != "APOP" {
		t.Fatalf("got %v", err)
	}
	if err := c.APOP("mrose", "tanstaaf").Wait(); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("APOP mrose c4c9334bac560ecc979e58001b3e22fb", "APOP mrose c4c9334bac560ecc979e58001b3e22fb")
}

// TestAPOPNoTimestamp: without a timestamp in the greeting, APOP fails
// without sending anything.
func TestAPOPNoTimestamp(t *testing.T) {
	for _, greeting := range []string{"+OK ready", "+OK <no-at-sign>", "+OK <unterminated@x", "+OK", "+OK >@<"} {
		s := runScript(t, nil, func(p *peer) { p.write(greeting) })
		c := s.client()
		if ts := c.APOPTimestamp(); ts != "" {
			t.Errorf("%q: timestamp %q", greeting, ts)
		}
		err := c.APOP("mrose", "tanstaaf").Wait()
		var e *pop3.Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("%q: got %v", greeting, err)
		}
		s.checkTranscript()
	}
}

// scriptedMech is a SASL mechanism with a fixed initial response whose Next
// returns the given responses in turn, then fails with errMech.
type scriptedMech struct {
	name  string
	ir    []byte
	resps [][]byte
	chals []string // challenges received
}

var errMech = errors.New("mechanism gave up")

func (m *scriptedMech) Start() (string, []byte, error) { return m.name, m.ir, nil }

func (m *scriptedMech) Next(challenge []byte) ([]byte, error) {
	m.chals = append(m.chals, string(challenge))
	if len(m.resps) == 0 {
		return nil, errMech
	}
	r := m.resps[0]
	m.resps = m.resps[1:]
	return r, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthPlain(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH PLAIN " + b64("\x00alice\x00secret"))
		p.write("+OK maildrop locked and ready")
	})
	if err := s.client().Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
}

func TestAuthLogin(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH LOGIN " + b64("alice"))
		p.write("+ " + b64("Password:"))
		p.expect(b64("secret"))
		p.write("+OK")
	})
	if err := s.client().Auth(sasl.NewLoginClient("alice", "secret")); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("AUTH LOGIN YWxpY2U=", "c2VjcmV0")
}

// TestAuthInitialResponseLength: RFC 5034 §4: an initial response that
// would make the AUTH line longer than 255 octets is sent after the first
// (empty) challenge instead.
func TestAuthInitialResponseLength(t *testing.T) {
	// "AUTH XYZ " is 9 octets, CRLF 2: 244 base64 characters (183 octets)
	// make a 255-octet line, 184 octets one of 259.
	for _, n := range []int{0, 1, 183, 184, 1000} {
		ir := bytes.Repeat([]byte{'i'}, n)
		enc := base64.StdEncoding.EncodeToString(ir)
		if n == 0 {
			enc = "="
		}
		inline := len("AUTH XYZ "+enc+"\r\n") <= 255
		s := runScript(t, nil, func(p *peer) {
			p.write(rfcGreeting)
			if inline {
				p.expect("AUTH XYZ " + enc)
			} else {
				p.expect("AUTH XYZ")
				p.write("+ ")
				p.expect(enc)
			}
			p.write("+OK")
		})
		m := &scriptedMech{name: "XYZ", ir: ir}
		if err := s.client().Auth(m); err != nil {
			t.Fatalf("%d octets: %v", n, err)
		}
		if len(m.chals) != 0 {
			t.Errorf("%d octets: the mechanism was asked for a response to %q", n, m.chals)
		}
		if inline {
			s.checkTranscript("AUTH XYZ " + enc)
		} else {
			s.checkTranscript("AUTH XYZ", enc)
		}
	}
}

// TestAuthChallenges: a mechanism without an initial response, several
// challenges, decoded before they are handed over; "+" alone is empty.
func TestAuthChallenges(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH X")
		p.write("+")
		p.expect(b64("one"))
		p.write("+ " + b64("second challenge"))
		p.expect("")
		p.write("+OK")
	})
	m := &scriptedMech{name: "X", resps: [][]byte{[]byte("one"), {}}}
	if err := s.client().Auth(m); err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.chals, "|") != "|second challenge" {
		t.Errorf("challenges %q", m.chals)
	}
	s.checkTranscript("AUTH X", b64("one"), "")
}

// TestAuthCancel: when the mechanism fails, the exchange is cancelled with
// "*" (RFC 5034 §4) and the session can go on.
func TestAuthCancel(t *testing.T) {
	for _, insist := range []bool{false, true} {
		s := runScript(t, nil, func(p *peer) {
			p.write(rfcGreeting)
			p.expect("AUTH X " + b64("ir"))
			p.write("+ " + b64("what?"))
			p.expect("*")
			if insist {
				p.write("+ " + b64("really?"))
				p.expect("*")
			}
			p.write("-ERR authentication cancelled")
			p.expect("NOOP")
			p.write("+OK")
		})
		c := s.client()
		err := c.Auth(&scriptedMech{name: "X", ir: []byte("ir")})
		if !errors.Is(err, errMech) {
			t.Fatalf("got %v, want the mechanism's error", err)
		}
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		if insist {
			s.checkTranscript("AUTH X aXI=", "*", "*", "NOOP")
		} else {
			s.checkTranscript("AUTH X aXI=", "*", "NOOP")
		}
	}
}

func TestAuthRefused(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH PLAIN " + b64("\x00alice\x00wrong"))
		p.write("-ERR [AUTH] invalid credentials")
		p.expect("AUTH PLAIN " + b64("\x00alice\x00secret"))
		p.write("-ERR [IN-USE] maildrop locked")
	})
	c := s.client()
	var e *pop3.Error
	err := c.Auth(sasl.NewPlainClient("", "alice", "wrong"))
	if !errors.As(err, &e) || e.Command != "AUTH" || e.Code != pop3.CodeAuth || e.Temporary() {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), b64("\x00alice\x00wrong")) {
		t.Fatalf("error holds the credentials: %v", err)
	}
	err = c.Auth(sasl.NewPlainClient("", "alice", "secret"))
	if !errors.As(err, &e) || e.Code != pop3.CodeInUse || !e.Temporary() {
		t.Fatalf("got %v", err)
	}
}

func TestAuthBadChallenge(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH X")
		p.write("+ not base64!")
	})
	c := s.client()
	err := c.Auth(&scriptedMech{name: "X"})
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) || pe.Command != "AUTH" {
		t.Fatalf("got %v", err)
	}
	if err2 := c.Noop().Wait(); err2 != err {
		t.Fatalf("after a bad challenge: %v", err2)
	}
	s.checkTranscript("AUTH X")
}

// TestAuthWaitsForPipeline: AUTH is not pipelined: commands issued before
// it are answered first.
func TestAuthWaitsForPipeline(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", "SASL PLAIN", ".")
		p.expect("NOOP")
		p.expect("NOOP")
		p.expectNothing(30 * time.Millisecond)
		p.write("+OK", "-ERR whatever")
		p.expect("AUTH PLAIN " + b64("\x00alice\x00secret"))
		p.write("+OK")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	n1, n2 := c.Noop(), c.Noop()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatal(err)
	}
	if n1.Wait() != nil || n2.Wait() == nil {
		t.Fatal("earlier responses lost")
	}
	s.checkTranscript("CAPA", "NOOP", "NOOP", "AUTH PLAIN AGFsaWNlAHNlY3JldA==")
}

// TestStartTLSNotOffered: STLS is refused with ErrNoSTLS, sending nothing,
// when the last CAPA did not list it (or there was none).
func TestStartTLSNotOffered(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "USER", "SASL PLAIN", ".")
		p.expect("NOOP")
		p.write("+OK")
	})
	c := s.client()
	if err := c.StartTLS(context.Background(), &tls.Config{}); !errors.Is(err, pop3.ErrNoSTLS) {
		t.Fatalf("without CAPA: %v", err)
	}
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(context.Background(), &tls.Config{}); !errors.Is(err, pop3.ErrNoSTLS) {
		t.Fatalf("got %v, want ErrNoSTLS", err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("CAPA", "NOOP")
}

// TestStartTLSRefused: -ERR to STLS is an *Error; nothing else is sent.
func TestStartTLSRefused(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "STLS", ".")
		p.expect("STLS")
		p.write("-ERR [SYS/TEMP] TLS unavailable")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	var e *pop3.Error
	if err := c.StartTLS(context.Background(), &tls.Config{}); !errors.As(err, &e) || e.Command != "STLS" || e.Code != pop3.CodeSysTemp {
		t.Fatalf("got %v", err)
	}
	s.checkTranscript("CAPA", "STLS")
}

// TestStartTLSInjection: bytes that arrive in the clear after the STLS
// response, before the handshake, are a man in the middle's injection
// (CVE-2011-0411): refused as a *ProtocolError, and the client is broken.
func TestStartTLSInjection(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "STLS", "PIPELINING", ".")
		p.expect("STLS")
		p.writeRaw("+OK begin TLS\r\n+OK injected response\r\n")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	err := c.StartTLS(context.Background(), &tls.Config{ServerName: "pop.example.org"})
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) || pe.Command != "STLS" {
		t.Fatalf("got %v, want *ProtocolError", err)
	}
	if err2 := c.User("alice").Wait(); err2 != err {
		t.Fatalf("after the injection: %v", err2)
	}
	s.checkTranscript("CAPA", "STLS")
}

// TestErrBodySkipped: waiting on a later command reads and discards an
// earlier message; its Body then says so.
func TestErrBodySkipped(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", ".")
		p.expect("RETR 1")
		p.expect("RETR 2")
		p.expect("RETR 3")
		p.write("+OK", "one", "..", ".", "+OK", "two", ".", "-ERR no such message")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	r1, r2, r3 := c.Retr(1), c.Retr(2), c.Retr(3)
	b2, err := r2.Body()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(b2); err != nil || string(got) != "two\n" {
		t.Fatalf("message 2: %q %v", got, err)
	}
	if _, err := r1.Body(); !errors.Is(err, pop3.ErrBodySkipped) {
		t.Fatalf("message 1: %v, want ErrBodySkipped", err)
	}
	if err := r1.Wait(); !errors.Is(err, pop3.ErrBodySkipped) {
		t.Fatalf("message 1 Wait: %v, want ErrBodySkipped", err)
	}
	var e *pop3.Error
	if err := r3.Wait(); !errors.As(err, &e) {
		t.Fatalf("message 3: %v", err)
	}
	s.checkTranscript("CAPA", "RETR 1", "RETR 2", "RETR 3")
}

// TestBodyLeftUnread: a message not read to its end is drained when a later
// response is needed, and the session stays in step.
func TestBodyLeftUnread(t *testing.T) {
	long := strings.Repeat("z", 200000)
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("RETR 1")
		p.write("+OK", "a", long, "..", "b", ".")
		p.expect("NOOP")
		p.write("+OK first")
		p.expect("RETR 2")
		p.write("+OK", "c", long, ".")
		p.expect("NOOP")
		p.write("+OK second")
	})
	c := s.client()
	body, err := c.Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 5)
	if _, err := io.ReadFull(body, p); err != nil {
		t.Fatal(err)
	}
	n := c.Noop()
	if err := n.Wait(); err != nil || n.Text() != "first" {
		t.Fatalf("NOOP: %v %q", err, n.Text())
	}
	// the rest was discarded: reading on must not look like the end of
	// the message, or a truncated message would pass as whole
	if k, err := body.Read(make([]byte, 100)); k != 0 || !errors.Is(err, pop3.ErrBodySkipped) {
		t.Fatalf("Read after the rest was discarded: %d, %v", k, err)
	}
	// closing the reader of a message already drained is fine
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	body, err = c.Retr(2).Body()
	if err != nil {
		t.Fatal(err)
	}
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	if body.Octets() != int64(3+len(long)+2) {
		t.Errorf("Octets() after Close = %d", body.Octets())
	}
	n = c.Noop()
	if err := n.Wait(); err != nil || n.Text() != "second" {
		t.Fatalf("NOOP: %v %q", err, n.Text())
	}
	s.checkTranscript("RETR 1", "NOOP", "RETR 2", "NOOP")
}

// TestQuit: Quit returns an error whenever the deletions may not have been
// committed, and the client is closed afterwards.
func TestQuit(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		check func(error) bool
	}{
		{"ok", "+OK bye\r\n", func(err error) bool { return err == nil }},
		{"refused", "-ERR [SYS/PERM] some deleted messages not removed\r\n", func(err error) bool {
			var e *pop3.Error
			return errors.As(err, &e) && e.Code == pop3.CodeSysPerm && e.Command == "QUIT"
		}},
		{"dropped", "", isUnexpectedEOF},
		{"half a line", "+OK by", isUnexpectedEOF},
		{"garbage", "bye\r\n", isProtocolError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				p.expect("DELE 1")
				p.write("+OK")
				p.expect("QUIT")
				p.writeRaw(tc.reply)
				p.conn.Close()
			})
			c := s.client()
			if err := c.Dele(1).Wait(); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); !tc.check(err) {
				t.Fatalf("Quit: %v (%T)", err, err)
			}
			if err := c.Noop().Wait(); err == nil {
				t.Fatal("NOOP after QUIT succeeded")
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			s.finish()
			if got := s.p.transcript(); got != "DELE 1\r\nQUIT\r\n" {
				t.Errorf("client wrote %q", got)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for a slog handler.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestTraceRedacted: the protocol trace never holds a password, an APOP
// digest, an AUTH exchange or message contents.
func TestTraceRedacted(t *testing.T) {
	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := runScript(t, &pop3.Options{Logger: logger}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("USER mrose")
		p.write("+OK")
		p.expect("PASS hunter2")
		p.write("-ERR [AUTH] no")
		p.expect("APOP mrose c4c9334bac560ecc979e58001b3e22fb")
		p.write("-ERR [AUTH] no")
		p.expect("AUTH LOGIN " + b64("mrose"))
		p.write("+ " + b64("Password:"))
		p.expect(b64("tanstaaf"))
		p.write("+OK")
		p.expect("RETR 1")
		p.write("+OK", "Subject: confidential-subject", "", "confidential-body", ".")
		p.expect("QUIT")
		p.write("+OK")
	})
	c := s.client()
	c.User("mrose")
	c.Pass("hunter2").Wait()
	c.APOP("mrose", "tanstaaf").Wait()
	if err := c.Auth(sasl.NewLoginClient("mrose", "tanstaaf")); err != nil {
		t.Fatal(err)
	}
	body, err := c.Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, body)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	trace := log.String()
	for _, secret := range []string{"hunter2", "tanstaaf", b64("tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb", b64("mrose"), "UGFzc3dvcmQ6", "confidential"} {
		if strings.Contains(trace, secret) {
			t.Errorf("trace holds %q:\n%s", secret, trace)
		}
	}
	for _, want := range []string{"C: USER mrose", "C: PASS <redacted>", "C: APOP mrose <redacted>", "C: RETR 1", "C: QUIT", "S: +OK POP3 server ready"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
}

// TestStartTLSHandshakeStalls: a server that accepts STLS and then says
// nothing: the handshake times out as a *TLSError, or ends at once when
// Close is called from another goroutine.
func TestStartTLSHandshakeStalls(t *testing.T) {
	for _, how := range []string{"timeout", "close"} {
		t.Run(how, func(t *testing.T) {
			opts := &pop3.Options{}
			if how == "timeout" {
				opts.Timeout = 50 * time.Millisecond
			}
			stalled := make(chan struct{})
			s := runScript(t, opts, func(p *peer) {
				p.write(rfcGreeting)
				p.expect("CAPA")
				p.write("+OK", "STLS", ".")
				p.expect("STLS")
				p.write("+OK begin TLS")
				close(stalled)
				// the ClientHello is read (and recorded) by the script's
				// final drain; no answer comes
			})
			c := s.client()
			if _, err := c.Capa().Wait(); err != nil {
				t.Fatal(err)
			}
			if how == "close" {
				go func() {
					<-stalled
					time.Sleep(20 * time.Millisecond)
					c.Close()
				}()
			}
			start := time.Now()
			err := c.StartTLS(context.Background(), &tls.Config{ServerName: "pop.example.org"})
			var te *pop3.TLSError
			if !errors.As(err, &te) {
				t.Fatalf("got %v (%T), want *TLSError", err, err)
			}
			// the handshake's deadline comes from its context:
			// context.DeadlineExceeded, also a net.Error timeout
			var ne net.Error
			if how == "timeout" && (!errors.As(err, &ne) || !ne.Timeout()) {
				t.Fatalf("got %v, want a timeout", err)
			}
			if d := time.Since(start); d > peerTimeout/2 {
				t.Fatalf("handshake ended after %v", d)
			}
			if err := c.Noop().Wait(); err == nil {
				t.Fatal("NOOP after a failed handshake succeeded")
			}
			got := s.finish()
			if !strings.HasPrefix(got, "CAPA\r\nSTLS\r\n\x16\x03") {
				t.Fatalf("client wrote %q", got)
			}
		})
	}
}

package pop3_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
)

// Responses nobody asked for: a server that answers twice, or sends a line
// of its own, puts every later response against the wrong command. The
// client must notice before it takes a message for another, and then stay
// broken, so that no QUIT commits a DELE after the desync (STYLE rule 14).

// TestUnaskedAfterGreeting: a second line after the greeting.
func TestUnaskedAfterGreeting(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting, "+OK second line")
	})
	var pe *pop3.ProtocolError
	if !errors.As(s.err, &pe) || pe.Command != "" {
		t.Fatalf("NewClient: %v, want a *ProtocolError in the greeting", s.err)
	}
	s.checkTranscript()
}

// TestUnaskedLockStep: without pipelining, extra lines after an answer are
// seen as soon as it is read; nothing more is sent.
func TestUnaskedLockStep(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("NOOP")
		p.write("+OK", "+OK")
	})
	c := s.client()
	noop, dele := c.Noop(), c.Dele(1)
	err := noop.Wait()
	if !isProtocolError(err) {
		t.Fatalf("NOOP: %v, want a *ProtocolError", err)
	}
	if err2 := dele.Wait(); err2 != err {
		t.Fatalf("DELE after the desync: %v", err2)
	}
	if err2 := c.Quit(); err2 != err {
		t.Fatalf("QUIT after the desync: %v", err2)
	}
	s.checkTranscript("NOOP")
}

// TestUnaskedBeforeMessage: an extra +OK in front of a RETR response makes
// the real status line the message's first line: the message is refused,
// and the client stays broken.
func TestUnaskedBeforeMessage(t *testing.T) {
	for _, extra := range []string{"+OK", "+OK extra", "+ok"} {
		t.Run(extra, func(t *testing.T) {
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				p.expect("CAPA")
				p.write("+OK", "PIPELINING", ".")
				p.expect("DELE 1")
				p.expect("RETR 2")
				p.expect("RETR 3")
				p.write("+OK", extra, "+OK 14 octets", "Subject: 2", "", ".",
					"+OK 14 octets", "Subject: 3", "", ".")
			})
			c := s.client()
			if _, err := c.Capa().Wait(); err != nil {
				t.Fatal(err)
			}
			dele, r2, r3 := c.Dele(1), c.Retr(2), c.Retr(3)
			if err := dele.Wait(); err != nil {
				t.Fatal(err)
			}
			body, err := r2.Body()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(body)
			if !isProtocolError(err) || len(got) != 0 {
				t.Fatalf("RETR 2: read %q, %v; want nothing and a *ProtocolError", got, err)
			}
			if _, err2 := r3.Body(); err2 != err {
				t.Fatalf("RETR 3 after the desync: %v", err2)
			}
			if err2 := c.Quit(); err2 != err {
				t.Fatalf("QUIT after the desync: %v", err2)
			}
			s.checkTranscript("CAPA", "DELE 1", "RETR 2", "RETR 3")
		})
	}
}

// TestUnaskedErrBeforeMessage: an extra -ERR in front of a RETR response
// reads as a refusal, and every later message in flight as the answer to
// the command after its own. The client sees it when the pipeline drains
// with bytes left over: the last message then fails instead of ending.
// (The engine does not wait for that: after a refused RETR it drains the
// pipeline before it delivers anything more; see engine.resync.)
func TestUnaskedErrBeforeMessage(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", ".")
		p.expect("RETR 2")
		p.expect("RETR 3")
		p.write("-ERR", "+OK 14 octets", "Subject: 2", "", ".",
			"+OK 14 octets", "Subject: 3", "", ".")
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	r2, r3 := c.Retr(2), c.Retr(3)
	var e *pop3.Error
	if _, err := r2.Body(); !errors.As(err, &e) {
		t.Fatalf("RETR 2: %v, want the -ERR", err)
	}
	body, err := r3.Body()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if !isProtocolError(err) {
		t.Fatalf("RETR 3: read %q, %v; want a *ProtocolError", got, err)
	}
	if err2 := c.Quit(); err2 != err {
		t.Fatalf("QUIT after the desync: %v", err2)
	}
	s.checkTranscript("CAPA", "RETR 2", "RETR 3")
}

// TestUnaskedWhenDrained: with pipelining, extra answers show when every
// command has had one and bytes are left; the last command fails, even a
// message read to its end.
func TestUnaskedWhenDrained(t *testing.T) {
	for _, last := range []string{"NOOP", "RETR 1"} {
		t.Run(last, func(t *testing.T) {
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				p.expect("CAPA")
				p.write("+OK", "PIPELINING", ".")
				p.expect("DELE 1")
				p.expect("DELE 2")
				p.expect(last)
				resp := "+OK"
				if last == "RETR 1" {
					resp = "+OK\r\nSubject: 1\r\n\r\n."
				}
				// one answer too many, as from a server that answers a
				// DELE twice
				p.write("+OK", "+OK", "+OK", resp)
			})
			c := s.client()
			if _, err := c.Capa().Wait(); err != nil {
				t.Fatal(err)
			}
			d1, d2 := c.Dele(1), c.Dele(2)
			var err error
			if last == "NOOP" {
				err = c.Noop().Wait()
			} else {
				// the extra answer is taken for RETR's status line, and
				// RETR's own for the message: caught at its start
				body, berr := c.Retr(1).Body()
				if berr != nil {
					t.Fatal(berr)
				}
				_, err = io.ReadAll(body)
			}
			if !isProtocolError(err) {
				t.Fatalf("%s: %v, want a *ProtocolError", last, err)
			}
			if d1.Wait() != nil || d2.Wait() != nil {
				t.Fatal("the DELEs before the desync failed")
			}
			if err2 := c.Quit(); err2 != err {
				t.Fatalf("QUIT after the desync: %v", err2)
			}
			s.checkTranscript("CAPA", "DELE 1", "DELE 2", last)
		})
	}
}

// TestUnaskedAfterMessage: bytes after the terminator of the last message
// in flight; the message must not read as complete, for it may be the
// answer to the command before.
func TestUnaskedAfterMessage(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("RETR 1")
		p.write("+OK", "Subject: 1", "", "body", ".", "+OK")
	})
	c := s.client()
	body, err := c.Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if !isProtocolError(err) {
		t.Fatalf("read %q, %v; want a *ProtocolError", got, err)
	}
	if err2 := c.Quit(); err2 != err {
		t.Fatalf("QUIT after the desync: %v", err2)
	}
	s.checkTranscript("RETR 1")
}

// TestMessageMayLookOdd: messages that begin like a status line only
// after unstuffing, or with something close to one, are not refused.
func TestMessageMayLookOdd(t *testing.T) {
	for _, first := range []string{"..+OK", ".+OK", "+OKAY: header", "-ERRATA: x", "+", "-", ".", ""} {
		t.Run(first, func(t *testing.T) {
			s := runScript(t, nil, func(p *peer) {
				p.write(rfcGreeting)
				p.expect("RETR 1")
				if first == "." {
					p.write("+OK", ".")
					return
				}
				p.write("+OK", first, "x", ".")
			})
			c := s.client()
			body, err := c.Retr(1).Body()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("%q: %v", first, err)
			}
			want := strings.TrimPrefix(first, ".") + "\nx\n"
			if first == "." {
				want = ""
			}
			if string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// TestTooManyCaps: a CAPA listing without end is cut short.
func TestTooManyCaps(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		lines := []string{"+OK"}
		for i := 0; i < 1001; i++ {
			lines = append(lines, fmt.Sprintf("X-CAP-%d", i))
		}
		p.write(append(lines, ".")...)
	})
	c := s.client()
	if _, err := c.Capa().Wait(); !isProtocolError(err) {
		t.Fatalf("CAPA: %v, want a *ProtocolError", err)
	}
	s.checkTranscript("CAPA")
}

// TestUnaskedAfterAuth: extra lines after the end of an AUTH exchange.
func TestUnaskedAfterAuth(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH PLAIN " + b64("\x00alice\x00secret"))
		p.write("+OK logged in", "+OK")
	})
	c := s.client()
	err := c.Auth(sasl.NewPlainClient("", "alice", "secret"))
	if !isProtocolError(err) {
		t.Fatalf("AUTH: %v, want a *ProtocolError", err)
	}
	if err2 := c.Quit(); err2 != err {
		t.Fatalf("QUIT after the desync: %v", err2)
	}
	s.checkTranscript("AUTH PLAIN " + b64("\x00alice\x00secret"))
}

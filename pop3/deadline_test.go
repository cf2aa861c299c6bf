package pop3_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3"
)

// A server that trickles a response — a byte every fifth of the timeout,
// so that no single read ever waits the whole timeout — cannot hold the
// session open: the response must bring MinProgress octets per timeout of
// waiting, or end. Before, each byte renewed the deadline and the trickle
// was read to its end, however long it lasted.
func TestTrickleTimesOut(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, what := range []string{"status", "listing", "body"} {
		t.Run(what, func(t *testing.T) {
			s := runScript(t, &pop3.Options{Timeout: timeout}, func(p *peer) {
				p.write(rfcGreeting)
				var resp string
				switch what {
				case "status":
					p.expect("NOOP")
					resp = "+OK " + strings.Repeat("z", 40) + "\r\n"
				case "listing":
					p.expect("UIDL")
					resp = "+OK\r\n" + strings.Repeat("1 a\r\n", 10) + ".\r\n"
				case "body":
					p.expect("RETR 1")
					resp = "+OK\r\n" + strings.Repeat("x", 40) + "\r\n.\r\n"
				}
				for i := 0; i < len(resp); i++ {
					if p.writeRaw(resp[i:i+1]) != nil {
						return // the client hung up
					}
					time.Sleep(timeout / 5)
				}
			})
			c := s.client()
			var err error
			switch what {
			case "status":
				err = c.Noop().Wait()
			case "listing":
				_, err = c.UIDL().Wait()
			case "body":
				var body *pop3.MessageReader
				if body, err = c.Retr(1).Body(); err == nil {
					_, err = io.ReadAll(body)
				}
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v, want a timeout", err)
			}
		})
	}
}

// Responses that each end within the timeout keep the session going,
// however many there are and however little each holds: a slow server
// that answers is not a stalled one.
func TestSlowAnswersSurvive(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := runScript(t, &pop3.Options{Timeout: timeout}, func(p *peer) {
		p.write(rfcGreeting)
		for i := 0; i < 6; i++ {
			p.expect("NOOP")
			time.Sleep(timeout / 4)
			p.write("+OK")
		}
	})
	c := s.client()
	for i := 0; i < 6; i++ {
		if err := c.Noop().Wait(); err != nil {
			t.Fatalf("NOOP %d: %v", i+1, err)
		}
	}
}

// The time the caller spends between reads of a message (delivering it)
// is not the server's: a pause of several timeouts in the middle of a
// message that the server sent at once does not time out.
func TestCallerPauseNotCounted(t *testing.T) {
	const timeout = 100 * time.Millisecond
	line := strings.Repeat("m", 998)
	s := runScript(t, &pop3.Options{Timeout: timeout}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("RETR 1")
		// 200 KB, beyond the client's read buffer, in one go
		p.writeRaw("+OK\r\n" + strings.Repeat(line+"\r\n", 200) + ".\r\n")
	})
	body, err := s.client().Retr(1).Body()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(body, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * timeout)
	rest, err := io.ReadAll(body)
	if err != nil || len(rest) != 200*999-1000 {
		t.Fatalf("after a pause: %d octets, %v", len(rest), err)
	}
}

// Close unblocks, at once, a read and a write that are both blocked: the
// writer stuck on a server that reads nothing while the caller waits for
// an answer that never comes. Both return; nothing is left running.
func TestCloseUnblocksReadAndWrite(t *testing.T) {
	reading := make(chan struct{})
	s := runScript(t, &pop3.Options{Window: 100}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("CAPA")
		p.write("+OK", "PIPELINING", ".")
		close(reading) // and read nothing more: the writer blocks
	})
	c := s.client()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	<-reading
	// 100 long commands in flight: net.Pipe has no buffer, so the writer
	// blocks on the first, and the caller waits for its answer.
	cmds := make([]*pop3.Command, 100)
	for i := range cmds {
		cmds[i] = c.User(fmt.Sprintf("user%d-%s", i, strings.Repeat("u", 200)))
	}
	waited := make(chan error, 1)
	go func() { waited <- cmds[0].Wait() }()
	time.Sleep(50 * time.Millisecond) // let the calls block
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(peerTimeout):
		t.Fatal("Close did not return: the blocked write held it")
	}
	select {
	case err := <-waited:
		if !errors.Is(err, pop3.ErrClosed) {
			t.Errorf("the blocked read returned %v, want ErrClosed", err)
		}
	case <-time.After(peerTimeout):
		t.Fatal("the blocked read did not return")
	}
	for i, cmd := range cmds[1:] {
		if err := cmd.Wait(); !errors.Is(err, pop3.ErrClosed) {
			t.Fatalf("command %d: %v", i+2, err)
		}
	}
}

package pop3test_test

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// retrWire is the whole response to RETR of data, as the server sends it.
func retrWire(data string) string {
	return "+OK " + strconv.Itoa(len(strings.ReplaceAll(data, "\n", "\r\n"))) + " octets\r\n" +
		strings.ReplaceAll(data, "\n", "\r\n") + ".\r\n"
}

// TestInterruptDrop: the connection ends after exactly After octets of the
// response, and nothing is committed.
func TestInterruptDrop(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: one\n\nbody one\n"))
	mb.Add([]byte("Subject: two\n\nbody two\n"))
	s.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
		if cmd == "RETR" && args[0] == "2" {
			return &pop3test.Interrupt{After: 30, Drop: true}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	if got := c.cmd("RETR 1"); got != "-ERR message 1 already deleted" {
		t.Fatalf("RETR 1: %q", got)
	}
	io.WriteString(c.c, "RETR 2\r\n")
	got, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatal(err)
	}
	if want := retrWire("Subject: two\n\nbody two\n")[:30]; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	s.Close()
	if mb.Len() != 2 {
		t.Fatalf("%d messages left, want 2", mb.Len())
	}
}

// TestInterruptQuit: an interrupted QUIT has committed the deletions.
func TestInterruptQuit(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("one\n"))
	s.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
		if cmd == "QUIT" {
			return &pop3test.Interrupt{Drop: true}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	io.WriteString(c.c, "QUIT\r\n")
	if got, _ := io.ReadAll(c.br); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
	s.Close()
	if mb.Len() != 0 {
		t.Fatal("deletion not committed")
	}
}

// TestInterruptBefore: a QUIT dropped before it is carried out commits
// nothing.
func TestInterruptBefore(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("one\n"))
	s.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
		if cmd == "QUIT" {
			return &pop3test.Interrupt{Before: true, Drop: true}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	io.WriteString(c.c, "QUIT\r\n")
	if got, _ := io.ReadAll(c.br); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
	idle(s)
	s.Close()
	if l := s.Log()[0]; mb.Len() != 1 || l.Updated || l.End != "dropped" {
		t.Fatal("deletion committed")
	}
}

// TestInterruptMessage: a fault follows a message, whatever its number.
func TestInterruptMessage(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("one\n"))
	mb.Add([]byte("two\n"))
	s.Faults.InterruptMessage = func(cmd string, m *pop3test.Message) *pop3test.Interrupt {
		if cmd == "RETR" && string(m.Data) == "two\n" {
			return &pop3test.Interrupt{After: 3, Drop: true}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	c.ok("RETR 1")
	c.multi()
	io.WriteString(c.c, "RETR 2\r\n")
	if got, _ := io.ReadAll(c.br); string(got) != "+OK" {
		t.Fatalf("got %q", got)
	}
}

// TestInterruptStall: a stall delays the rest of the response, which then
// comes whole; Close ends a longer stall at once.
func TestInterruptStall(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: one\n\nbody one\n"))
	stall := 300 * time.Millisecond
	s.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
		switch cmd {
		case "RETR":
			return &pop3test.Interrupt{After: 20, Stall: stall}
		case "NOOP":
			return &pop3test.Interrupt{Stall: time.Hour}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	begin := time.Now()
	c.ok("RETR 1")
	if got := c.multi(); got != "Subject: one\r\n\r\nbody one\r\n" {
		t.Fatalf("got %q", got)
	}
	if d := time.Since(begin); d < stall {
		t.Fatalf("answered in %v, before the stall of %v ended", d, stall)
	}
	io.WriteString(c.c, "NOOP\r\n")
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the stall")
	}
}

// TestInterruptFlood: after the status line, a listing that never ends,
// until the client hangs up.
func TestInterruptFlood(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret").Add([]byte("x\n"))
	s.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
		if cmd == "UIDL" {
			return &pop3test.Interrupt{After: len("+OK listing follows\r\n"), Flood: []byte("1 flood\r\n")}
		}
		return nil
	}
	start(t, s)
	c := login(t, s)
	c.ok("UIDL")
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("1 flood\r\n1 flood\r\n")) || bytes.Contains(buf, []byte(".\r\n")) {
		t.Fatalf("flood: %q...", buf[:40])
	}
	c.c.Close()
	s.Close() // returns once the flooding session has seen the hang-up
}

func TestListSize(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("one\n"))
	mb.Add([]byte("two two\n"))
	s.Faults.ListSize = func(m *pop3test.Message) int64 {
		if strings.HasPrefix(string(m.Data), "two") {
			return m.Size() * 100
		}
		return 1
	}
	start(t, s)
	c := login(t, s)
	c.ok("LIST")
	if got := c.multi(); got != "1 1\r\n2 900\r\n" {
		t.Fatalf("LIST: %q", got)
	}
	if got := c.ok("LIST 2"); got != "+OK 2 900" {
		t.Fatalf("LIST 2: %q", got)
	}
	if got := c.ok("STAT"); got != "+OK 2 14" {
		t.Fatalf("STAT: %q", got)
	}
}

// TestUnsolicited: extra lines after the greeting and after a response.
func TestUnsolicited(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	s.Faults.Unsolicited = func(cmd string, _ []string) []string {
		switch cmd {
		case "":
			return []string{"+OK second greeting"}
		case "NOOP":
			return []string{"+OK", "-ERR"}
		}
		return nil
	}
	start(t, s)
	c := dial(t, s)
	if got := c.line(); !strings.HasPrefix(got, "+OK pop3test ready") {
		t.Fatalf("greeting %q", got)
	}
	if got := c.line(); got != "+OK second greeting" {
		t.Fatalf("got %q", got)
	}
	c.ok("USER alice")
	c.ok("PASS secret")
	c.ok("NOOP")
	if a, b := c.line(), c.line(); a != "+OK" || b != "-ERR" {
		t.Fatalf("got %q %q", a, b)
	}
}

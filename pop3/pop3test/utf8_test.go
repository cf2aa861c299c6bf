package pop3test_test

import (
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// TestUTF8: a server with UTF8 sends a message with 8-bit header bytes as
// stored only to a session that sent UTF8 before login; others get it
// wrapped, as Courier does. ASCII headers are never touched.
func TestUTF8(t *testing.T) {
	s := pop3test.NewServer()
	s.UTF8 = true
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: caf\xc3\xa9\n\nbody \xff\n.dot\n"))
	mb.Add([]byte("Subject: plain\n\nbody caf\xc3\xa9\n"))
	start(t, s)
	const stored = "Subject: caf\xc3\xa9\r\n\r\nbody \xff\r\n..dot\r\n"

	c := dial(t, s)
	c.line()
	c.ok("CAPA")
	if caps := c.multi(); !strings.Contains(caps, "\r\nUTF8\r\n") {
		t.Fatalf("CAPA lacks UTF8:\n%s", caps)
	}
	c.ok("UTF8")
	c.ok("USER alice")
	c.ok("PASS secret")
	c.ok("RETR 1")
	if got := c.multi(); got != stored {
		t.Fatalf("after UTF8: %q", got)
	}
	c.ok("QUIT")

	c = login(t, s)
	if resp := c.cmd("UTF8"); !strings.HasPrefix(resp, "-ERR") {
		t.Fatalf("UTF8 after login: %s (RFC 6856 §2: AUTHORIZATION state only)", resp)
	}
	c.ok("RETR 1")
	got := c.multi()
	if got == stored || !strings.Contains(got, "Content-Type: message/global\r\n\r\n"+stored) ||
		!strings.HasPrefix(got, "From: Mail Delivery Subsystem") {
		t.Fatalf("without UTF8: %q", got)
	}
	c.ok("RETR 2")
	if got := c.multi(); got != "Subject: plain\r\n\r\nbody caf\xc3\xa9\r\n" {
		t.Fatalf("an ASCII header: %q", got)
	}
	c.ok("QUIT")

	s.UTF8 = false
	c = dial(t, s)
	c.line()
	if resp := c.cmd("UTF8"); !strings.HasPrefix(resp, "-ERR") {
		t.Fatalf("UTF8 on a server without it: %s", resp)
	}
}

package pop3_test

import (
	"errors"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
)

// TestAuthPipelined: AUTH PLAIN goes out as a command, with those issued
// before and after it, and a refusal is an *Error for AUTH that leaves the
// session usable.
func TestAuthPipelined(t *testing.T) {
	s, _ := startServer(t, "", "one\n", "two\n")
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	bad := c.AuthPipelined(sasl.NewPlainClient("", "alice", "wrong"))
	refused := c.UIDL()
	var e *pop3.Error
	if err := bad.Wait(); !errors.As(err, &e) || e.Command != "AUTH" {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := refused.Wait(); !errors.As(err, &e) || e.Command != "UIDL" {
		t.Fatalf("UIDL before login: %v", err)
	}
	capa := c.Capa()
	auth := c.AuthPipelined(sasl.NewPlainClient("", "alice", "secret"))
	if _, err := capa.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := auth.Wait(); err != nil {
		t.Fatal(err)
	}
	if uids, err := c.UIDL().Wait(); err != nil || len(uids) != 2 {
		t.Fatalf("UIDL after the login: %v %v", uids, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	for _, line := range s.Received() {
		if line == "AUTH PLAIN" {
			t.Fatal("the initial response did not go with the command")
		}
	}
}

// TestAuthPipelinedRefuses: a mechanism without an initial response
// cannot go as one command; nothing is sent.
func TestAuthPipelinedRefuses(t *testing.T) {
	s, _ := startServer(t, "")
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	err := c.AuthPipelined(sasl.NewLoginClient("alice", "secret")).Wait()
	if !errors.Is(err, pop3.ErrBadArgument) {
		t.Fatalf("LOGIN: %v", err)
	}
	if got := s.Received(); len(got) != 0 {
		t.Fatalf("sent %q", got)
	}
}

// TestAssumeCaps: capabilities assumed from an earlier session pipeline
// the commands at once, before any CAPA; a CAPA's answer replaces them.
func TestAssumeCaps(t *testing.T) {
	s, _ := startServer(t, "", "one\n")
	s.Faults.HideCaps = []string{"PIPELINING"} // it has stopped listing it
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	c.AssumeCaps(pop3.Caps{"PIPELINING": nil, "USER": nil})
	capa, u, p, uidl := c.Capa(), c.User("alice"), c.Pass("secret"), c.UIDL()
	caps, err := capa.Wait()
	if err != nil || caps.Has("PIPELINING") || c.Pipelining() {
		t.Fatalf("CAPA: %v %v; pipelining %v", caps, err, c.Pipelining())
	}
	if err := errors.Join(u.Wait(), p.Wait()); err != nil {
		t.Fatal(err)
	}
	if uids, err := uidl.Wait(); err != nil || len(uids) != 1 {
		t.Fatalf("UIDL: %v %v", uids, err)
	}
	if s.EarlyCommands() == 0 {
		t.Fatal("the commands did not go out before the answers, as PIPELINING was assumed")
	}
}

package mailutilstest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// sample returns n small messages, each with a header field naming it.
func sample(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "From: a@example.org\nSubject: message %d\nX-Sample: %d\n\nbody of message %d\n.\n..two dots\nFrom the middle\n", i+1, i+1, i+1)
	}
	return msgs
}

// TestServes: the messages are served as stored, with the UIDs Populate
// gave, in the order they were added, and CAPA says EXPIRE0.
func TestServes(t *testing.T) {
	srv := Start(t, WithUser("alice", "secret"))
	uids := srv.Populate("alice", sample(3))
	stored := srv.Messages("alice")
	if len(stored) != 3 {
		t.Fatalf("Messages: %d, want 3", len(stored))
	}
	r := srv.Session("alice", "secret", Hangup, "CAPA", "UIDL", "RETR 2", "TOP 3 0")
	if !slices.Contains(r[0].Lines, "EXPIRE0") {
		t.Errorf("CAPA lacks EXPIRE0: %q", r[0].Lines)
	}
	var listed []string
	for _, l := range r[1].Lines {
		listed = append(listed, strings.Fields(l)[1])
	}
	if !slices.Equal(listed, uids) {
		t.Errorf("UIDL lists %q, want %q", listed, uids)
	}
	if got := strings.Join(r[2].Lines, "\n") + "\n"; got != string(stored[1]) {
		t.Errorf("RETR 2 sent\n%q\nwant what is stored\n%q", got, stored[1])
	}
	head, _, _ := bytes.Cut(stored[2], []byte("\n\n"))
	if got := strings.Join(r[3].Lines, "\n"); got != string(head)+"\n" {
		t.Errorf("TOP 3 0 sent %q, want the header %q", got, head)
	}
	if !slices.EqualFunc(srv.Messages("alice"), stored, bytes.Equal) {
		t.Error("a session that ended without QUIT changed the stored messages")
	}
}

// TestRetrievalIsCommitment reproduces the class of bug this server is
// here for: a message retrieved by RETR or TOP in a session that ends
// with QUIT is removed, without DELE; without QUIT, nothing is removed,
// and a later session that QUITs without retrieving it keeps it.
func TestRetrievalIsCommitment(t *testing.T) {
	srv := Start(t, WithUser("bob", "secret"))
	srv.Populate("bob", sample(4))
	all := srv.Messages("bob")
	n0, octets0 := srv.Stat("bob", "secret")
	if n0 != 4 {
		t.Fatalf("STAT: %d messages, want 4", n0)
	}

	srv.Session("bob", "secret", Hangup, "RETR 1", "TOP 2 0")
	if n, octets := srv.Stat("bob", "secret"); n != n0 || octets != octets0 {
		t.Fatalf("after RETR and TOP and a hang-up: STAT %d %d, want %d %d", n, octets, n0, octets0)
	}

	r := srv.Session("bob", "secret", Quit, "RETR 1")
	if !r[0].OK() {
		t.Fatalf("RETR 1: %s", r[0].Status)
	}
	if got := srv.Messages("bob"); !slices.EqualFunc(got, all[1:], bytes.Equal) {
		t.Fatalf("RETR 1 then QUIT: %d messages left, want messages 2-4", len(got))
	}
	srv.Session("bob", "secret", Quit, "TOP 2 0")
	want := [][]byte{all[1], all[3]}
	if got := srv.Messages("bob"); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("TOP 2 0 then QUIT: %d messages left, want messages 2 and 4 of the start", len(got))
	}
	if n, _ := srv.Stat("bob", "secret"); n != 2 {
		t.Fatalf("STAT: %d messages, want 2", n)
	}
}

// TestWrongPassword: a wrong password is refused.
func TestWrongPassword(t *testing.T) {
	srv := Start(t, WithUser("carol", "secret"))
	if _, err := srv.session("carol", "wrong", Quit, nil); err == nil || !strings.Contains(err.Error(), "-ERR") {
		t.Fatalf("login with a wrong password: %v, want -ERR", err)
	}
}

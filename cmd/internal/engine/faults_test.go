package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// Engine behaviours for broken servers (issue 7). The whole fault suite,
// with exit codes and leak checks, is internal/e2e/faults_test.go; these
// pin the engine's own decisions.

// tmpEmpty fails the test if the Maildir's tmp/ holds anything: a message
// cut short must leave nothing behind.
func (f *fixture) tmpEmpty(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.acct.Deliver.Maildir, "tmp"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		t.Fatalf("%d files left in tmp/", len(ents))
	}
}

// deliveredCount returns how many times each test message was delivered,
// by its subject, failing on anything else.
func (f *fixture) deliveredCount(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, m := range f.delivered(t) {
		body := stripReceived(t, m)
		i := strings.Index(body, "Subject: ")
		if i < 0 {
			t.Fatalf("delivered message without subject: %q", body)
		}
		subject := body[i+len("Subject: "):]
		subject = subject[:strings.IndexByte(subject, '\n')]
		n[subject]++
	}
	return n
}

// idle waits until the server has seen every session end: a run that
// drops the connection leaves the maildrop locked until then (RFC 1939 §4),
// and a run right after would be told IN-USE.
func (f *fixture) idle(t *testing.T) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); f.srv.Active() > 0; {
		if time.Now().After(end) {
			t.Fatal("the server's sessions did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rerun runs again once the server has seen the last session end.
func (f *fixture) rerun(t *testing.T, opts Options) (Result, error) {
	t.Helper()
	f.idle(t)
	return f.run(t, opts)
}

func isProtocolError(err error) bool {
	var pe *pop3.ProtocolError
	return errors.As(err, &pe)
}

// TestOverrunGivesUp: a message that runs far beyond its LIST size, or
// never ends, is given up as a protocol error; what came before it is
// delivered and recorded, nothing is deleted, tmp/ is empty.
func TestOverrunGivesUp(t *testing.T) {
	for _, tc := range []string{"too long", "endless"} {
		t.Run(tc, func(t *testing.T) {
			f := newFixture(t, 3)
			var on atomic.Bool
			on.Store(true)
			big := append([]byte("Subject: big\n\n"), bytes.Repeat([]byte("0123456789abcdef\n"), (overrunSlack+300)/17+1)...)
			if tc == "too long" {
				f.mb.Add(big) // message 4: listed at 100 octets
				f.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
					if on.Load() && bytes.HasPrefix(m.Data, []byte("Subject: big")) {
						return 100
					}
					return m.Size()
				}
			} else {
				f.mb.Add([]byte("Subject: endless\n\nbody\n"))
				f.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
					if on.Load() && cmd == "RETR" && args[0] == "4" {
						return &pop3test.Interrupt{After: 40, Flood: []byte("flood flood flood flood\r\n")}
					}
					return nil
				}
			}
			f.mb.Add(testMessage(4))
			_, err := f.run(t, Options{})
			if !isProtocolError(err) || !strings.Contains(err.Error(), "runs past") {
				t.Fatalf("got %v, want a protocol error about the size", err)
			}
			if f.mb.Len() != 5 {
				t.Fatalf("%d messages on the server, want 5: nothing may be deleted", f.mb.Len())
			}
			f.tmpEmpty(t)
			if got := f.deliveredCount(t); len(got) != 3 {
				t.Fatalf("delivered %v, want the three messages before", got)
			}
			on.Store(false)
			if tc == "endless" {
				// the message now ends; it is small
				if _, err := f.rerun(t, Options{}); err != nil {
					t.Fatalf("rerun: %v\n%s", err, f.logs)
				}
			} else if _, err := f.rerun(t, Options{}); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			got := f.deliveredCount(t)
			if len(got) != 5 || f.mb.Len() != 0 {
				t.Fatalf("after the rerun: delivered %v, %d on the server", got, f.mb.Len())
			}
			for s, n := range got {
				if n != 1 {
					t.Errorf("%q delivered %d times", s, n)
				}
			}
		})
	}
}

// TestOverrunWithinBound: LIST sizes that are wrong, smaller or larger,
// but within the bound, are delivered as received and said at -v.
func TestOverrunWithinBound(t *testing.T) {
	f := newFixture(t, 4)
	f.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
		if bytes.Contains(m.Data, []byte("message 1\n")) {
			return 1
		}
		return m.Size() * 3
	}
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 4 || f.mb.Len() != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(f.logs.String(), "differs from the server's LIST size") {
		t.Fatalf("no note of the size mismatch:\n%s", f.logs)
	}
}

// TestSharedUIDNotDeletedUnseen: a UID listed for two messages is never
// deleted unseen, even if the cache says it was delivered: both are
// retrieved again (a duplicate at worst); a unique one is deleted unseen.
func TestSharedUIDNotDeletedUnseen(t *testing.T) {
	f := newFixture(t, 0)
	f.mb.AddWithUID("dup", testMessage(0))
	f.mb.AddWithUID("dup", testMessage(1))
	f.mb.AddWithUID("once", testMessage(2))
	f.start(t)
	c, err := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if err != nil {
		t.Fatal(err)
	}
	c.Put("dup", uidcache.Entry{Seen: time.Now(), State: uidcache.Deleted})
	c.Put("once", uidcache.Entry{Seen: time.Now(), State: uidcache.Deleted})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	res, err := f.run(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 2 || res.Deleted != 3 || f.mb.Len() != 0 {
		t.Fatalf("%+v, %d on the server", res, f.mb.Len())
	}
	got := f.deliveredCount(t)
	if got["message 0"] != 1 || got["message 1"] != 1 || got["message 2"] != 0 {
		t.Fatalf("delivered %v", got)
	}
	if !strings.Contains(f.logs.String(), "same UID to several messages") {
		t.Fatalf("no warning:\n%s", f.logs)
	}
}

// TestSharedUIDKeep: in keep mode, messages sharing a UID are all
// retrieved the first time and left alone after, also by delete_after.
func TestSharedUIDKeep(t *testing.T) {
	f := newFixture(t, 0)
	f.acct.Keep = true
	f.acct.DeleteAfter = time.Hour
	now := time.Now()
	f.mb.AddWithUID("dup", testMessage(0))
	f.mb.AddWithUID("dup", testMessage(1))
	f.mb.AddWithUID("x", testMessage(2))
	res, err := f.run(t, Options{Now: func() time.Time { return now }})
	if err != nil || res.Fetched != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = f.rerun(t, Options{Now: func() time.Time { return now.Add(2 * time.Hour) }})
	if err != nil || res.Fetched != 0 || res.Deleted != 1 || f.mb.Len() != 2 {
		t.Fatalf("later: %+v %v; %d on the server, want the two sharing a UID", res, err, f.mb.Len())
	}
}

// TestEmptyUID: a UIDL line without a UID breaks RFC 1939 §7 (1 to 70
// characters) and cannot be told apart from others: a protocol error,
// before anything is retrieved.
func TestEmptyUID(t *testing.T) {
	f := newFixture(t, 0)
	f.mb.AddWithUID("a", testMessage(0))
	f.mb.AddWithUID("", testMessage(1))
	_, err := f.run(t, Options{})
	if !isProtocolError(err) {
		t.Fatalf("got %v, want a protocol error", err)
	}
	if f.mb.Len() != 2 {
		t.Fatal("touched the server")
	}
	f.mb.Messages()[1].UID = "b"
	if res, err := f.rerun(t, Options{}); err != nil || res.Fetched != 2 {
		t.Fatalf("rerun: %+v %v", res, err)
	}
}

// TestNoUIDL: keep mode is refused with NoUIDLError; delete mode fetches
// and deletes every message, recording nothing.
func TestNoUIDL(t *testing.T) {
	f := newFixture(t, 5)
	f.srv.Faults.HideCaps = []string{"UIDL"}
	f.acct.Keep = true
	_, err := f.run(t, Options{})
	var nu *NoUIDLError
	if !errors.As(err, &nu) || isProtocolError(err) {
		t.Fatalf("keep: got %v, want NoUIDLError", err)
	}
	var pe *pop3.Error
	if errors.As(err, &pe) {
		t.Fatal("NoUIDLError unwraps to the -ERR, which maps to exit 76")
	}
	if f.mb.Len() != 5 {
		t.Fatal("keep mode without UIDL touched the server")
	}
	f.acct.Keep = false
	res, err := f.rerun(t, Options{})
	if err != nil || res.Fetched != 5 || res.Deleted != 5 || f.mb.Len() != 0 {
		t.Fatalf("delete mode: %+v %v, %d left", res, err, f.mb.Len())
	}
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if c.Len() != 0 {
		t.Fatalf("cache holds %v", c.UIDs())
	}
}

// TestNoUIDLQuitLost: without UIDL, a session whose QUIT is not answered
// is fetched again: duplicates, not losses.
func TestNoUIDLQuitLost(t *testing.T) {
	f := newFixture(t, 3)
	f.srv.Faults.HideCaps = []string{"UIDL"}
	f.srv.Faults.DropQuit = true
	if _, err := f.run(t, Options{}); err == nil {
		t.Fatal("no error")
	}
	f.srv.Faults.DropQuit = false
	if _, err := f.rerun(t, Options{}); err != nil {
		t.Fatal(err)
	}
	for s, n := range f.deliveredCount(t) {
		if n != 2 {
			t.Errorf("%q delivered %d times, want 2", s, n)
		}
	}
	if f.mb.Len() != 0 {
		t.Fatal("not deleted")
	}
}

// TestRefusedRETRInStep: a RETR refused while others are in flight; the
// session is in step, so the others are asked for again and delivered.
func TestRefusedRETRInStep(t *testing.T) {
	f := newFixture(t, 6)
	var on atomic.Bool
	on.Store(true)
	f.srv.Faults.Respond = func(cmd string, args []string) (string, bool) {
		if on.Load() && cmd == "RETR" && args[0] == "2" {
			return "-ERR [SYS/TEMP] cannot read that one now", true
		}
		return "", false
	}
	res, err := f.run(t, Options{})
	var pe *pop3.Error
	if !errors.As(err, &pe) || pe.Code != pop3.CodeSysTemp {
		t.Fatalf("got %v, want the SYS/TEMP refusal", err)
	}
	if res.Fetched != 5 || f.mb.Len() != 1 {
		t.Fatalf("%+v, %d on the server", res, f.mb.Len())
	}
	noops := 0
	for _, l := range f.srv.Received() {
		if l == "NOOP" {
			noops++
		}
	}
	if noops != 1 {
		t.Fatalf("%d NOOPs, want 1", noops)
	}
	on.Store(false)
	if _, err := f.rerun(t, Options{}); err != nil || f.mb.Len() != 0 {
		t.Fatalf("rerun: %v", err)
	}
	for s, n := range f.deliveredCount(t) {
		if n != 1 {
			t.Errorf("%q delivered %d times", s, n)
		}
	}
}

// TestUnaskedErrBeforeRETR: an extra -ERR in front of RETR 2's answer.
// Without the resync, message 2 would be delivered as message 3 and so on,
// and the next run would delete one unseen. It is a protocol error; only
// message 1 is delivered and recorded.
func TestUnaskedErrBeforeRETR(t *testing.T) {
	f := newFixture(t, 6)
	var on atomic.Bool
	on.Store(true)
	f.srv.Faults.Unsolicited = func(cmd string, args []string) []string {
		if on.Load() && cmd == "RETR" && args[0] == "1" {
			return []string{"-ERR"}
		}
		return nil
	}
	_, err := f.run(t, Options{})
	if !isProtocolError(err) {
		t.Fatalf("got %v, want a protocol error", err)
	}
	if f.mb.Len() != 6 {
		t.Fatal("something was deleted")
	}
	if got := f.deliveredCount(t); len(got) != 1 || got["message 0"] != 1 {
		t.Fatalf("delivered %v, want message 0 alone", got)
	}
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if uids := c.UIDs(); len(uids) != 1 || uids[0] != f.mb.Messages()[0].UID {
		t.Fatalf("cache holds %v", uids)
	}
	on.Store(false)
	if _, err := f.rerun(t, Options{}); err != nil || f.mb.Len() != 0 {
		t.Fatalf("rerun: %v", err)
	}
	got := f.deliveredCount(t)
	for i := 0; i < 6; i++ {
		if got[fmt.Sprintf("message %d", i)] != 1 {
			t.Errorf("after the rerun: %v", got)
			break
		}
	}
}

// TestStallMidRETR: a server that stops sending in the middle of a message
// is given up after the timeout, with a message that says so.
func TestStallMidRETR(t *testing.T) {
	f := newFixture(t, 3)
	f.acct.Timeout = time.Second
	f.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
		if cmd == "RETR" && args[0] == "2" {
			return &pop3test.Interrupt{After: 50, Stall: time.Hour}
		}
		return nil
	}
	start := time.Now()
	_, err := f.run(t, Options{})
	elapsed := time.Since(start)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "stalled for 1s") {
		t.Fatalf("got %v, want a timeout that says so", err)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("gave up after %v", elapsed)
	}
	f.tmpEmpty(t)
	if got := f.deliveredCount(t); len(got) != 1 {
		t.Fatalf("delivered %v", got)
	}
}

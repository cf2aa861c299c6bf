package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// The commit protocol against servers for which retrieval is a
// commitment (CONTRACT §5): a session that retrieved a message it did not
// deliver never ends with QUIT.

// tempfailMDA writes an MDA that delivers into dir, except the message
// whose subject is "message N" for N in bad, for which it exits status.
func tempfailMDA(t *testing.T, f *fixture, status int, bad ...int) string {
	t.Helper()
	out := filepath.Join(f.dir, "mda-out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	var cases strings.Builder
	for _, n := range bad {
		fmt.Fprintf(&cases, "*'Subject: message %d'*) exit %d;; ", n, status)
	}
	script := filepath.Join(f.dir, "mda-"+strconv.Itoa(len(bad))+".sh")
	body := "#!/bin/sh\nmsg=$(cat)\ncase \"$msg\" in " + cases.String() + "esac\n" +
		"printf '%s\\n' \"$msg\" > \"" + out + "/$(date +%s%N)-$$\"\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// mdaDelivered counts, by subject, the messages an MDA of tempfailMDA
// delivered.
func mdaDelivered(t *testing.T, f *fixture) map[string]int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.dir, "mda-out"))
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(f.dir, "mda-out", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i := strings.Index(s, "Subject: ")
		n[s[i+len("Subject: "):i+strings.IndexByte(s[i:], '\n')]]++
	}
	return n
}

// TestRetrievalIsCommitment: on a server that removes (EXPIRE 0, GNU
// mailutils) or hides (Gmail) what a session retrieved once it QUITs, an
// MDA that says "try later" for one message loses nothing: the session
// ends without QUIT, and the next run first deletes what was delivered,
// in a session that retrieves nothing, then delivers the rest, each
// message once.
func TestRetrievalIsCommitment(t *testing.T) {
	for _, ret := range []pop3test.Retention{pop3test.ExpireRetrieved, pop3test.HideRetrieved} {
		t.Run(fmt.Sprint(ret), func(t *testing.T) {
			f := newFixture(t, 4)
			f.srv.Retention = ret
			f.acct.Deliver = configDeliver("", "", tempfailMDA(t, f, 75, 1))
			res, err := f.run(t, Options{})
			if err == nil || res.Fetched != 3 || res.Failed != 1 || !res.HungUp {
				t.Fatalf("run 1: %+v %v", res, err)
			}
			if f.mb.Len() != 4 || len(f.mb.Removed()) != 0 {
				t.Fatalf("run 1 left %d on the server, removed %d: want all 4 kept", f.mb.Len(), len(f.mb.Removed()))
			}
			f.acct.Deliver = configDeliver("", "", tempfailMDA(t, f, 75))
			res, err = f.rerun(t, Options{})
			if err != nil || res.Fetched != 1 || res.Deleted != 4 || f.mb.Len() != 0 {
				t.Fatalf("run 2: %+v %v, %d on the server", res, err, f.mb.Len())
			}
			got := mdaDelivered(t, f)
			for i := range 4 {
				if got[fmt.Sprintf("message %d", i)] != 1 {
					t.Errorf("delivered %v, want each message once", got)
					break
				}
			}
			// run 2 began with a session of DELE and QUIT only
			logs := f.srv.Log()
			if len(logs) != 3 || !logs[1].Updated || len(logs[1].Retrieved) != 0 {
				t.Fatalf("sessions: %+v", logs)
			}
		})
	}
}

// TestCheckHangsUpAfterTOP: check --list asks for headers with TOP, which
// GNU mailutils counts as retrieval: the session ends without QUIT, and
// nothing is removed.
func TestCheckHangsUpAfterTOP(t *testing.T) {
	f := newFixture(t, 3)
	f.srv.Retention = pop3test.ExpireRetrieved
	f.start(t)
	opts := Options{Account: f.acct, Credentials: staticCreds{password: "secret"}}
	res, err := Check(context.Background(), opts, func(m NewMessage, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil || len(res.New) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if f.mb.Len() != 3 {
		t.Fatalf("check removed %d messages", 3-f.mb.Len())
	}
	for _, l := range f.srv.Received() {
		if l == "QUIT" {
			t.Fatal("check sent QUIT after TOP")
		}
	}
	// without --list there is no TOP, and QUIT is fine
	if _, err := Check(context.Background(), opts, nil); err != nil || f.mb.Len() != 3 {
		t.Fatalf("%v, %d left", err, f.mb.Len())
	}
}

// TestStopWithPipelineHangsUp: a stop while RETRs are in flight on a slow
// server ends the run at once, without draining the pipeline and without
// QUIT: what was delivered is deleted next run, unseen; on a server that
// removes what was retrieved, nothing is lost.
func TestStopWithPipelineHangsUp(t *testing.T) {
	f := newFixture(t, 300)
	f.srv.Retention = pop3test.ExpireRetrieved
	f.srv.Latency = 20 * time.Millisecond
	stop := make(chan struct{})
	prog := &stopAfter{n: 3, stop: stop}
	begin := time.Now()
	res, err := f.run(t, Options{Stop: stop, Progress: prog})
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("a stop is not an error: %v", err)
	}
	if !res.HungUp || res.Fetched < 3 || res.Fetched == 300 {
		t.Fatalf("%+v", res)
	}
	// Draining 300 RETRs one by one would take 300 × 40 ms; a stop
	// takes the message in hand and the commit.
	if took > 6*time.Second {
		t.Errorf("the stop took %v", took)
	}
	if f.mb.Len() != 300 {
		t.Fatalf("%d left on the server, want all 300: nothing committed", f.mb.Len())
	}
	f.srv.Latency = 0
	res, err = f.rerun(t, Options{})
	if err != nil || f.mb.Len() != 0 {
		t.Fatalf("rerun: %+v %v", res, err)
	}
	for s, n := range f.deliveredCount(t) {
		if n != 1 {
			t.Fatalf("%s delivered %d times", s, n)
		}
	}
}

// stopAfter closes stop once n messages are delivered.
type stopAfter struct {
	n, got int
	stop   chan struct{}
}

func (s *stopAfter) Begin(int, int64) {}
func (s *stopAfter) Delivered(int64) {
	if s.got++; s.got == s.n {
		close(s.stop)
	}
}

// TestStopCutsStalledTransfer: a stop while the server stalls in the
// middle of a message cuts the session after the grace period: the run
// ends, the message in hand is aborted and stays on the server.
func TestStopCutsStalledTransfer(t *testing.T) {
	f := newFixture(t, 0)
	for i := range 3 {
		f.mb.Add(append(testMessage(i), strings.Repeat("a line of the body\n", 2000)...))
	}
	f.srv.Faults.Net = func(session int) *pop3test.NetFault {
		if session == 1 { // in the middle of the second message
			return &pop3test.NetFault{After: 60000, Stall: time.Minute}
		}
		return nil
	}
	f.acct.Timeout = time.Minute
	stop := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { close(stop) })
	begin := time.Now()
	res, err := f.run(t, Options{Stop: stop})
	if err != nil {
		t.Fatalf("a stop is not an error: %v (%+v)", err, res)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("the stop took %v", took)
	}
	if res.Fetched != 1 {
		t.Errorf("%+v: want the first message delivered, the second cut", res)
	}
	f.tmpEmpty(t)
	if f.mb.Len() != 3 || len(f.delivered(t)) != 1 {
		t.Fatalf("%d on the server, %d delivered", f.mb.Len(), len(f.delivered(t)))
	}
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if e, ok := c.Get(f.mb.Messages()[0].UID); !ok || e.State != uidcache.Deleted {
		t.Fatalf("the delivered message is not remembered for deletion: %+v", e)
	}
}

// TestPoisonQuarantined: a message whose retrieval breaks the session
// each time (it begins with "+OK", which the client takes for an answer
// out of step) does not strand the mailbox: the others are delivered and
// deleted within 3 runs, and after 3 such runs it is left on the server,
// reported on every run, until forgotten.
func TestPoisonQuarantined(t *testing.T) {
	f := newFixture(t, 0)
	for i := range 5 {
		msg := testMessage(i)
		if i == 2 {
			msg = append([]byte("+OK poison\n"), msg...)
		}
		f.mb.AddWithUID("uid-"+strconv.Itoa(i), msg)
	}
	var res Result
	var err error
	for run := 1; run <= 3; run++ {
		if res, err = f.rerun(t, Options{}); !isProtocolError(err) {
			t.Fatalf("run %d: %+v %v, want a protocol error", run, res, err)
		}
	}
	if f.mb.Len() != 1 { // the poison alone
		t.Fatalf("after 3 runs: %d on the server", f.mb.Len())
	}
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if e, _ := c.Get("uid-2"); e.State != uidcache.Quarantined {
		t.Fatalf("poison UID state %q", e.State)
	}
	f.logs.Reset()
	res, err = f.rerun(t, Options{})
	if err != nil || res.Quarantined != 1 || f.mb.Len() != 1 || !strings.Contains(f.logs.String(), "uid-2") {
		t.Fatalf("run 4: %+v %v, %d on the server\n%s", res, err, f.mb.Len(), f.logs)
	}
	got := f.deliveredCount(t)
	if len(got) != 4 || got["message 2"] != 0 {
		t.Fatalf("delivered %v", got)
	}
	if n, err := Forget(f.acct, []string{"uid-2"}); err != nil || n != 1 {
		t.Fatalf("forget: %d %v", n, err)
	}
	if _, err := f.rerun(t, Options{}); !isProtocolError(err) {
		t.Fatalf("after forget, the poison is tried again: %v", err)
	}
}

// TestTwoTunnelsTwoMailboxes: two accounts of one user and host on two
// ports are two mailboxes (CONTRACT §2): with overlapping UIDs, each is
// fetched whole, and neither deletes the other's mail unseen; run at the
// same time, neither is locked out by the other.
func TestTwoTunnelsTwoMailboxes(t *testing.T) {
	a, b := newFixture(t, 0), newFixture(t, 0)
	for i := range 4 {
		a.mb.AddWithUID("u"+strconv.Itoa(i), testMessage(i))
		b.mb.AddWithUID("u"+strconv.Itoa(i), testMessage(10+i))
	}
	b.acct.StateDir = a.acct.StateDir
	a.start(t)
	b.start(t)
	if a.acct.Key() == b.acct.Key() {
		t.Fatalf("one identity %q for two ports", a.acct.Key())
	}
	errs := make(chan error, 2)
	var ra, rb Result
	go func() { var err error; ra, err = a.run(t, Options{}); errs <- err }()
	go func() { var err error; rb, err = b.run(t, Options{}); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ra.Fetched != 4 || rb.Fetched != 4 || a.mb.Len() != 0 || b.mb.Len() != 0 {
		t.Fatalf("%+v %+v, %d and %d left", ra, rb, a.mb.Len(), b.mb.Len())
	}
}

// TestAdoptOldCache: a cache kept under the identity of older versions
// (USER@HOST, without the port) is adopted, so an upgrade re-fetches
// nothing.
func TestAdoptOldCache(t *testing.T) {
	f := newFixture(t, 3)
	f.acct.Keep = true
	f.start(t)
	old := "alice@" + f.acct.Host
	c, err := uidcache.Open(f.acct.StateDir, old)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range f.mb.Messages() {
		c.Put(m.UID, uidcache.Entry{Seen: time.Now(), State: uidcache.Retrieved})
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	f.acct.AdoptKey = old
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 0 {
		t.Fatalf("%+v %v: the old cache was not adopted", res, err)
	}
	if _, err := os.Stat(filepath.Join(f.acct.StateDir, uidcache.FileName(old))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old cache is still there: %v", err)
	}
	_, port, _ := net.SplitHostPort(f.srv.Addr())
	if !strings.HasSuffix(f.acct.Key(), ":"+port) {
		t.Errorf("key %q", f.acct.Key())
	}
}

// TestReusedUIDNotDeletedUnseen: a server that gives the UID of a message
// it deleted to a new one (against RFC 1939 §7) after a QUIT whose answer
// was lost: the cache remembers the UID as delivered, to be deleted, with
// its size; the new message, of another size, is fetched, not deleted
// unseen. In keep mode it is fetched too, not taken as retrieved.
func TestReusedUIDNotDeletedUnseen(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFixture(t, 0)
		f.acct.Keep = keep
		f.mb.AddWithUID("x", testMessage(1))
		f.mb.AddWithUID("y", testMessage(2))
		f.start(t)
		c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
		state := uidcache.Deleted
		if keep {
			state = uidcache.Retrieved
		}
		size := f.mb.Messages()[0].Size()
		c.Put("x", uidcache.Entry{Seen: time.Now(), State: state, Size: size + 7})
		c.Put("y", uidcache.Entry{Seen: time.Now(), State: state, Size: f.mb.Messages()[1].Size()})
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		res, err := f.run(t, Options{})
		if err != nil || res.Fetched != 1 || !strings.Contains(f.logs.String(), "under the UID of one retrieved before") {
			t.Fatalf("keep %v: %+v %v\n%s", keep, res, err, f.logs)
		}
		if got := f.deliveredCount(t); got["message 1"] != 1 || got["message 2"] != 0 {
			t.Fatalf("keep %v: delivered %v", keep, got)
		}
	}
}

// TestSharedUIDSizesKeep: two messages of different sizes listed under
// one UID (against RFC 1939 §7), in keep mode: both are retrieved once,
// and never again, though the cache can record one size for the UID (a
// size that differs is no sign of a reused UID here).
func TestSharedUIDSizesKeep(t *testing.T) {
	f := newFixture(t, 0)
	f.acct.Keep = true
	f.mb.AddWithUID("dup", testMessage(1))
	f.mb.AddWithUID("dup", append(testMessage(2), "a longer body\n"...))
	f.start(t)
	for run, want := range []int{2, 0, 0} {
		res, err := f.run(t, Options{})
		if err != nil || res.Fetched != want {
			t.Fatalf("run %d: %+v %v, want %d fetched", run+1, res, err, want)
		}
	}
}

// TestNoUIDLSessionPerBatch: without UIDL nothing is remembered, so a
// session's deliveries are deleted only by its QUIT: each batch gets a
// session of its own, and a session that breaks costs at most one batch
// of duplicates (CONTRACT §5).
func TestNoUIDLSessionPerBatch(t *testing.T) {
	f := newFixture(t, 300)
	f.srv.Faults.HideCaps = []string{"UIDL"}
	f.srv.Faults.Net = func(session int) *pop3test.NetFault {
		if session == 2 { // in the second batch
			return &pop3test.NetFault{After: 5000}
		}
		return nil
	}
	res, err := f.run(t, Options{})
	if err == nil || res.Deleted != maildirKind.limits.messages {
		t.Fatalf("run 1: %+v %v", res, err)
	}
	if f.mb.Len() != 300-maildirKind.limits.messages {
		t.Fatalf("run 1 left %d", f.mb.Len())
	}
	if res, err = f.rerun(t, Options{}); err != nil || f.mb.Len() != 0 || res.Listed != 300-maildirKind.limits.messages {
		t.Fatalf("run 2: %+v %v, %d left", res, err, f.mb.Len())
	}
	dups := 0
	for _, n := range f.deliveredCount(t) {
		dups += n - 1
	}
	if len(f.deliveredCount(t)) != 300 || dups > maildirKind.limits.messages {
		t.Fatalf("%d delivered, %d duplicates", len(f.deliveredCount(t)), dups)
	}
}

// TestLoginDelayAfterDeletions: a server with LOGIN-DELAY may refuse a
// login sooner than that after the last. When a run must first commit the
// deletions an earlier session left (a session that retrieves nothing),
// and the fetch session's login is refused so, the run ends there: the
// new mail waits for the next run, and the run does not fail. A server
// that lists LOGIN-DELAY and lets the login in (Courier) is fetched.
func TestLoginDelayAfterDeletions(t *testing.T) {
	f := newFixture(t, 0)
	f.mb.AddWithUID("old", testMessage(1))
	f.mb.AddWithUID("new", testMessage(2))
	f.srv.ExtraCaps = []string{"LOGIN-DELAY 60"}
	var logins atomic.Int32
	f.srv.Faults.RefuseLogin = func(string) string {
		if logins.Add(1) > 1 {
			return "-ERR [LOGIN-DELAY] wait a minute"
		}
		return ""
	}
	f.start(t)
	c, _ := uidcache.Open(f.acct.StateDir, f.acct.Key())
	c.Put("old", uidcache.Entry{Seen: time.Now(), State: uidcache.Deleted, Size: f.mb.Messages()[0].Size()})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	res, err := f.run(t, Options{})
	if err != nil || res.Deleted != 1 || res.Fetched != 0 || f.mb.Len() != 1 || logins.Load() != 2 {
		t.Fatalf("%+v %v, %d left, %d logins", res, err, f.mb.Len(), logins.Load())
	}
	// not enforced: the fetch session goes on
	logins.Store(-10)
	f.mb.AddWithUID("newer", testMessage(3))
	c, _ = uidcache.Open(f.acct.StateDir, f.acct.Key())
	c.Put("new", uidcache.Entry{Seen: time.Now(), State: uidcache.Deleted, Size: f.mb.Messages()[0].Size()})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	f.idle(t)
	res, err = f.run(t, Options{})
	if err != nil || res.Deleted != 2 || res.Fetched != 1 || f.mb.Len() != 0 {
		t.Fatalf("unenforced: %+v %v, %d left", res, err, f.mb.Len())
	}
}

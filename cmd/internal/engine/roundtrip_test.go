package engine

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRoundTripsPipelined counts the round trips a 300-message session
// waits for against a server that pipelines (CONTRACT §7: a handful plus
// the bytes, not one per message).
func TestRoundTripsPipelined(t *testing.T) {
	f := newFixture(t, 300)
	// A long round trip, so that the client's own work between commands
	// (fsyncs, on a loaded machine) is not taken for waits on the network.
	f.srv.Latency = 60 * time.Millisecond
	// Local delivery and state on tmpfs, where there is one: the count is
	// of network waits, and a slow disk would add waits of its own.
	f.acct.Deliver.Maildir = shmDir(t)
	f.acct.StateDir = shmDir(t)
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 300 || f.mb.Len() != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	rt := f.srv.RoundTrips()
	t.Logf("300 messages, RTT 120 ms: %d round trips", rt)
	if rt > 10 {
		t.Fatalf("%d round trips for a pipelined 300-message session, want at most 10", rt)
	}
	if f.srv.EarlyCommands() != 0 {
		t.Fatal("EarlyCommands counted on a pipelining server")
	}
}

// TestRoundTripsLockStep: without PIPELINING every command waits for the
// previous answer, and none is sent early.
func TestRoundTripsLockStep(t *testing.T) {
	f := newFixture(t, 20)
	f.srv.Latency = 5 * time.Millisecond
	f.srv.Faults.HideCaps = []string{"PIPELINING"}
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 20 || f.mb.Len() != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := f.srv.EarlyCommands(); n != 0 {
		t.Fatalf("%d commands sent before the previous answer", n)
	}
	// RETR and DELE of each message wait a round trip each
	if rt := f.srv.RoundTrips(); rt < 2*20 {
		t.Fatalf("%d round trips: the client did not wait as a lock-step client must", rt)
	}
}

// shmDir returns a temporary directory in /dev/shm if it exists, else in
// the default temporary directory.
func shmDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "popfetch-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// rememberFixture is a server with latency, in delete mode, and a first
// run that fetches its n messages, so the server's capabilities are
// remembered. It returns the round trips of that first run.
func rememberFixture(t *testing.T, n int) (*fixture, int) {
	t.Helper()
	f := newFixture(t, n)
	// a round trip of 100 ms: a busy machine's pauses stay below half
	f.srv.Latency = 50 * time.Millisecond
	// state and mail on tmpfs, where there is one: the count is of
	// network waits, and a slow disk's fsyncs would add waits of their own
	f.acct.Deliver.Maildir = shmDir(t)
	f.acct.StateDir = shmDir(t)
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != n || f.mb.Len() != 0 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	return f, f.srv.RoundTrips()
}

// again adds n messages and runs once more; it returns the run's round
// trips.
func (f *fixture) again(t *testing.T, n int) int {
	t.Helper()
	for i := 0; i < n; i++ {
		f.mb.Add(testMessage(100 + i))
	}
	before := f.srv.RoundTrips()
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != n || f.mb.Len() != 0 {
		t.Fatalf("run: %+v %v\n%s", res, err, f.logs)
	}
	return f.srv.RoundTrips() - before
}

// TestRoundTripsRemembered: a session sends its login with the first
// CAPA when it remembers that the server pipelines: on first contact 7
// round trips (TLS and greeting 2, CAPA, the login, UIDL and LIST, RETR,
// QUIT: pop3test does not count TCP's), later 6 (CONTRACT §7).
func TestRoundTripsRemembered(t *testing.T) {
	f, first := rememberFixture(t, 50)
	second := f.again(t, 50)
	t.Logf("round trips: %d on first contact, %d with the capabilities remembered", first, second)
	if first > 8 {
		t.Errorf("%d round trips on first contact, want 7 (8 on a busy machine)", first)
	}
	if second > 6 || second >= first {
		t.Errorf("%d round trips with the capabilities remembered, want at most 6 and fewer than %d", second, first)
	}
	if n := len(f.delivered(t)); n != 100 {
		t.Fatalf("%d delivered, want 100", n)
	}
}

// TestRoundTripsCapsChanged: a server whose login methods changed since
// the capabilities were remembered refuses the pipelined login; the run
// logs in again with what the server lists now, which costs one round
// trip more, and remembers the new capabilities.
func TestRoundTripsCapsChanged(t *testing.T) {
	f, _ := rememberFixture(t, 50)
	remembered := f.again(t, 50)
	f.srv.Faults.HideCaps = []string{"SASL"} // AUTH PLAIN refused; USER stays
	changed := f.again(t, 50)
	after := f.again(t, 50)
	t.Logf("round trips: %d remembered, %d changed, %d after", remembered, changed, after)
	if changed != remembered+1 {
		t.Errorf("%d round trips when the server changed, want %d", changed, remembered+1)
	}
	if after != remembered {
		t.Errorf("%d round trips once the change is remembered, want %d", after, remembered)
	}
	var auths, users int
	for _, line := range f.srv.Received() {
		switch {
		case strings.HasPrefix(line, "AUTH "):
			auths++
		case strings.HasPrefix(line, "USER "):
			users++
		}
	}
	// runs 1 and 2 with AUTH, run 3 with AUTH then USER, run 4 USER
	if auths != 3 || users != 2 {
		t.Errorf("%d AUTH and %d USER commands, want 3 and 2", auths, users)
	}
	if n := len(f.delivered(t)); n != 200 {
		t.Fatalf("%d delivered, want 200", n)
	}
}

// TestRoundTripsPipeliningGone: remembered PIPELINING that the server no
// longer lists costs nothing but the early commands, which a server
// reading its input line by line answers in turn; the memory is dropped,
// and later runs wait for each answer.
func TestRoundTripsPipeliningGone(t *testing.T) {
	f, _ := rememberFixture(t, 3)
	f.srv.Faults.HideCaps = []string{"PIPELINING"}
	f.again(t, 3)
	if _, err := os.Stat(capsPath(f.acct)); !os.IsNotExist(err) {
		t.Fatalf("the memory of PIPELINING outlived it: %v", err)
	}
	early := f.srv.EarlyCommands()
	f.again(t, 3)
	if n := f.srv.EarlyCommands(); n != early {
		t.Fatalf("%d commands sent early once PIPELINING was gone", n-early)
	}
}

// TestCapsMemoryOtherServer: capabilities remembered for another server
// (here: another greeting) are not used.
func TestCapsMemoryOtherServer(t *testing.T) {
	f, _ := rememberFixture(t, 3)
	f.srv.Faults.Greeting = "+OK another server"
	f.srv.Faults.HideCaps = []string{"PIPELINING"}
	f.again(t, 3)
	if n := f.srv.EarlyCommands(); n != 0 {
		t.Fatalf("%d commands sent early to a server with another greeting", n)
	}
}

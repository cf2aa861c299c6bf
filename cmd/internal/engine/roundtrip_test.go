package engine

import (
	"os"
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
	// Local delivery on tmpfs, where there is one: the count is of network
	// waits, and a slow disk would add waits of its own.
	f.acct.Deliver.Maildir = shmDir(t)
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

package engine

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/simfs"
	"github.com/popfetch/popfetch/uidcache"
)

// TestRunOnSimulatedDisk: with Options.FS, a run does all its file work on
// that file system (state directory, lock, cache, Maildir): the seam the
// fault simulator uses. What it committed survives a power cut.
func TestRunOnSimulatedDisk(t *testing.T) {
	f := newFixture(t, 5)
	f.acct.StateDir = "/home/u/.local/state/popfetch"
	f.acct.Deliver.Maildir = "/home/u/Mail"
	f.acct.Keep = true
	d := simfs.New(simfs.Options{})
	res, err := f.run(t, Options{FS: d.NewProcess()})
	if err != nil || res.Fetched != 5 || f.mb.Len() != 5 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := os.Stat("/home/u/Mail"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the run wrote to the real disk: %v", err)
	}
	d.CrashPower(rand.New(rand.NewPCG(1, 2)))
	if names, _ := d.ReadDir("/home/u/Mail/new"); len(names) != 5 {
		t.Fatalf("%d messages in new/ after a power cut, want 5", len(names))
	}
	c, err := uidcache.Open(f.acct.StateDir, f.acct.Key(), uidcache.Options{FS: d.NewProcess()})
	if err != nil || c.Len() != 5 {
		t.Fatalf("the cache on the simulated disk: %v, %d entries", err, c.Len())
	}
	if counts := d.Counts(); counts[simfs.OpSyncDir] == 0 || counts[simfs.OpLock] == 0 {
		t.Fatalf("calls: %v", counts)
	}
}

// The account lock on a simulated disk: a second process is refused it,
// and it dies with the process that held it, as flock(2)'s does.
func TestLockOnSimulatedDisk(t *testing.T) {
	d := simfs.New(simfs.Options{})
	p1, p2 := d.NewProcess(), d.NewProcess()
	if _, err := lockAccount(p1, "/state", "a@b"); err != nil {
		t.Fatal(err)
	}
	if _, err := lockAccount(p2, "/state", "a@b"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second process: %v", err)
	}
	p1.Kill()
	l, err := lockAccount(p2, "/state", "a@b")
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	l.Close()
	if err := d.Chmod("/state", 0o755|0o020); err != nil {
		t.Fatal(err)
	}
	if _, err := lockAccount(p2, "/state", "a@b"); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("a state directory the group can write: %v", err)
	}
}

package uidcache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/simfs"
)

// Crash and fault tests on a simulated disk (internal/simfs).

const (
	stateDir = "/home/u/.local/state/popfetch"
	cacheKey = "alice@pop.example.org"
)

// contents lists a cache's UIDs and states, for comparison.
func contents(c *Cache) string {
	var b strings.Builder
	for _, uid := range c.UIDs() {
		e, _ := c.Get(uid)
		fmt.Fprintf(&b, "%s:%c ", uid, e.State)
	}
	return b.String()
}

// saveOldThenNew saves a cache of 50 UIDs (the old one), then records 30
// more and deletes 10 and saves again (the new one). It returns the
// contents of both and whether each save returned nil.
func saveOldThenNew(d *simfs.FS) (old, new string, oldSaved, newSaved bool) {
	p := d.NewProcess()
	c, err := Open(stateDir, cacheKey, Options{FS: p})
	if err != nil {
		return
	}
	seen := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range 50 {
		c.Put(fmt.Sprintf("uid-%03d", i), Entry{Seen: seen, State: Retrieved, Size: int64(100 + i)})
	}
	old = contents(c)
	oldSaved = c.Save() == nil
	for i := 50; i < 80; i++ {
		c.Put(fmt.Sprintf("uid-%03d", i), Entry{Seen: seen, State: Deleted})
	}
	for i := range 10 {
		c.Delete(fmt.Sprintf("uid-%03d", i))
	}
	new = contents(c)
	newSaved = oldSaved && c.Save() == nil
	return old, new, oldSaved, newSaved
}

// reopen reads the cache as the next run would.
func reopen(t *testing.T, d *simfs.FS) string {
	t.Helper()
	c, err := Open(stateDir, cacheKey, Options{FS: d.NewProcess()})
	if err != nil {
		t.Fatalf("the next run cannot read the cache: %v", err)
	}
	return contents(c)
}

// TestSaveCrashAtEveryOp: a save cut at any call, by kill -9 or by a power
// cut, leaves the old cache or the new one, never a mix; once Save has
// returned, a power cut keeps what it saved.
func TestSaveCrashAtEveryOp(t *testing.T) {
	ref := simfs.New(simfs.Options{})
	old, new, _, ok := saveOldThenNew(ref)
	if !ok {
		t.Fatal("reference run failed")
	}
	ops := ref.Ops()
	t.Logf("%d calls, each cut by kill -9 and by power cuts of 8 seeds", ops)
	for n := int64(1); n <= ops+1; n++ {
		for seed := -1; seed < 8; seed++ {
			d := simfs.New(simfs.Options{})
			d.OnOp(func(op simfs.Op) error {
				if op.N == n {
					if seed < 0 {
						d.CrashProcess()
					} else {
						d.CrashPower(rand.New(rand.NewPCG(uint64(seed), 7)))
					}
				}
				return nil
			})
			_, _, oldSaved, newSaved := saveOldThenNew(d)
			d.OnOp(nil)
			got := reopen(t, d)
			switch {
			case newSaved && got != new:
				t.Fatalf("op %d seed %d: the new cache was saved and then lost:\n%s", n, seed, got)
			case oldSaved && got != old && got != new:
				t.Fatalf("op %d seed %d: neither the old nor the new cache:\n%s", n, seed, got)
			case !oldSaved && got != "" && got != old:
				t.Fatalf("op %d seed %d: not the empty cache nor the old one:\n%s", n, seed, got)
			}
		}
	}
}

// TestSaveFaultAtEveryOp: a save whose call fails (a full disk, an I/O
// error, a read-only file system) returns an error and leaves no
// temporary file behind; the cache is then the old one or the new one,
// and a save that returned nil survives a power cut.
func TestSaveFaultAtEveryOp(t *testing.T) {
	ref := simfs.New(simfs.Options{})
	var kinds []simfs.OpKind
	ref.OnOp(func(op simfs.Op) error { kinds = append(kinds, op.Kind); return nil })
	_, _, _, ok := saveOldThenNew(ref)
	if !ok {
		t.Fatal("reference run failed")
	}
	ops := ref.Ops()
	failed := 0
	for n := int64(1); n <= ops; n++ {
		for _, errno := range []error{syscall.ENOSPC, syscall.EIO, syscall.EROFS} {
			d := simfs.New(simfs.Options{})
			d.Inject(simfs.Rule{At: n, Err: errno})
			old, new, oldSaved, newSaved := saveOldThenNew(d)
			d.ClearRules()
			// A save that failed made nothing durable, but may have
			// replaced the file already (the fsync of the directory
			// failed): the old contents or the new.
			allowed := []string{new}
			switch {
			case !oldSaved:
				allowed = []string{"", old}
			case !newSaved:
				allowed = []string{old, new}
				failed++
			}
			got := reopen(t, d)
			if !slices.Contains(allowed, got) {
				t.Fatalf("op %d %v: saved %t %t, the cache holds\n%s", n, errno, oldSaved, newSaved, got)
			}
			names, _ := d.ReadDir(stateDir)
			if i := slices.IndexFunc(names, func(s string) bool { return strings.HasPrefix(s, ".tmp-") }); i >= 0 {
				// a failed remove of the temporary file leaves it: only
				// when the fault was that remove
				if kinds[n-1] != simfs.OpRemove {
					t.Fatalf("op %d %v: %s left behind", n, errno, names[i])
				}
			}
			d.CrashPower(rand.New(rand.NewPCG(uint64(n), 1)))
			if after := reopen(t, d); !slices.Contains(allowed, after) {
				t.Fatalf("op %d %v: after a power cut the cache holds\n%s", n, errno, after)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no fault made a save fail")
	}
}

// TestOpenRefusesSymlink: a cache file that is a symbolic link is refused
// (issue 16: it could be another user's file).
func TestOpenRefusesSymlink(t *testing.T) {
	d := simfs.New(simfs.Options{})
	if err := d.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("/tmp/planted", []byte("1\t2024-01-01T00:00:00Z\tD\n"), 0o644); err == nil {
		t.Fatal("WriteFile without its directory")
	}
	d.MkdirAll("/tmp", 0o777)
	if err := d.WriteFile("/tmp/planted", []byte("1\t2024-01-01T00:00:00Z\tD\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Symlink("/tmp/planted", stateDir+"/"+FileName(cacheKey)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(stateDir, cacheKey, Options{FS: d.NewProcess()})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Open of a link: %v", err)
	}
}

package uidcache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCache writes a cache file by hand and opens it.
func writeCache(t *testing.T, text string) *Cache {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName("a@b")), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenForms: files written by hand or by older versions load as they
// always did: CRLF line endings, no final newline, comments and empty
// lines, times with an offset or a fraction, a UID listed twice (the last
// line wins, at the first line's place).
func TestOpenForms(t *testing.T) {
	c := writeCache(t, "# comment\r\n\r\n"+
		"a\t2026-01-02T03:04:05Z\tR\r\n"+
		"b\t2026-01-02T04:04:05+01:00\tD\n"+
		"a\t2026-02-03T04:05:06Z\tB2\n"+
		"%23c%25\t2026-01-02T03:04:05.5Z\tS\t4096\n"+
		"d\t2026-01-02T03:04:05Z\tQ")
	want := []struct {
		uid   string
		seen  string
		state State
		n     int
		size  int64
	}{
		{"a", "2026-02-03T04:05:06Z", Broken, 2, 0},
		{"b", "2026-01-02T03:04:05Z", Deleted, 0, 0},
		{"#c%", "2026-01-02T03:04:05Z", Skipped, 0, 4096},
		{"d", "2026-01-02T03:04:05Z", Quarantined, 0, 0},
	}
	if c.Len() != len(want) || c.Positions() != len(want) {
		t.Fatalf("Len %d, Positions %d, want %d", c.Len(), c.Positions(), len(want))
	}
	for i, w := range want {
		uid, e, ok := c.At(i)
		seen, _ := time.Parse(time.RFC3339, w.seen)
		if !ok || uid != w.uid || !e.Seen.Equal(seen) || e.State != w.state || e.Breaks != w.n || e.Size != w.size {
			t.Errorf("position %d: %q %+v %v, want %+v", i, uid, e, ok, w)
		}
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(c.Path())
	if strings.Contains(string(raw), "\r") || !strings.HasSuffix(string(raw), "%23c%25\t2026-01-02T03:04:05Z\tS\t4096\n"+
		"d\t2026-01-02T03:04:05Z\tQ\n") {
		t.Fatalf("saved:\n%s", raw)
	}
}

// TestOpenRefuses: a malformed line is an error naming the file and line.
func TestOpenRefuses(t *testing.T) {
	for _, line := range []string{
		"a\t2026-01-02T03:04:05Z", "a\t2026-01-02T03:04:05Z\tR\tx", "a\t2026-01-02T03:04:05Z\tX",
		"a\t2026-01-02T03:04:05Z\tB0", "a\t2026-01-02T03:04:05Z\tRR", "a\t2026-02-30T03:04:05Z\tR",
		"a\t2026-01-02T24:04:05Z\tR", "a\t2026-01-02 03:04:05Z\tR", "a%2\t2026-01-02T03:04:05Z\tR",
		"\t2026-01-02T03:04:05Z\tR", "a\t\tR", "a\t2026-01-02T03:04:05Z\tR\t0", "a\t2026-01-02T03:04:05Z\tR\t-5",
		"a\t2026-01-02T03:04:05Z\tR\tx", "a\t2026-01-02T03:04:05Z\tR\t5\t6", "a\t2026-01-02T03:04:05Z\tR\t",
		"a\t2026-01-02T03:04:05Z\tR\t99999999999999999999",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName("a@b")), []byte("# x\nok\t2026-01-02T03:04:05Z\tR\n"+line+"\n"), 0o600)
		_, err := Open(dir, "a@b")
		if err == nil || !strings.Contains(err.Error(), FileName("a@b")+":3: ") {
			t.Errorf("%q: %v", line, err)
		}
	}
}

// TestFind: lookups in the order of the file, out of it, of deleted and
// of new UIDs all find what is there, and positions survive deletions
// until a Snapshot.
func TestFind(t *testing.T) {
	c, err := Open(t.TempDir(), "a@b")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 10; i++ {
		c.Put(fmt.Sprint("u", i), Entry{Seen: now, State: Retrieved})
	}
	for _, i := range []int{0, 1, 2, 7, 8, 3, 9, 9, 0} {
		p, ok := c.Find(fmt.Sprint("u", i))
		if uid, _, live := c.At(p); !ok || p != i || !live || uid != fmt.Sprint("u", i) {
			t.Fatalf("Find(u%d) = %d, %v", i, p, ok)
		}
	}
	c.Delete("u4")
	if p, ok := c.Find("u4"); ok || p != -1 {
		t.Fatalf("deleted: %d %v", p, ok)
	}
	if _, _, live := c.At(4); live {
		t.Fatal("At of a deleted UID")
	}
	if _, ok := c.Find("u10"); ok {
		t.Fatal("found a UID never put")
	}
	if p, _ := c.Find("u5"); p != 5 {
		t.Fatalf("u5 at %d after a deletion", p)
	}
	for i := 0; i < 9; i++ {
		c.Delete(fmt.Sprint("u", i))
	}
	c.Put("u4", Entry{Seen: now, State: Deleted})
	c.Snapshot() // compacts: u9, u4
	for want, uid := range []string{"u9", "u4"} {
		if p, ok := c.Find(uid); !ok || p != want {
			t.Fatalf("after compaction, %s at %d %v, want %d", uid, p, ok, want)
		}
	}
	if c.Positions() != 2 || c.Len() != 2 {
		t.Fatalf("Positions %d, Len %d", c.Positions(), c.Len())
	}
}

// BenchmarkOpen50k loads the cache of 50 000 kept messages, as every run
// of a big kept mailbox does.
func BenchmarkOpen50k(b *testing.B) {
	dir := b.TempDir()
	c, _ := Open(dir, "a@b")
	now := time.Now()
	for i := 0; i < 50000; i++ {
		c.Put(fmt.Sprintf("%08X%08X", i, i*7), Entry{Seen: now, State: Retrieved})
	}
	if err := c.Save(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Open(dir, "a@b"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEntryRange: sizes of 4 GiB and more are kept exactly; times are
// kept to the second between 1970 and 2106.
func TestEntryRange(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]Entry{
		"big":    {Seen: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), State: Retrieved, Size: 5 << 30},
		"edge":   {Seen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), State: Deleted, Size: 1<<32 - 1},
		"small":  {Seen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), State: Retrieved, Size: 1<<32 - 2},
		"early":  {Seen: time.Date(1960, 1, 2, 3, 4, 5, 0, time.UTC), State: Skipped, Size: 10},
		"late":   {Seen: time.Date(2200, 1, 2, 3, 4, 5, 0, time.UTC), State: Broken, Breaks: 3},
		"zero":   {State: Quarantined},
		"nosize": {Seen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), State: Retrieved},
	}
	want := map[string]Entry{}
	for uid, e := range in {
		c.Put(uid, e)
		w := e
		w.Seen = e.Seen.Truncate(time.Second)
		switch uid {
		case "early", "zero":
			w.Seen = time.Unix(0, 0)
		case "late":
			w.Seen = time.Unix(1<<32-1, 0)
		}
		want[uid] = w
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*Cache{c, mustOpen(t, dir)} {
		for uid, w := range want {
			e, ok := c.Get(uid)
			if !ok || !e.Seen.Equal(w.Seen) || e.State != w.State || e.Breaks != w.Breaks || e.Size != w.Size {
				t.Errorf("%d: %s: %+v, want %+v", i, uid, e, w)
			}
		}
	}
}

func mustOpen(t *testing.T, dir string) *Cache {
	t.Helper()
	c, err := Open(dir, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkSave50k saves a cache of 50 000 UIDs (to tmpfs where there is
// one): the snapshot, the formatting of the lines and the write.
func BenchmarkSave50k(b *testing.B) {
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "uidcache-bench-"); err == nil {
			defer os.RemoveAll(d)
			dir = d
		}
	}
	c, _ := Open(dir, "a@b")
	now := time.Now()
	for i := 0; i < 50000; i++ {
		c.Put(fmt.Sprintf("%08X%08X", i, i*7), Entry{Seen: now.Add(time.Duration(i/100) * time.Second), State: Retrieved, Size: int64(4000 + i%700)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Save(); err != nil {
			b.Fatal(err)
		}
	}
}

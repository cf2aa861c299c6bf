package uidcache_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/uidcache"
)

// splitUIDs cuts fuzz data into UIDs: each is a length byte (mod 80, so
// that UIDs longer than RFC 1939's 70 octets occur) and that many bytes.
// Any byte may be in a UID, and a UID may be empty.
func splitUIDs(data []byte) []string {
	var uids []string
	for len(data) > 0 {
		n := min(int(data[0])%80, len(data)-1)
		uids = append(uids, string(data[1:1+n]))
		data = data[1+n:]
	}
	return uids
}

// fastTempDir is t.TempDir, on tmpfs where there is one: Save fsyncs the
// file and the directory, which on a disk would hold the fuzzer to a few
// dozen runs a second.
func fastTempDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "uidcache-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// FuzzCacheRoundTrip saves a cache of arbitrary UIDs, for an arbitrary
// mailbox key, and loads it back: every UID comes back as it was, with its
// entry, none collides with another, and the file holds only printable
// lines of the expected form, so a hostile UID or key can neither corrupt
// it nor pass for another. Seeds are in testdata/fuzz/FuzzCacheRoundTrip.
func FuzzCacheRoundTrip(f *testing.F) {
	f.Add([]byte("\x18whqtswO00WBw418f9t5JxYwZ\x12QhdPYR:00WBw1Ph7x7"), "alice@pop.example.org")
	f.Add([]byte("\x03%41\x01A\x00\x01%\x02%%\x05a b\tc\x03\r\n.\x02\xff\xfe"), "../../etc/passwd")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		dir := fastTempDir(t)
		c, err := uidcache.Open(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(c.Path()) != dir {
			t.Fatalf("key %q puts the cache at %q, outside %q", key, c.Path(), dir)
		}
		base := time.Date(2024, 3, 4, 9, 30, 0, 0, time.UTC)
		want := map[string]uidcache.Entry{}
		states := []uidcache.State{uidcache.Retrieved, uidcache.Deleted, uidcache.Skipped}
		for i, uid := range splitUIDs(data) {
			e := uidcache.Entry{Seen: base.Add(time.Duration(i) * time.Hour), State: states[i%3]}
			c.Put(uid, e)
			want[uid] = e
		}
		if len(want) == 0 {
			return
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(c.Path())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			t.Fatal("file does not end with a newline")
		}
		var comments, entries int
		for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
			if strings.HasPrefix(line, "#") {
				comments++
				continue
			}
			entries++
			f := strings.Split(line, "\t")
			if len(f) != 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
				t.Fatalf("malformed line %q", line)
			}
			for _, b := range []byte(f[0]) {
				if b < 0x21 || b > 0x7e {
					t.Fatalf("UID written with byte %#x: %q", b, line)
				}
			}
		}
		if comments != 2 || entries != len(want) {
			t.Fatalf("%d comment lines and %d entries, want 2 and %d:\n%q", comments, entries, len(want), raw)
		}
		got, err := uidcache.Open(dir, key)
		if err != nil {
			t.Fatalf("loading what was saved: %v\n%q", err, raw)
		}
		if got.Len() != len(want) {
			t.Fatalf("loaded %d UIDs, saved %d: two collided", got.Len(), len(want))
		}
		for uid, e := range want {
			ge, ok := got.Get(uid)
			if !ok || !ge.Seen.Equal(e.Seen) || ge.State != e.State {
				t.Fatalf("UID %q: loaded %+v, %v; saved %+v", uid, ge, ok, e)
			}
		}
	})
}

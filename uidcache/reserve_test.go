package uidcache

import (
	"fmt"
	"testing"
	"time"
)

// TestOpenReserves: the arrays of a big cache are sized from the file's
// first 64 KiB closely enough that reading it never grows them (growing
// copies them, which costs time and leaves garbage).
func TestOpenReserves(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 200000; i++ {
		c.Put(fmt.Sprintf("pt%08d", i), Entry{Seen: seen, State: Retrieved, Size: int64(3000 + i%1500)})
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.items); n != 200000 || cap(d.items) > n+n/16+64 || d.uids.Cap() > d.uids.Len()*17/16+64 {
		t.Fatalf("%d items in %d, %d octets of UIDs in %d: not sized to the file", n, cap(d.items), d.uids.Len(), d.uids.Cap())
	}
}

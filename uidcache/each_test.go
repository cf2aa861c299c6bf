package uidcache

import (
	"sort"
	"testing"
	"time"
)

// TestEachDelete: Each visits every UID once, and the visitor may delete
// the UID it is given.
func TestEachDelete(t *testing.T) {
	c, err := Open(t.TempDir(), "a@b")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"x", "y", "z"} {
		c.Put(u, Entry{Seen: time.Now(), State: Retrieved})
	}
	var seen []string
	c.Each(func(uid string, e Entry) {
		seen = append(seen, uid)
		if uid != "y" {
			c.Delete(uid)
		}
	})
	sort.Strings(seen)
	if len(seen) != 3 || seen[0] != "x" || seen[2] != "z" {
		t.Fatalf("visited %v", seen)
	}
	if got := c.UIDs(); len(got) != 1 || got[0] != "y" {
		t.Fatalf("left %v, want [y]", got)
	}
}

package uidcache

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSnapshot50k is the cost of capturing a large keep-mode cache,
// which the engine does for every batch it records.
func BenchmarkSnapshot50k(b *testing.B) {
	c, _ := Open(b.TempDir(), "a@b")
	now := time.Now()
	for i := 0; i < 50000; i++ {
		c.Put(fmt.Sprintf("%08X%08X", i, i*7), Entry{Seen: now.Add(time.Duration(i) * time.Second), State: Retrieved})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Snapshot()
	}
}

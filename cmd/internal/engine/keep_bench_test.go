package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/uidcache"
)

// benchKeep is a cron tick of a big kept mailbox (the rig's scenario k):
// kept messages retrieved before are on the server, with fresh new ones
// among them, and a run in keep mode lists them all and fetches the new.
// Each iteration starts from the same cache file, so every run does the
// same work. The messages are tiny: what is measured is the cost per kept
// message of the cache, the listing and the plan, which does not depend
// on their size. Allocations are per run, the in-process server's
// included (its listing allocates nothing per line).
func benchKeep(b *testing.B, kept, fresh int) {
	f := newFixture(b, 0)
	body := []byte("Subject: kept\n\nx\n")
	for i := 0; i < kept+fresh; i++ {
		f.mb.Add(body)
	}
	f.start(b)
	f.acct.Keep = true
	dir, err := os.MkdirTemp(shmBase(), "popfetch-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f.acct.StateDir = filepath.Join(dir, "state")
	// The cache as a run that retrieved the kept messages left it.
	c, err := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if err != nil {
		b.Fatal(err)
	}
	seen := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	msgs := f.mb.Messages()
	for _, m := range msgs[:kept] {
		c.Put(m.UID, uidcache.Entry{Seen: seen, State: uidcache.Retrieved})
	}
	if err := c.Save(); err != nil {
		b.Fatal(err)
	}
	saved, err := os.ReadFile(c.Path())
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(c.Path(), saved, 0o600); err != nil {
			b.Fatal(err)
		}
		f.acct.Deliver.Maildir = fmt.Sprintf("%s/md%d", dir, i)
		b.StartTimer()
		res, err := Run(context.Background(), Options{Account: f.acct, Credentials: staticCreds{password: "secret"}, Log: log})
		b.StopTimer()
		if err != nil || res.Listed != kept+fresh || res.Fetched != fresh {
			b.Fatalf("%+v %v", res, err)
		}
		os.RemoveAll(f.acct.Deliver.Maildir)
		b.StartTimer()
	}
}

// BenchmarkKeep50k is a run with nothing new among 50 000 kept messages.
func BenchmarkKeep50k(b *testing.B) { benchKeep(b, 50_000, 0) }

// BenchmarkKeep500k is the same with ten times as many: time and memory
// should be about ten times those of BenchmarkKeep50k, allocations the
// same.
func BenchmarkKeep500k(b *testing.B) { benchKeep(b, 500_000, 0) }

// BenchmarkKeep50kNew50 is a run that finds 50 new messages after 50 000
// kept ones.
func BenchmarkKeep50kNew50(b *testing.B) { benchKeep(b, 50_000, 50) }

// TestCacheUnreadable: the cache is read while the session opens, but a
// cache that cannot be read stops the run before any credential is sent.
func TestCacheUnreadable(t *testing.T) {
	f := newFixture(t, 2)
	f.start(t) // the port is part of the mailbox's identity
	if err := os.MkdirAll(f.acct.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.acct.StateDir, uidcache.FileName(f.acct.Key()))
	if err := os.WriteFile(path, []byte("not a cache line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.run(t, Options{})
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "malformed line") {
		t.Fatalf("run: %v, want a *StateError naming the malformed line", err)
	}
	for _, line := range f.srv.Received() {
		if cmd, _, _ := strings.Cut(line, " "); cmd != "CAPA" {
			t.Fatalf("the server got %q", line)
		}
	}
	if f.mb.Len() != 2 {
		t.Fatalf("%d messages left", f.mb.Len())
	}
}

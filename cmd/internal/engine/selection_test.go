package engine

import (
	"testing"
	"time"
)

// TestDeleteAfter: in keep mode, messages first seen longer ago than
// delete_after are deleted (without being fetched again); younger ones stay.
func TestDeleteAfter(t *testing.T) {
	f := newFixture(t, 3)
	f.acct.Keep = true
	f.acct.DeleteAfter = 30 * 24 * time.Hour
	day0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if res, err := f.run(t, Options{Now: func() time.Time { return day0 }}); err != nil || res.Fetched != 3 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	f.mb.Add([]byte("Subject: later\n\nlater\n"))
	day20 := day0.Add(20 * 24 * time.Hour)
	if res, err := f.run(t, Options{Now: func() time.Time { return day20 }}); err != nil || res.Fetched != 1 || res.Deleted != 0 {
		t.Fatalf("day 20: %+v %v", res, err)
	}
	day31 := day0.Add(31 * 24 * time.Hour)
	res, err := f.run(t, Options{Now: func() time.Time { return day31 }})
	if err != nil || res.Fetched != 0 || res.Deleted != 3 || f.mb.Len() != 1 {
		t.Fatalf("day 31: %+v %v, %d on the server; want the 3 old ones deleted", res, err, f.mb.Len())
	}
	if n := len(f.delivered(t)); n != 4 {
		t.Fatalf("%d delivered, want 4", n)
	}
}

// TestMaxMessages: a run retrieves at most max_messages; the next run
// takes the next ones, in server order.
func TestMaxMessages(t *testing.T) {
	f := newFixture(t, 5)
	f.acct.Keep = true
	f.acct.MaxMessages = 2
	for i, want := range []int{2, 2, 1, 0} {
		res, err := f.run(t, Options{})
		if err != nil || res.Fetched != want {
			t.Fatalf("run %d: %+v %v, want %d fetched", i+1, res, err, want)
		}
	}
	if n := len(f.delivered(t)); n != 5 {
		t.Fatalf("%d delivered", n)
	}
}

// TestFetchAll: fetch_all retrieves again what was retrieved before (keep
// mode), and in delete mode never what a QUIT left pending deletion.
func TestFetchAll(t *testing.T) {
	f := newFixture(t, 3)
	f.acct.Keep = true
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	f.acct.FetchAll = true
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 3 {
		t.Fatalf("fetch_all: %+v %v", res, err)
	}
	if n := len(f.delivered(t)); n != 6 {
		t.Fatalf("%d delivered, want 6", n)
	}

	g := newFixture(t, 4)
	g.srv.Faults.DropQuit = true
	if _, err := g.run(t, Options{}); err == nil {
		t.Fatal("a QUIT without answer went unnoticed")
	}
	g.acct.FetchAll = true
	g.srv.Faults.DropQuit = false
	res, err := g.run(t, Options{})
	if err != nil || res.Fetched != 0 || res.Deleted != 4 {
		t.Fatalf("fetch_all after a lost QUIT: %+v %v; want nothing fetched again, 4 deleted", res, err)
	}
}

package pop3_test

import (
	"fmt"
	"testing"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// TestListing: the compact form of a listing gives what Wait gives, line
// by line, also when the message numbers have gaps (messages deleted in
// the session), with or without a size hint.
func TestListing(t *testing.T) {
	s, mb := startServer(t, "")
	for i := 0; i < 200; i++ {
		mb.Add([]byte(fmt.Sprintf("Subject: %d\n\n%*s\n", i, i, "")))
	}
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	login(t, c)
	for _, n := range []int{3, 150} {
		if err := c.Dele(n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, hint := range []bool{false, true} {
		uidl, list := c.UIDL(), c.List()
		if hint {
			uidl.Grow(198, 198*11)
			list.Grow(198, 0)
		}
		uids, err := uidl.Listing()
		if err != nil {
			t.Fatal(err)
		}
		sizes, err := list.Listing()
		if err != nil {
			t.Fatal(err)
		}
		all, err := c.UIDL().Wait()
		if err != nil {
			t.Fatal(err)
		}
		msgs := mb.Messages()
		if uids.Len() != 198 || sizes.Len() != 198 || len(all) != 198 {
			t.Fatalf("lengths %d %d %d, want 198", uids.Len(), sizes.Len(), len(all))
		}
		for i := 0; i < 198; i++ {
			num := i + 1
			if num >= 3 {
				num++
			}
			if num >= 150 {
				num++
			}
			m := msgs[num-1]
			want := pop3.MessageInfo{Number: num, UID: m.UID}
			if got := uids.At(i); got != want || all[i] != want || uids.Number(i) != num {
				t.Fatalf("UIDL line %d: %+v (Wait: %+v), want %+v", i, got, all[i], want)
			}
			if got := sizes.At(i); got != (pop3.MessageInfo{Number: num, Size: m.Size()}) {
				t.Fatalf("LIST line %d: %+v, want number %d size %d", i, got, num, m.Size())
			}
		}
	}
}

// TestListingAllocs: reading a long listing costs a few allocations, not
// one per line, when the caller says how long it will be.
func TestListingAllocs(t *testing.T) {
	s, mb := startServer(t, "")
	const n = 5000
	for i := 0; i < n; i++ {
		mb.Add([]byte("Subject: x\n\nx\n"))
	}
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	login(t, c)
	allocs := testing.AllocsPerRun(5, func() {
		uidl, list := c.UIDL().Grow(n, n*10), c.List().Grow(n, 0)
		if l, err := uidl.Listing(); err != nil || l.Len() != n {
			t.Fatal(l, err)
		}
		if l, err := list.Listing(); err != nil || l.Len() != n {
			t.Fatal(l, err)
		}
	})
	if allocs > 50 {
		t.Fatalf("%v allocations for a listing of %d messages", allocs, n)
	}
}

// TestListingBigSizes: sizes of 4 GiB and more, after smaller ones, are
// listed exactly.
func TestListingBigSizes(t *testing.T) {
	s, mb := startServer(t, "", "a\n", "b\n", "c\n")
	sizes := map[string]int64{}
	for i, m := range mb.Messages() {
		sizes[m.UID] = []int64{1<<32 - 1, 5 << 30, 7}[i]
	}
	s.Faults.ListSize = func(m *pop3test.Message) int64 { return sizes[m.UID] }
	begin(t, s, false)
	c := dialPlain(t, s, nil)
	login(t, c)
	l, err := c.List().Listing()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{1<<32 - 1, 5 << 30, 7} {
		if got := l.At(i); got != (pop3.MessageInfo{Number: i + 1, Size: want}) {
			t.Errorf("line %d: %+v, want size %d", i, got, want)
		}
	}
}

package deliver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/simfs"
)

// Crash tests on a simulated disk (internal/simfs): a run is cut at every
// file system call in turn, by a power cut (only what was made durable
// survives, plus what the seed draws of the rest) or by kill -9 (all that
// was written survives), and what is left is checked.

func crashRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xc0ffee)) }

// crashMessages are two batches: the first is committed before the crash
// points that matter, the second is in flight.
var crashMessages = [][]string{
	{"Subject: one\n\nfirst\n", "Subject: two\n\n" + strings.Repeat("long line ", 9000) + "\n"},
	{"Subject: three\n\nthird\n", "Subject: four\n\nFrom the start\n"},
}

// crashPoint cuts a run at operation n of the disk.
type crashPoint struct {
	n     int64
	power bool
	seed  uint64
}

// arm makes the disk crash at the crash point.
func (c crashPoint) arm(d *simfs.FS) {
	d.OnOp(func(op simfs.Op) error {
		if op.N == c.n {
			if c.power {
				d.CrashPower(crashRNG(c.seed))
			} else {
				d.CrashProcess()
			}
		}
		return nil
	})
}

// deliverBatches delivers the batches to t, committing each, and returns
// how many batches were committed before the first error.
func deliverBatches(t Target, batches [][]string) int {
	for i, batch := range batches {
		for _, m := range batch {
			if err := t.Deliver(Envelope{Sender: "s@example.org"}, strings.NewReader(m)); err != nil {
				return i
			}
		}
		if err := t.Commit(); err != nil {
			return i
		}
	}
	return len(batches)
}

// crashPoints returns the points to try for a run of ops operations: each
// one, by kill -9 and by power cuts of a few seeds.
func crashPoints(ops int64, seeds int) []crashPoint {
	var pts []crashPoint
	for n := int64(1); n <= ops+1; n++ {
		pts = append(pts, crashPoint{n: n})
		for s := range seeds {
			pts = append(pts, crashPoint{n: n, power: true, seed: uint64(s)})
		}
	}
	return pts
}

func newCrashDisk(t *testing.T) *simfs.FS {
	t.Helper()
	d := simfs.New(simfs.Options{})
	if err := d.MkdirAll("/home/u", 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMaildirCrashAtEveryOp: whatever call a crash cuts, new/ never shows
// a cut message or a message twice, a committed message is never lost, and
// the next run cleans up and delivers.
func TestMaildirCrashAtEveryOp(t *testing.T) {
	const dir = "/home/u/Maildir"
	open := func(d *simfs.FS) (*Maildir, error) {
		return OpenMaildir(dir, MaildirOptions{FS: d.NewProcess()})
	}
	ref := newCrashDisk(t)
	md, err := open(ref)
	if err != nil {
		t.Fatal(err)
	}
	if n := deliverBatches(md, crashMessages); n != 2 {
		t.Fatalf("reference run: %d batches", n)
	}
	ops := ref.Ops()
	t.Logf("%d calls, each cut by kill -9 and by power cuts of 4 seeds", ops)

	whole := map[string]bool{}
	for _, b := range crashMessages {
		for _, m := range b {
			whole[m] = true
		}
	}
	for _, c := range crashPoints(ops, 4) {
		d := newCrashDisk(t)
		c.arm(d)
		committed := 0
		if md, err := open(d); err == nil {
			committed = deliverBatches(md, crashMessages)
		}
		d.OnOp(nil)
		got := maildirNew(t, d, dir)
		seen := map[string]bool{}
		for _, m := range got {
			if !whole[m] {
				t.Fatalf("%+v: new/ holds a message that was not sent whole: %.60q", c, m)
			}
			if seen[m] {
				t.Fatalf("%+v: new/ holds %.30q twice", c, m)
			}
			seen[m] = true
		}
		for _, b := range crashMessages[:committed] {
			for _, m := range b {
				if !seen[m] {
					t.Fatalf("%+v: committed message %.30q lost", c, m)
				}
			}
		}
		// the next run: tmp/ cleaned of the dead run's files, delivery works
		md, err := open(d)
		if err != nil {
			t.Fatalf("%+v: reopening: %v", c, err)
		}
		if n := deliverBatches(md, crashMessages[1:]); n != 1 {
			t.Fatalf("%+v: delivering after the crash failed", c)
		}
		if tmp, _ := d.ReadDir(path.Join(dir, "tmp")); len(tmp) != 0 {
			t.Fatalf("%+v: tmp/ holds %q after the next run", c, tmp)
		}
	}
}

// maildirNew returns the messages in a Maildir's new/ on the disk, and
// checks that each name's size matches.
func maildirNew(t *testing.T, d *simfs.FS, dir string) []string {
	t.Helper()
	names, err := d.ReadDir(path.Join(dir, "new"))
	if err != nil {
		return nil // the Maildir itself is gone: nothing was committed
	}
	var msgs []string
	for _, n := range names {
		b, err := d.ReadFile(path.Join(dir, "new", n))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(n, fmt.Sprintf(",S=%d", len(b))) {
			t.Fatalf("%s holds %d octets", n, len(b))
		}
		msgs = append(msgs, string(b))
	}
	return msgs
}

// TestMboxCrashAtEveryOp: whatever call a crash cuts, the batches
// committed before it are in the mbox whole, at its start, and the next
// run can lock and append: after kill -9 at once (the crashed run's
// dotlock names a dead process, its fcntl lock died with it). What follows
// the committed part may be a cut-off message of the batch in flight:
// the append journal's recovery removes it.
func TestMboxCrashAtEveryOp(t *testing.T) {
	const mbox = "/home/u/mbox"
	opts := func(d *simfs.FS) MboxOptions {
		return MboxOptions{FS: d.NewProcess(), LockTimeout: 50 * time.Millisecond}
	}
	ref := newCrashDisk(t)
	m, err := OpenMbox(mbox, opts(ref))
	if err != nil {
		t.Fatal(err)
	}
	var after [3][]byte // the mbox after 0, 1 and 2 batches
	for i := range crashMessages {
		if n := deliverBatches(m, crashMessages[i:i+1]); n != 1 {
			t.Fatalf("reference run: batch %d failed", i)
		}
		b, _ := ref.ReadFile(mbox)
		after[i+1] = normFrom(b)
	}
	full := after[2]
	ops := ref.Ops()
	t.Logf("%d calls, each cut by kill -9 and by power cuts of 4 seeds", ops)
	for _, c := range crashPoints(ops, 4) {
		d := newCrashDisk(t)
		c.arm(d)
		committed := 0
		if m, err := OpenMbox(mbox, opts(d)); err == nil {
			committed = deliverBatches(m, crashMessages)
		}
		d.OnOp(nil)
		got, _ := d.ReadFile(mbox)
		got = normFrom(got)
		want := after[committed]
		if !bytes.HasPrefix(got, want) {
			t.Fatalf("%+v: %d batches committed, the mbox does not begin with them:\n%.200q", c, committed, got)
		}
		if !bytes.HasPrefix(full, got) && !bytes.HasPrefix(got, full) {
			t.Fatalf("%+v: the mbox holds what was never appended:\n%.200q", c, got)
		}
		o := opts(d)
		if c.power {
			// After a power cut the dotlock may have lost its content (it
			// is never fsynced: that would cost every batch an fsync), so
			// it cannot be told dead by its PID: it waits to be stale, as
			// liblockfile's and procmail's do. Here it is stale at once.
			o.StaleLockAge = time.Nanosecond
		}
		m, err := OpenMbox(mbox, o)
		if err != nil {
			t.Fatalf("%+v: reopening: %v", c, err)
		}
		if err := m.Deliver(Envelope{}, strings.NewReader("Subject: after\n\n")); err != nil {
			t.Fatalf("%+v: delivering after the crash: %v", c, err)
		}
		if err := m.Commit(); err != nil {
			t.Fatalf("%+v: committing after the crash: %v", c, err)
		}
		if names, _ := d.ReadDir("/home/u"); strings.Contains(strings.Join(names, " "), ".lock") {
			t.Fatalf("%+v: a lock left after the next run: %q", c, names)
		}
	}
}

// crashOrdinal returns the place in the mbox, from 1, of the message whose
// Envelope.ID is "BATCH-INDEX" in crashMessages.
func crashOrdinal(id string) int {
	var i, j int
	fmt.Sscanf(id, "%d-%d", &i, &j)
	n := j + 1
	for _, b := range crashMessages[:i] {
		n += len(b)
	}
	return n
}

// normFrom gives every From_ line the same date: "From SENDER DATE". (A
// scan, not a regular expression: the crash tests call it thousands of
// times, and under the race detector a regexp made them take minutes.)
func normFrom(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte("\n"))
		if sender, _, ok := bytes.Cut(bytes.TrimPrefix(line, []byte("From ")), []byte(" ")); ok && bytes.HasPrefix(line, []byte("From ")) && len(sender) > 0 {
			line = append(append([]byte("From "), sender...), " DATE"...)
		}
		out = append(out, line...)
		if found {
			out = append(out, '\n')
		}
		b = rest
	}
	return out
}

// TestMboxJournalCrashAtEveryOp: the journaled append (MboxOptions.Journal)
// cut at every call, by kill -9 and by power cuts, then recovered as the
// next run does: the mbox holds the messages it held, then whole messages
// of the batches in order and nothing else (never a cut-off one), every
// committed message among them, and RecoverMbox names exactly the
// messages of the interrupted append that are whole.
func TestMboxJournalCrashAtEveryOp(t *testing.T) {
	const mbox = "/home/u/mbox"
	opts := func(d *simfs.FS) MboxOptions {
		return MboxOptions{FS: d.NewProcess(), LockTimeout: 50 * time.Millisecond,
			StaleLockAge: time.Nanosecond, Journal: "/home/u/state/u.mbox"}
	}
	deliver := func(m *Mbox) int {
		for i, batch := range crashMessages {
			for j, msg := range batch {
				if err := m.Deliver(Envelope{Sender: "s@example.org", ID: fmt.Sprint(i, "-", j)}, strings.NewReader(msg)); err != nil {
					return i
				}
			}
			if err := m.Commit(); err != nil {
				return i
			}
		}
		return len(crashMessages)
	}
	prep := func(d *simfs.FS) {
		if err := d.MkdirAll("/home/u/state", 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ref := newCrashDisk(t)
	prep(ref)
	m, err := OpenMbox(mbox, opts(ref))
	if err != nil {
		t.Fatal(err)
	}
	if n := deliver(m); n != len(crashMessages) {
		t.Fatal("reference run failed")
	}
	full, _ := ref.ReadFile(mbox)
	full = normFrom(full)
	// the mbox after each message: its prefixes that end a message
	var ends []int
	for i := range full {
		if i > 0 && bytes.HasPrefix(full[i:], []byte("From s@example.org DATE")) && full[i-1] == '\n' {
			ends = append(ends, i)
		}
	}
	ends = append(ends, len(full))
	ops := ref.Ops()
	t.Logf("%d calls, each cut by kill -9 and by power cuts of 24 seeds", ops)
	for _, c := range crashPoints(ops, 24) {
		d := newCrashDisk(t)
		prep(d)
		c.arm(d)
		committed := 0
		if m, err := OpenMbox(mbox, opts(d)); err == nil {
			committed = deliver(m)
		}
		d.OnOp(nil)
		rec, err := RecoverMbox(mbox, opts(d))
		if err != nil {
			t.Fatalf("%+v: recovering: %v", c, err)
		}
		got, _ := d.ReadFile(mbox)
		got = normFrom(got)
		whole := 0 // messages in the mbox
		for i, e := range ends {
			if len(got) == e {
				whole = i + 1
			}
		}
		if len(got) > 0 && whole == 0 || !bytes.HasPrefix(full, got) {
			t.Fatalf("%+v: after the recovery the mbox is not whole messages of the run:\n%.300q", c, got)
		}
		mustHave := 0
		for _, b := range crashMessages[:committed] {
			mustHave += len(b)
		}
		if whole < mustHave {
			t.Fatalf("%+v: %d batches committed (%d messages), the mbox holds %d", c, committed, mustHave, whole)
		}
		// what the recovery names is whole in the mbox
		for _, id := range rec.Whole {
			n := crashOrdinal(id)
			if n > whole {
				t.Fatalf("%+v: the recovery names %s whole, the mbox holds %d messages", c, id, whole)
			}
		}
		if rec.Foreign {
			t.Fatalf("%+v: the recovery saw another program's writing: %+v", c, rec)
		}
		// What the recovery names whole is recorded, and deleted from
		// the server, next: it must survive a power cut now.
		d.CrashPower(crashRNG(c.seed + 99))
		after, _ := d.ReadFile(mbox)
		after = normFrom(after)
		for _, id := range rec.Whole {
			n := crashOrdinal(id)
			if n > len(ends) || len(after) < ends[n-1] {
				t.Fatalf("%+v: %s, named whole by the recovery, is gone after a power cut", c, id)
			}
		}
	}
}

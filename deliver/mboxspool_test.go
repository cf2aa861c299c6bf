package deliver

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/internal/vfs"
)

// journaledMbox delivers msgs to a journaled mbox that holds before, and
// returns the options, the mbox's contents after the batch, and the
// offsets where each appended message ends.
func journaledMbox(t *testing.T, before string, msgs []string) (path string, opts MboxOptions, after []byte) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "mbox")
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	opts = MboxOptions{Journal: filepath.Join(dir, "state", "alice.mbox")}
	if err := os.MkdirAll(filepath.Dir(opts.Journal), 0o700); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMbox(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range msgs {
		if err := m.Deliver(Envelope{Sender: "a@b", ID: fmt.Sprint("uid", i)}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		// spooled, not appended: nothing of the batch is in the mbox yet
		if b, _ := os.ReadFile(path); string(b) != before {
			t.Fatal("a spooled message reached the mbox before Commit")
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	after, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, opts, after
}

// TestMboxJournaledBatch: a journaled batch reaches the mbox whole at
// Commit, readable by Python's mailbox module, and its journal says it is
// done: a recovery then records every message and touches nothing.
func TestMboxJournaledBatch(t *testing.T) {
	msgs := []string{"Subject: one\n\nFrom the start\n", "Subject: two\n\n>From quoted\n", "Subject: three\n\nno newline"}
	path, opts, after := journaledMbox(t, "From x Mon Jan  1 00:00:00 2024\nold\n", msgs)
	got := readMboxPython(t, path)
	if len(got) != 4 {
		t.Fatalf("%d messages in the mbox, want 4:\n%s", len(got), after)
	}
	rec, err := RecoverMbox(path, opts)
	if err != nil || !reflect.DeepEqual(rec.Whole, []string{"uid0", "uid1", "uid2"}) || rec.Truncated != 0 || rec.Foreign {
		t.Fatalf("%+v %v", rec, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, after) {
		t.Fatal("the recovery of a done append changed the mbox")
	}
	if err := ForgetMboxJournal(opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.Journal + journalSuffix); !os.IsNotExist(err) {
		t.Fatalf("journal still there: %v", err)
	}
}

// TestMboxRecoverCut: a crash at every octet of a journaled append (the
// journal durable, the append cut there) is recovered to the messages
// that made it whole, with nothing of the cut one left; when another
// program has written after the cut, the mbox is left alone.
func TestMboxRecoverCut(t *testing.T) {
	before := "From x Mon Jan  1 00:00:00 2024\nold message without its empty line\n"
	msgs := []string{"Subject: one\n\nbody one\n", "Subject: two\n\n\nFrom a line\n\n", "Subject: three\n\nthree\n"}
	_, opts, after := journaledMbox(t, before, msgs)
	journal, err := os.ReadFile(opts.Journal + journalSuffix)
	if err != nil || !bytes.HasSuffix(journal, []byte(doneLine)) {
		t.Fatalf("journal %q %v", journal, err)
	}
	j, err := parseJournal(journal[:len(journal)-len(doneLine)])
	if err != nil {
		t.Fatal(err)
	}
	ends := []int{} // where each message ends in the mbox
	for _, m := range j.Msgs {
		ends = append(ends, len(before)+len(j.Sep)+int(m.End))
	}
	if ends[len(ends)-1] != len(after) {
		t.Fatalf("the journal says %d, the mbox holds %d", ends[len(ends)-1], len(after))
	}
	for cut := len(before); cut <= len(after); cut++ {
		for _, foreign := range []bool{false, true} {
			dir := t.TempDir()
			path := filepath.Join(dir, "mbox")
			content := append([]byte(nil), after[:cut]...)
			if foreign {
				content = append(content, "\nFrom other Mon Jan  1 00:00:00 2024\nprocmail was here\n\n"...)
			}
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			// the journal as it was before the append: not done, of this file
			jj := *j
			jj.Mbox = path
			st, err := vfs.OS.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			jj.Dev, jj.Ino = st.ID.Dev, st.ID.Ino
			o := MboxOptions{Journal: filepath.Join(dir, "alice.mbox")}
			os.WriteFile(o.Journal+journalSuffix, jj.marshal(), 0o600)
			spool, _ := os.ReadFile(opts.Journal + spoolSuffix)
			os.WriteFile(o.Journal+spoolSuffix, spool, 0o600)

			rec, err := RecoverMbox(path, o)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			// whole: what the file holds byte for byte as appended (a
			// foreign write may happen to complete a message of ours)
			var whole []string
			keep := len(before)
			for i, e := range ends {
				if e <= len(content) && bytes.Equal(content[:e], after[:e]) {
					whole = append(whole, fmt.Sprint("uid", i))
					keep = e
				}
			}
			got, _ := os.ReadFile(path)
			if foreign && len(whole) < len(ends) {
				if !rec.Foreign || !bytes.Equal(got, content) || !reflect.DeepEqual(rec.Whole, whole) {
					t.Fatalf("cut %d (ends %v), another program after: %+v, want whole %v, mbox changed %v", cut, ends, rec, whole, !bytes.Equal(got, content))
				}
				continue
			}
			if foreign {
				keep = len(content) // the whole append, then another's
			}
			if rec.Foreign || !reflect.DeepEqual(rec.Whole, whole) || string(got) != string(content[:keep]) {
				t.Fatalf("cut %d: %+v, mbox %q, want %q", cut, rec, got, content[:keep])
			}
			// a second recovery changes nothing
			if rec2, err := RecoverMbox(path, o); err != nil || rec2.Truncated != 0 {
				t.Fatalf("cut %d: second recovery %+v %v", cut, rec2, err)
			}
		}
	}
}

// failTruncateFS is the real file system, but Truncate fails with EIO
// on the files whose names end in suffix.
type failTruncateFS struct {
	vfs.FS
	suffix string
}

type failTruncateFile struct{ vfs.File }

func (f failTruncateFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, f.suffix) {
		return file, err
	}
	return failTruncateFile{file}, nil
}

func (failTruncateFile) Truncate(int64) error { return syscall.EIO }

// TestMboxSpoolNotCutBack: a message fails half spooled and the spool
// cannot be cut back, so the batch is dropped; Commit must then fail,
// not report the batch's earlier message durable (it would be recorded,
// deleted from the server, and lost: the simulator, seed 1164358).
func TestMboxSpoolNotCutBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	opts := MboxOptions{Journal: filepath.Join(dir, "alice.mbox"), FS: failTruncateFS{FS: vfs.OS, suffix: spoolSuffix}}
	m := openMbox(t, path, opts)
	defer m.Close()
	if err := m.Deliver(Envelope{ID: "uid1"}, strings.NewReader("Subject: one\n\none\n")); err != nil {
		t.Fatal(err)
	}
	cut := &failingReader{r: strings.NewReader("Subject: two\n\ntw"), err: errSource}
	if err := m.Deliver(Envelope{ID: "uid2"}, cut); err == nil {
		t.Fatal("a message cut short was delivered")
	}
	if err := m.Commit(); err == nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("Commit of a dropped batch: nil; the mbox holds %q", b)
	}
	if err := m.Deliver(Envelope{ID: "uid3"}, strings.NewReader("Subject: three\n\nthree\n")); err == nil {
		t.Error("a delivery after the batch was dropped succeeded; the run must end")
	}
}

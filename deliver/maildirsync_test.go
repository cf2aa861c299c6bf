package deliver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeFSSync counts syncs and fails when told to.
type fakeFSSync struct {
	syncs int
	fail  error
	worth bool
}

func (f *fakeFSSync) Worth(int64) bool { return f.worth }
func (f *fakeFSSync) Sync() error      { f.syncs++; return f.fail }
func (f *fakeFSSync) Close() error     { return nil }

func deliverN(t *testing.T, m *Maildir, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := m.Deliver(Envelope{}, strings.NewReader(fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
}

func countDir(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestMaildirSyncFS: a batch of syncFSMin messages or more is made durable
// with one sync of the file system, when that is worth it; a smaller one,
// or one while much else waits to be written, with a sync of each file.
// Every message lands in new/ with its bytes either way.
func TestMaildirSyncFS(t *testing.T) {
	for _, tc := range []struct {
		n     int
		worth bool
		syncs int
	}{
		{syncFSMin, true, 1},
		{syncFSMin - 1, true, 0},
		{syncFSMin, false, 0},
	} {
		dir := filepath.Join(t.TempDir(), "Maildir")
		m, err := OpenMaildir(dir, MaildirOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fake := &fakeFSSync{worth: tc.worth}
		m.fssync = fake
		deliverN(t, m, tc.n)
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
		if fake.syncs != tc.syncs || countDir(t, filepath.Join(dir, "new")) != tc.n || countDir(t, filepath.Join(dir, "tmp")) != 0 {
			t.Errorf("%+v: %d syncfs, %d in new/, %d in tmp/", tc, fake.syncs,
				countDir(t, filepath.Join(dir, "new")), countDir(t, filepath.Join(dir, "tmp")))
		}
		m.Close()
	}
}

// TestMaildirSyncFSFails: a failed sync of the file system fails the
// commit: nothing of the batch shows in new/, and tmp/ is cleaned.
func TestMaildirSyncFSFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	m, err := OpenMaildir(dir, MaildirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.fssync = &fakeFSSync{worth: true, fail: errors.New("EIO")}
	deliverN(t, m, syncFSMin)
	if err := m.Commit(); err == nil {
		t.Fatal("commit succeeded")
	}
	if n, k := countDir(t, filepath.Join(dir, "new")), countDir(t, filepath.Join(dir, "tmp")); n != 0 || k != 0 {
		t.Fatalf("%d in new/, %d in tmp/ after a failed sync", n, k)
	}
}

package deliver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The tests of this file set up files of another user with chown: root
// only (CI runs as root).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
}

const otherUID = 4242

// refusedMbox checks that OpenMbox refuses path with an *UnsafeMboxError
// saying why, and that the file at check (if any) is unchanged.
func refusedMbox(t *testing.T, path, why, check string) {
	t.Helper()
	var before []byte
	if check != "" {
		before, _ = os.ReadFile(check)
	}
	_, err := OpenMbox(path, MboxOptions{})
	var unsafe *UnsafeMboxError
	var de *Error
	if !errors.As(err, &unsafe) || !errors.As(err, &de) || !strings.Contains(err.Error(), why) {
		t.Fatalf("OpenMbox: %v, want a refusal saying %q", err, why)
	}
	if check == "" {
		return
	}
	if after, _ := os.ReadFile(check); string(after) != string(before) {
		t.Fatalf("%s changed: %q", check, after)
	}
}

// An mbox of another user is not written to (issue 16: in a directory
// others can write, another user could have put it there).
func TestMboxOfAnotherUser(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(path, []byte("From x Mon Jan  1 00:00:00 2024\n\nold\n\n"), 0o600)
	if err := os.Chown(path, otherUID, -1); err != nil {
		t.Fatal(err)
	}
	refusedMbox(t, path, "owned by uid 4242", path)
}

// A file of two names is refused: the other name may be anywhere.
func TestMboxHardLinked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	os.WriteFile(path, nil, 0o600)
	if err := os.Link(path, filepath.Join(dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	refusedMbox(t, path, "2 hard links", path)
}

// A symbolic link made by another user is not followed, even to a file of
// ours (~/.ssh/authorized_keys).
func TestMboxSymlinkOfAnotherUser(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "authorized_keys")
	os.WriteFile(keys, []byte("ssh-ed25519 AAAA me\n"), 0o600)
	link := filepath.Join(dir, "alice.mbox")
	if err := os.Symlink(keys, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, otherUID, -1); err != nil {
		t.Fatal(err)
	}
	refusedMbox(t, link, "symbolic link owned by uid 4242", keys)
}

// The user's own link to the user's own mbox is followed.
func TestMboxOwnSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "inbox")
	os.WriteFile(target, nil, 0o600)
	link := filepath.Join(dir, "mbox")
	if err := os.Symlink("inbox", link); err != nil {
		t.Fatal(err)
	}
	m := openMbox(t, link, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: x\n\nx\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if msgs := readMboxPython(t, target); len(msgs) != 1 {
		t.Fatalf("%d messages in the link's target, want 1", len(msgs))
	}
}

func TestMboxNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedMbox(t, fifo, "not a regular file", "") // opened read-write, a FIFO does not block
	refusedMbox(t, dir, "not a regular file", "")
}

// A mailbox given to another user between batches is not written to.
func TestMboxChangesOwnerBetweenBatches(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{})
	if err := os.Chown(path, otherUID, -1); err != nil {
		t.Fatal(err)
	}
	err := m.Deliver(Envelope{}, strings.NewReader("Subject: x\n\nx\n"))
	var unsafe *UnsafeMboxError
	if !errors.As(err, &unsafe) {
		t.Fatalf("Deliver: %v", err)
	}
	if size := fileSize(t, path); size != 0 {
		t.Fatalf("%d bytes written", size)
	}
	assertNoLockLeft(t, path)
}

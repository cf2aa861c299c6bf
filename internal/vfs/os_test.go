package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain doubles as a child process that reports whether a file's fcntl
// lock is held by another process (F_GETLK), as procmail would find it.
func TestMain(m *testing.M) {
	if path := os.Getenv("VFS_TEST_GETLK"); path != "" {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		if lk.Type == unix.F_UNLCK {
			fmt.Println("free")
		} else {
			fmt.Println("locked")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func lockedElsewhere(t *testing.T, path string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VFS_TEST_GETLK="+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	return strings.TrimSpace(string(out)) == "locked"
}

func open(t *testing.T, name string) File {
	t.Helper()
	f, err := OS.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func tryLock(t *testing.T, f File, k LockKind) bool {
	t.Helper()
	ok, err := f.TryLock(k)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The fcntl lock behaves as an open file description lock on every
// system: a second open in this process is refused it, and closing that
// second open does not release it (which a classic POSIX lock alone
// would do).
func TestFcntlLockWithinProcess(t *testing.T) {
	t.Logf("portable paths: %v", portable)
	path := filepath.Join(t.TempDir(), "mbox")
	a, b := open(t, path), open(t, path)
	if !tryLock(t, a, LockFcntl) {
		t.Fatal("lock refused")
	}
	if !tryLock(t, a, LockFcntl) {
		t.Fatal("the holder was refused its own lock")
	}
	if tryLock(t, b, LockFcntl) {
		t.Fatal("a second open of this process got the lock")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !lockedElsewhere(t, path) {
		t.Fatal("closing another open released the lock")
	}
	// a third open, read and closed while the lock is held
	c := open(t, path)
	c.Close()
	if !lockedElsewhere(t, path) {
		t.Fatal("closing a third open released the lock")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if lockedElsewhere(t, path) {
		t.Fatal("the lock outlived its file")
	}
	d := open(t, path)
	defer d.Close()
	if !tryLock(t, d, LockFcntl) {
		t.Fatal("lock refused after release")
	}
	if !posixLocksHeld() && portable {
		t.Fatal("the portable path keeps no table")
	}
}

func TestFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, b := open(t, path), open(t, path)
	defer b.Close()
	if !tryLock(t, a, LockFlock) || tryLock(t, b, LockFlock) {
		t.Fatal("flock: want the first open to win and the second to be refused")
	}
	if !tryLock(t, b, LockFcntl) {
		t.Fatal("an fcntl lock conflicts with a flock")
	}
	a.Close()
	if !tryLock(t, b, LockFlock) {
		t.Fatal("the flock outlived its file")
	}
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.WriteFile(src, []byte("new"), 0o600)
	os.WriteFile(dst, []byte("old"), 0o600)
	err := OS.RenameNoReplace(src, dst)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v", err)
	}
	var le *os.LinkError
	if !errors.As(err, &le) || le.Old != src || le.New != dst {
		t.Fatalf("error shape: %#v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatalf("dst overwritten: %q", b)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("src gone: %v", err)
	}
	os.Remove(dst)
	if err := OS.RenameNoReplace(src, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("src still there: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Fatalf("dst: %q", b)
	}
}

func TestStatAndNofollow(t *testing.T) {
	dir := t.TempDir()
	a, b, l := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "l")
	os.WriteFile(a, []byte("12345"), 0o640)
	if err := OS.Link(a, b); err != nil {
		t.Fatal(err)
	}
	os.Symlink("a", l)
	atime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := OS.Chtimes(a, atime, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ia, err := OS.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := OS.Stat(b)
	il, _ := OS.Lstat(l)
	is, _ := OS.Stat(l)
	if ia.Size != 5 || ia.Links != 2 || ia.Mode != 0o640 || ia.UID != os.Geteuid() || ia.Name != "a" {
		t.Fatalf("stat: %+v", ia)
	}
	if !ia.AccessTime.Equal(atime) || ia.ModTime.Equal(atime) || ia.ModTime.IsZero() {
		t.Fatalf("times: %v %v", ia.AccessTime, ia.ModTime)
	}
	if ia.ID != ib.ID || ia.ID != is.ID || il.ID == ia.ID || !il.IsSymlink() || !is.IsRegular() {
		t.Fatalf("ids: %+v %+v %+v %+v", ia, ib, il, is)
	}
	if _, err := OS.OpenFile(l, os.O_RDONLY|O_NOFOLLOW, 0); !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("O_NOFOLLOW on a link: %v", err)
	}
	f, err := OS.OpenFile(a, os.O_RDONLY|O_NOFOLLOW, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil || fi.ID != ia.ID {
		t.Fatalf("fstat: %+v %v", fi, err)
	}
	if !OS.ProcessAlive(OS.Getpid()) || OS.ProcessAlive(0) {
		t.Fatal("ProcessAlive")
	}
}

func TestMkdirAll(t *testing.T) {
	dir := t.TempDir()
	created, err := MkdirAll(OS, filepath.Join(dir, "a", "b", "c"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b"), filepath.Join(dir, "a", "b", "c")}
	if strings.Join(created, ",") != strings.Join(want, ",") {
		t.Fatalf("created %q", created)
	}
	if created, err = MkdirAll(OS, filepath.Join(dir, "a", "b"), 0o700); err != nil || len(created) != 0 {
		t.Fatalf("again: %q %v", created, err)
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
	if _, err := MkdirAll(OS, filepath.Join(dir, "f", "g"), 0o700); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("under a file: %v", err)
	}
	names, err := OS.ReadDir(dir)
	if err != nil || strings.Join(names, ",") != "a,f" {
		t.Fatalf("ReadDir: %q %v", names, err)
	}
}

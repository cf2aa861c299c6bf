package e2e

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of the given size on a new temporary
// directory, unmounted at Cleanup. It skips the test only where mounting
// is not permitted (not root); CI runs as root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		if errors.Is(err, syscall.EPERM) && os.Geteuid() != 0 {
			t.Skipf("mounting a tmpfs for a full disk needs root: %v", err)
		}
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// resizeTmpfs changes the size of a tmpfs mounted by mountTmpfs, keeping
// its files.
func resizeTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	remountTmpfs(t, dir, false, size)
}

// remountTmpfs remounts a tmpfs mounted by mountTmpfs, read-only or not,
// with size, keeping its files.
func remountTmpfs(t *testing.T, dir string, readOnly bool, size string) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("remounting %s with size %s (read-only %t): %v", dir, size, readOnly, err)
	}
}

//go:build linux

package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenFSSync: the real file system has an FSSync on a kernel whose
// syncfs(2) reports write errors (5.8 and later), here on tmpfs; it syncs;
// an FS other than OS has none.
func TestOpenFSSync(t *testing.T) {
	dir := t.TempDir()
	tmpfs := false
	if d, err := os.MkdirTemp("/dev/shm", "vfs-fssync-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		dir, tmpfs = d, true
	}
	fss := OpenFSSync(OS, dir)
	if tmpfs && (fss != nil) != syncfsReports() {
		t.Fatalf("OpenFSSync on tmpfs: %v, want one: %v (kernel's syncfs reports errors)", fss, syncfsReports())
	}
	if fss != nil {
		defer fss.Close()
		if err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := fss.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if OpenFSSync(struct{ FS }{OS}, dir) != nil {
		t.Fatal("an FS other than OS has an FSSync")
	}
}

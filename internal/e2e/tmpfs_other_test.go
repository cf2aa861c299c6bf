//go:build !linux

package e2e

import "testing"

// Without Linux's tmpfs there is no file system of a given size to fill:
// the tests that need one skip here (CI runs on Linux).
var noTmpfs = "a file system of a given size needs Linux's tmpfs"

func mountTmpfs(t *testing.T, size string) string {
	if noTmpfs != "" {
		t.Skipf("%s (%s)", noTmpfs, size)
	}
	return t.TempDir()
}

func resizeTmpfs(t *testing.T, dir, size string) { remountTmpfs(t, dir, false, size) }

func remountTmpfs(t *testing.T, _ string, _ bool, _ string) {
	if noTmpfs != "" {
		t.Fatal(noTmpfs)
	}
}

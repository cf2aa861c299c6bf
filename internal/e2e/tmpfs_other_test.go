//go:build !linux

package e2e

import "testing"

// mountTmpfs returns a new temporary directory: without Linux's tmpfs the
// size is not enforced, which only the disk-full tests (Linux only) need.
func mountTmpfs(t *testing.T, _ string) string { return t.TempDir() }

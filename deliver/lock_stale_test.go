package deliver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestDotlockOfDeadHolder: a fresh dotlock left by a popfetch that was
// killed (its PID gone, on this host) is taken at once; one of a live
// process, or of another host, is respected until it is stale.
func TestDotlockOfDeadHolder(t *testing.T) {
	dead := deadPID(t)
	for _, tc := range []struct {
		name    string
		content string
		taken   bool
	}{
		{"dead holder", fmt.Sprintf("%d 0123456789abcdef %s\n", dead, lockHost()), true},
		{"live holder", fmt.Sprintf("%d 0123456789abcdef %s\n", os.Getpid(), lockHost()), false},
		{"other host", fmt.Sprintf("%d 0123456789abcdef elsewhere.example\n", dead), false},
		{"another program's lock", fmt.Sprintf("%d\n", dead), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mbox.lock")
			if err := os.WriteFile(path, []byte(tc.content), 0o444); err != nil {
				t.Fatal(err)
			}
			dl, err := tryDotlock(vfs.OS, path, time.Hour, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got := dl != nil; got != tc.taken {
				t.Fatalf("taken %t, want %t", got, tc.taken)
			}
			if dl != nil {
				if err := dl.release(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

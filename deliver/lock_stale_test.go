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

// livePID returns the PID of another process, alive until the test ends.
func livePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestDotlockOfDeadHolder: a fresh dotlock left by a popfetch that was
// killed (its PID gone, on this host), or by this process with a token
// it does not hold (a release that failed), is taken at once; one of a
// live process, or of another host, is respected until it is stale.
func TestDotlockOfDeadHolder(t *testing.T) {
	dead, live := deadPID(t), livePID(t)
	for _, tc := range []struct {
		name    string
		content string
		taken   bool
	}{
		{"dead holder", fmt.Sprintf("%d 0123456789abcdef %s\n", dead, lockHost()), true},
		{"live holder", fmt.Sprintf("%d 0123456789abcdef %s\n", live, lockHost()), false},
		{"this process, not held", fmt.Sprintf("%d 0123456789abcdef %s\n", os.Getpid(), lockHost()), true},
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

// TestOpenMboxRemovesStaleLinkFiles: the unique files a killed popfetch
// left beside the mbox while it took the dotlock go when the mbox is next
// opened; those of a live process, of another host, and other programs'
// files stay.
func TestOpenMboxRemovesStaleLinkFiles(t *testing.T) {
	dir := t.TempDir()
	dead, live := deadPID(t), livePID(t)
	files := map[string]struct {
		content string
		stays   bool
	}{
		".lk0123456789abcdef": {fmt.Sprintf("%d 0123456789abcdef %s\n", dead, lockHost()), false},
		".lk1111111111111111": {fmt.Sprintf("%d 1111111111111111 %s\n", live, lockHost()), true},
		".lk3333333333333333": {fmt.Sprintf("%d 3333333333333333 %s\n", os.Getpid(), lockHost()), false},
		".lk2222222222222222": {fmt.Sprintf("%d 2222222222222222 elsewhere.example\n", dead), true},
		".lkfoo":              {fmt.Sprintf("%d foo %s\n", dead, lockHost()), true},
		"notes.txt":           {fmt.Sprintf("%d 0123456789abcdef %s\n", dead, lockHost()), true},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	m, err := OpenMbox(filepath.Join(dir, "mbox"), MboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	for name, f := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if f.stays != (err == nil) {
			t.Errorf("%s: stays %v, stat %v", name, f.stays, err)
		}
	}
}

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/uidcache"
)

// A state directory others can write, or of another user, is refused
// before anything is done (issue 16: whoever can write the cache can mark
// a message delivered, and the next fetch deletes it unread).
func TestStateDirRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"writable by others", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "chmod 700 "},
		{"writable by the group", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		}, "chmod 700 "},
		{"of another user", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the directory to another user")
			}
			if err := os.Chown(dir, 4242, -1); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 4242"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2)
			if err := os.MkdirAll(f.acct.StateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, f.acct.StateDir)
			_, err := f.run(t, Options{})
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), f.acct.StateDir) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a *ConfigError naming %s and saying %q", err, f.acct.StateDir, tc.want)
			}
			if f.srv.Sessions() != 0 {
				t.Fatal("connected with an unsafe state directory")
			}
			if err := CheckStateDir(f.acct.StateDir); !errors.As(err, &ce) {
				t.Fatalf("CheckStateDir: %v", err)
			}
		})
	}
	if err := CheckStateDir(filepath.Join(t.TempDir(), "not yet")); err != nil {
		t.Fatalf("CheckStateDir of a directory a fetch will create: %v", err)
	}
}

// The lock file is never opened through a symbolic link: one planted in
// the state directory could make popfetch create or lock a file elsewhere.
func TestLockFileSymlink(t *testing.T) {
	f := newFixture(t, 1)
	f.start(t)
	if err := os.MkdirAll(f.acct.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(f.dir, "elsewhere")
	lock := filepath.Join(f.acct.StateDir, uidcache.EscapeKey(f.acct.Key())+".lock")
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	_, err := f.run(t, Options{})
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("got %v, want a *StateError about the link", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
	if f.srv.Sessions() != 0 {
		t.Fatal("connected without the lock")
	}
}

// Nor is the cache read through one.
func TestCacheSymlink(t *testing.T) {
	f := newFixture(t, 1)
	f.start(t)
	if err := os.MkdirAll(f.acct.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(f.dir, "planted")
	os.WriteFile(planted, []byte("1\t2024-01-01T00:00:00Z\tD\n"), 0o644)
	cache := filepath.Join(f.acct.StateDir, uidcache.FileName(f.acct.Key()))
	if err := os.Symlink(planted, cache); err != nil {
		t.Fatal(err)
	}
	_, err := f.run(t, Options{})
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("got %v, want a *StateError about the link", err)
	}
	if n := f.mb.Len(); n != 1 {
		t.Fatalf("%d messages on the server, want 1", n)
	}
}

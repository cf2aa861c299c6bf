package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/popfetch/popfetch/uidcache"
)

// lockAccount takes the lock of a mailbox in the state directory: an
// flock(2) on KEY.lock, which the kernel releases whatever way the process
// ends, so no stale lock survives a kill -9. The state directory is created
// 0700, the lock file 0600. An existing lock file is not written to.
func lockAccount(stateDir, key string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, &StateError{fmt.Errorf("creating the state directory: %w", err)}
	}
	path := filepath.Join(stateDir, uidcache.EscapeKey(key)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &StateError{fmt.Errorf("opening lock: %w", err)}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s)", ErrLocked, path)
		}
		return nil, &StateError{fmt.Errorf("locking %s: %w", path, err)}
	}
	return f, nil
}

package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// lockAccount takes the lock of a mailbox in the state directory: an
// flock(2) on KEY.lock, which the kernel releases whatever way the process
// ends, so no stale lock survives a kill -9. The state directory is created
// 0700 (durably, in its parent), the lock file 0600. An existing lock file
// is not written to.
// fsys nil is the real file system.
func lockAccount(fsys vfs.FS, stateDir, key string) (vfs.File, error) {
	fsys = vfs.OrOS(fsys)
	if _, err := vfs.MkdirAll(fsys, stateDir, 0o700); err != nil {
		return nil, &StateError{fmt.Errorf("creating the state directory: %w", err)}
	}
	path := filepath.Join(stateDir, uidcache.EscapeKey(key)+".lock")
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &StateError{fmt.Errorf("opening lock: %w", err)}
	}
	ok, err := f.TryLock(vfs.LockFlock)
	if err != nil || !ok {
		f.Close()
		if err == nil {
			return nil, fmt.Errorf("%w (lock %s)", ErrLocked, path)
		}
		return nil, &StateError{fmt.Errorf("locking %s: %w", path, err)}
	}
	return f, nil
}

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// lockAccount takes the lock of a mailbox in the state directory: an
// flock(2) on KEY.lock, which the kernel releases whatever way the process
// ends, so no stale lock survives a kill -9. The state directory is created
// 0700 (durably, in its parent) and must be the user's own and writable by
// no one else (CheckStateDir); the lock file is created 0600 and never
// opened through a symbolic link. An existing lock file is not written to.
// fsys nil is the real file system.
func lockAccount(fsys vfs.FS, stateDir, key string) (vfs.File, error) {
	fsys = vfs.OrOS(fsys)
	if _, err := vfs.MkdirAll(fsys, stateDir, 0o700); err != nil {
		return nil, &StateError{fmt.Errorf("creating the state directory: %w", err)}
	}
	if err := checkStateDir(fsys, stateDir); err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, uidcache.EscapeKey(key)+".lock")
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|vfs.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, &StateError{fmt.Errorf("the lock %s is a symbolic link: refusing to use it (remove it; popfetch makes its own)", path)}
	}
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

// CheckStateDir checks that the state directory dir, if it exists, is
// popfetch's user's own and writable by no one else: the UID cache in it
// decides which messages are deleted from the server unread, so whoever
// can write it can make mail vanish (issue 16). A refusal is a
// *ConfigError naming the directory and the fix.
func CheckStateDir(dir string) error {
	err := checkStateDir(vfs.OS, dir)
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, os.ErrNotExist) {
		return nil // created 0700 by the first fetch
	}
	return err
}

func checkStateDir(fsys vfs.FS, dir string) error {
	st, err := fsys.Stat(dir)
	if err != nil {
		return &StateError{fmt.Errorf("the state directory: %w", err)}
	}
	uid := os.Geteuid()
	switch {
	case !st.IsDir():
		return &ConfigError{Msg: fmt.Sprintf("the state directory %s is not a directory", dir)}
	case st.UID != uid:
		return &ConfigError{Msg: fmt.Sprintf("the state directory %s is owned by uid %d, not by you (uid %d): "+
			"whoever owns it can make popfetch delete mail unread; use a directory of your own (state_dir)", dir, st.UID, uid)}
	case st.Mode.Perm()&0o022 != 0:
		return &ConfigError{Msg: fmt.Sprintf("the state directory %s is writable by others (mode %04o): "+
			"they could make popfetch delete mail unread; run chmod 700 %s", dir, st.Mode.Perm(), dir)}
	}
	return nil
}

package engine

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// openMailbox takes the lock of the account's mailbox and reads its UID
// cache, adopting the cache of its older identity first if the account
// has one (config.Account.AdoptKey). The returned function releases the
// lock; on error, nothing is held.
func (r *run) openMailbox() (release func(), err error) {
	a := r.acct
	lock, err := lockAccount(r.opts.FS, a.StateDir, a.Key())
	if err != nil {
		return nil, err
	}
	if a.AdoptKey != "" {
		if err := adoptCache(vfs.OrOS(r.opts.FS), a.StateDir, a.AdoptKey, a.Key()); err != nil {
			lock.Close()
			return nil, &StateError{err}
		}
	}
	if r.cache, err = uidcache.Open(a.StateDir, a.Key(), uidcache.Options{FS: r.opts.FS}); err != nil {
		lock.Close()
		return nil, &StateError{err}
	}
	return func() { lock.Close() }, nil
}

// adoptCache renames the cache of the mailbox's older identity to its
// current one when only the older exists, so an upgrade never loses what
// was retrieved (CONTRACT §2). The rename is made durable at once.
func adoptCache(fsys vfs.FS, dir, oldKey, newKey string) error {
	oldPath := filepath.Join(dir, uidcache.FileName(oldKey))
	newPath := filepath.Join(dir, uidcache.FileName(newKey))
	if _, err := fsys.Lstat(newPath); !errors.Is(err, fs.ErrNotExist) {
		return nil // the mailbox has its own cache (or err is for Open to tell)
	}
	if err := fsys.Rename(oldPath, newPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return fsys.SyncDir(dir)
}

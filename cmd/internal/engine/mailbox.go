package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/popfetch/popfetch/internal/durable"
	"github.com/popfetch/popfetch/uidcache"
)

// openMailbox takes the lock of the account's mailbox and starts reading
// its UID cache, adopting the cache of its older identity first if the
// account has one (config.Account.AdoptKey). The cache is read while the
// session is opened (a big kept mailbox's cache takes milliseconds, as
// does the TLS handshake): loadCache waits for it. The returned function
// releases the lock; on error, nothing is held.
func (r *run) openMailbox() (release func(), err error) {
	a := r.acct
	lock, err := lockAccount(a.StateDir, a.Key())
	if err != nil {
		return nil, err
	}
	if a.AdoptKey != "" {
		if err := adoptCache(a.StateDir, a.AdoptKey, a.Key()); err != nil {
			lock.Close()
			return nil, &StateError{err}
		}
	}
	loaded := make(chan error, 1)
	r.cacheLoaded = loaded
	go func() {
		c, err := uidcache.Open(a.StateDir, a.Key())
		r.cache = c // read only after loaded is received
		loaded <- err
		close(loaded)
	}()
	return func() {
		r.loadCache() // the reading ends before the lock is let go
		lock.Close()
	}, nil
}

// loadCache waits until the cache is read, and returns the error of
// reading it.
func (r *run) loadCache() error {
	if err, ok := <-r.cacheLoaded; ok {
		r.cacheErr = err
	}
	if r.cacheErr != nil {
		return &StateError{r.cacheErr}
	}
	return nil
}

// adoptCache renames the cache of the mailbox's older identity to its
// current one when only the older exists, so an upgrade never loses what
// was retrieved (CONTRACT §2). The rename is made durable at once.
func adoptCache(dir, oldKey, newKey string) error {
	oldPath := filepath.Join(dir, uidcache.FileName(oldKey))
	newPath := filepath.Join(dir, uidcache.FileName(newKey))
	if _, err := os.Lstat(newPath); !errors.Is(err, fs.ErrNotExist) {
		return nil // the mailbox has its own cache (or err is for Open to tell)
	}
	if err := os.Rename(oldPath, newPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return durable.SyncDir(dir)
}

package engine

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/internal/vfs"
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
	loaded := make(chan error, 1)
	r.cacheLoaded = loaded
	go func() {
		c, err := uidcache.Open(a.StateDir, a.Key(), uidcache.Options{FS: r.opts.FS})
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

// tidyTarget tidies what a killed run left in a Maildir or beside an
// mbox, and finishes an mbox append that a crash interrupted (see
// deliver.RecoverMbox): a cut-off tail is removed, and the messages that
// made it whole are recorded as delivered, so the server's copies are
// deleted (or, in keep mode, left) rather than delivered again. The
// journal is forgotten once that is saved.
func (r *run) tidyTarget() error {
	if kindOf(r.acct.Deliver) == &maildirKind {
		deliver.TidyMaildir(r.acct.Deliver.Maildir, deliver.MaildirOptions{FS: r.opts.FS})
		return nil
	}
	if kindOf(r.acct.Deliver) != &mboxKind {
		return nil
	}
	if err := r.loadCache(); err != nil {
		return err
	}
	opts := targetEnv{acct: r.acct, fs: r.opts.FS}.mboxOptions()
	rec, err := deliver.RecoverMbox(r.acct.Deliver.Mbox, opts)
	if err != nil {
		return err
	}
	state := uidcache.Deleted
	if r.acct.Keep {
		state = uidcache.Retrieved
	}
	recorded := 0
	for _, uid := range rec.Whole {
		if uid == "" {
			continue // a server without UIDL: nothing to record it by
		}
		if e, ok := r.cache.Get(uid); ok && (e.State == uidcache.Retrieved || e.State == uidcache.Deleted) {
			continue
		}
		// with its size: a later UID of a server that reuses them is
		// told apart (see makePlan)
		r.cache.Put(uid, uidcache.Entry{Seen: r.now(), State: state, Size: rec.Sizes[uid]})
		recorded++
	}
	switch {
	case rec.Foreign:
		r.log.Warn("an append to the mbox that popfetch was making when it stopped is followed by what another "+
			"program wrote, or the file was rewritten: it is left as it is; the last message of popfetch's "+
			"there may be cut off", "mbox", r.acct.Deliver.Mbox, "whole", len(rec.Whole))
	case rec.Truncated > 0 || recorded > 0:
		r.log.Info("finished an mbox append that a crash interrupted", "mbox", r.acct.Deliver.Mbox,
			"recorded", recorded, "cut-off octets removed", rec.Truncated)
	}
	if err := r.saveCache(); err != nil {
		return err
	}
	if err := deliver.ForgetMboxJournal(opts); err != nil {
		return &StateError{err}
	}
	return nil
}

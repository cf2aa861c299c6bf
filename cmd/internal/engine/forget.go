package engine

import (
	"fmt"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// UnknownUIDError is returned by Forget for UIDs that are not in the
// account's cache; nothing was forgotten.
type UnknownUIDError struct {
	UIDs []string // in the order given
	Path string   // the cache file
}

func (e *UnknownUIDError) Error() string {
	q := make([]string, len(e.UIDs))
	for i, u := range e.UIDs {
		q[i] = fmt.Sprintf("%q", u)
	}
	return fmt.Sprintf("not in the UID cache %s: %s; nothing forgotten", e.Path, strings.Join(q, ", "))
}

// Forget removes uids from the UID cache of the account's mailbox, or every
// UID when none is given, so that the next fetch retrieves those messages
// again if the server still has them. It holds the account's lock while it
// works (ErrLocked if a fetch is running) and saves the cache atomically.
// It is all or nothing: if any of uids is not in the cache, it returns an
// *UnknownUIDError and changes nothing. It returns the number forgotten;
// other errors are ErrLocked and *StateError.
func Forget(a *config.Account, uids []string) (int, error) {
	lock, err := lockAccount(nil, a.StateDir, a.Key())
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	if a.AdoptKey != "" {
		if err := adoptCache(vfs.OS, a.StateDir, a.AdoptKey, a.Key()); err != nil {
			return 0, &StateError{err}
		}
	}
	cache, err := uidcache.Open(a.StateDir, a.Key())
	if err != nil {
		return 0, &StateError{err}
	}
	if len(uids) == 0 {
		uids = cache.UIDs()
	}
	var unknown []string
	for _, uid := range uids {
		if _, ok := cache.Get(uid); !ok {
			unknown = append(unknown, uid)
		}
	}
	if len(unknown) > 0 {
		return 0, &UnknownUIDError{UIDs: unknown, Path: cache.Path()}
	}
	n := cache.Len()
	for _, uid := range uids {
		cache.Delete(uid)
	}
	n -= cache.Len()
	if !cache.Dirty() {
		return 0, nil
	}
	if err := cache.Save(); err != nil {
		return 0, &StateError{err}
	}
	return n, nil
}

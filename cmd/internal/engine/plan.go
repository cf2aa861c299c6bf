package engine

import (
	"github.com/popfetch/popfetch/uidcache"
)

// plan is what a run will do with the listed messages.
type plan struct {
	fetch []message // to retrieve and deliver, in server order
	dele  []message // to delete without retrieving
}

// Tripwire thresholds (CONTRACT §5): the cache must remember at least
// tripCached messages, and the server list at least tripListed, before "none
// of them matches" is taken as a changed UID scheme rather than a mailbox
// that was emptied by another client and then refilled.
const (
	tripCached = 10
	tripListed = 10
)

// plan decides, for each listed message, whether to retrieve it, delete it
// unseen, or leave it, and forgets cached UIDs no longer on the server.
func (r *run) plan(msgs []message) (plan, error) {
	a, cache := r.acct, r.cache
	var p plan
	listed := make(map[string]bool, len(msgs))
	known := 0
	for _, m := range msgs {
		listed[m.uid] = true
		if _, ok := cache.Get(m.uid); ok {
			known++
		}
	}
	if a.Keep && known == 0 && !r.opts.AcceptAllAsNew && len(msgs) >= tripListed {
		retrieved := 0
		for _, uid := range cache.UIDs() {
			if e, _ := cache.Get(uid); e.State != uidcache.Skipped {
				retrieved++
			}
		}
		if retrieved >= tripCached {
			return p, &CacheMismatchError{Cached: retrieved, Listed: len(msgs), Path: cache.Path()}
		}
	}
	// Forget what the server no longer has: it was deleted, here or
	// elsewhere. The listing is complete, so this is safe.
	for _, uid := range cache.UIDs() {
		if !listed[uid] {
			cache.Delete(uid)
		}
	}
	now := r.now()
	limit := a.MaxMessages
	for _, m := range msgs {
		e, cached := cache.Get(m.uid)
		switch {
		case cached && e.State == uidcache.Deleted && !a.Keep:
			// delivered in a session whose QUIT never completed
			p.dele = append(p.dele, m)
			continue
		case cached && e.State != uidcache.Skipped && !a.FetchAll:
			if !a.Keep {
				p.dele = append(p.dele, m) // retrieved before, in keep mode
			} else if a.DeleteAfter > 0 && now.Sub(e.Seen) > a.DeleteAfter {
				p.dele = append(p.dele, m)
			}
			continue
		}
		if a.MaxSize > 0 && m.size > a.MaxSize {
			if !cached {
				r.log.Warn("message larger than max_size left on the server",
					"uid", m.uid, "size", m.size, "max_size", a.MaxSize)
				cache.Put(m.uid, uidcache.Entry{Seen: now, State: uidcache.Skipped})
				r.res.Skipped++
			}
			continue
		}
		if limit > 0 && len(p.fetch) >= limit {
			continue
		}
		p.fetch = append(p.fetch, m)
	}
	r.res.New = len(p.fetch)
	return p, nil
}

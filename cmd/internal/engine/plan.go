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
	if r.noUIDL {
		return r.planWithoutUIDs(msgs), nil
	}
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
		cache.Each(func(_ string, e uidcache.Entry) {
			if e.State != uidcache.Skipped {
				retrieved++
			}
		})
		if retrieved >= tripCached {
			return p, &CacheMismatchError{Cached: retrieved, Listed: len(msgs), Path: cache.Path()}
		}
	}
	// Forget what the server no longer has: it was deleted, here or
	// elsewhere. The listing is complete, so this is safe. (Unsorted: a
	// run with no new mail does no more than read the cache.)
	cache.Each(func(uid string, _ uidcache.Entry) {
		if !listed[uid] {
			cache.Delete(uid)
		}
	})
	now := r.now()
	limit := a.MaxMessages
	shared := sharedUIDs(msgs)
	for _, m := range msgs {
		e, cached := cache.Get(m.uid)
		unseen := false // delete without retrieving
		switch {
		case cached && e.State == uidcache.Deleted && !a.Keep:
			// delivered in a session whose QUIT never completed
			unseen = true
		case cached && e.State != uidcache.Skipped && !a.FetchAll:
			// retrieved before: in keep mode, deleted once old enough;
			// else retrieved in keep mode and now to be deleted
			unseen = !a.Keep || (a.DeleteAfter > 0 && now.Sub(e.Seen) > a.DeleteAfter)
			if !unseen {
				continue
			}
		}
		if unseen {
			// RFC 1939 §7 makes a UID name one message. A UID that names
			// several cannot tell which of them was delivered before (a
			// message can come in later under the UID of one delivered):
			// none of them is deleted unseen. In keep mode they stay as
			// they are; else they are retrieved again, which is at worst
			// a duplicate, never a loss.
			if shared[m.uid] == 0 {
				p.dele = append(p.dele, m)
				continue
			}
			if a.Keep {
				continue
			}
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
	if len(shared) > 0 {
		n, example := 0, ""
		for uid, k := range shared {
			n += k
			if example == "" || uid < example {
				example = uid
			}
		}
		r.log.Warn("the server gives the same UID to several messages (RFC 1939 §7 wants each unique): "+
			"popfetch retrieves them all, but cannot tell them apart later; in keep mode a new message "+
			"under a UID already retrieved is not seen", "messages", n, "uids", len(shared), "example", example)
	}
	return p, nil
}

// planWithoutUIDs retrieves every message, within max_size and
// max_messages, for a server without UIDL (delete mode only; see open).
// The cache is neither read nor changed: it holds nothing of these
// messages. A message too large is reported on every run, as nothing can
// remember it was.
func (r *run) planWithoutUIDs(msgs []message) plan {
	a := r.acct
	var p plan
	for _, m := range msgs {
		if a.MaxSize > 0 && m.size > a.MaxSize {
			r.log.Warn("message larger than max_size left on the server",
				"number", m.num, "size", m.size, "max_size", a.MaxSize)
			r.res.Skipped++
			continue
		}
		if a.MaxMessages > 0 && len(p.fetch) >= a.MaxMessages {
			continue
		}
		p.fetch = append(p.fetch, m)
	}
	r.res.New = len(p.fetch)
	return p
}

// sharedUIDs returns the UIDs listed for more than one message, with how
// many messages each names.
func sharedUIDs(msgs []message) map[string]int {
	count := make(map[string]int, len(msgs))
	for _, m := range msgs {
		count[m.uid]++
	}
	shared := map[string]int{}
	for uid, n := range count {
		if n > 1 {
			shared[uid] = n
		}
	}
	return shared
}

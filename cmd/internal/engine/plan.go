package engine

import (
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/uidcache"
)

// plan is what a run will do with the messages a server listed. Making it
// changes nothing: Run applies it (the cache edits, the reports), Check
// only reads it.
type plan struct {
	fetch  []message // to retrieve and deliver, in server order
	dele   []message // to delete without retrieving (recorded before)
	forget []string  // cached UIDs no longer listed: deleted, here or elsewhere
	// tooLarge are new messages larger than max_size, not reported
	// before: recorded as Skipped, and reported, once.
	tooLarge []message
	// tooLargeKnown counts those reported by an earlier run.
	tooLargeKnown int
	// quarantined are messages whose retrieval broke quarantineAfter
	// sessions in a row: left on the server, reported on every run.
	quarantined []message
	// shared are the UIDs that name several messages, with how many.
	shared map[string]int
	// suspects counts the messages to fetch whose retrieval broke the
	// last session (they are last in fetch).
	suspects int
	// oneByOne: a session broke last time, so this run retrieves one
	// message at a time (see fetch).
	oneByOne bool
	// reused are messages listed under the UID of a message recorded
	// with another size: another message, taken as new.
	reused []message
}

// Tripwire thresholds (CONTRACT §5): the cache must remember at least
// tripCached messages, and the server list at least tripListed, before "none
// of them matches" is taken as a changed UID scheme rather than a mailbox
// that was emptied by another client and then refilled.
const (
	tripCached = 10
	tripListed = 10
)

// quarantineAfter is how many runs in a row the retrieval of a message
// may break the session before it is left on the server (CONTRACT §5:
// a poison message does not strand the mailbox).
const quarantineAfter = 3

// cacheView is what planning reads of the UID cache (see uidcache.Cache:
// positions number the cache's UIDs, and looking UIDs up in the cache's
// order is fastest).
type cacheView interface {
	Find(uid string) (pos int, ok bool)
	At(pos int) (uid string, e uidcache.Entry, ok bool)
	Positions() int
	Each(fn func(uid string, e uidcache.Entry))
	Len() int
	Path() string
}

// makePlan decides, for each listed message, whether to retrieve it,
// delete it unseen, or leave it, and which cached UIDs to forget. It is a
// pure function of the account's settings, the cache, the listing and the
// time. A listing without UIDs (noUIDL) is planned without the cache.
//
// It runs on every run of a mailbox that may keep tens of thousands of
// messages, so it costs little per listed message: two lookups each (a
// string comparison when the server lists in the cache's order), a bit
// per cached UID to see which are listed and which twice, and nothing
// kept per message the plan leaves alone.
func makePlan(a *config.Account, cache cacheView, msgs messages, noUIDL, acceptAllAsNew bool, now time.Time) (plan, error) {
	if noUIDL {
		return planWithoutUIDs(a, cache, msgs), nil
	}
	var p plan
	n := msgs.Len()
	listed := make([]uint64, (cache.Positions()+63)/64) // cache positions listed
	known, distinct := 0, 0                             // listed messages the cache knows; their UIDs
	var fresh map[string]int                            // UIDs the cache does not know: how many messages each
	for i := 0; i < n; i++ {
		m := msgs.At(i)
		cp, ok := cache.Find(m.uid)
		if !ok {
			if fresh == nil {
				fresh = map[string]int{}
			}
			fresh[m.uid]++
			continue
		}
		known++
		if bit := uint64(1) << (cp % 64); listed[cp/64]&bit == 0 {
			listed[cp/64] |= bit
			distinct++
		} else {
			// RFC 1939 §7 makes a UID name one message.
			if p.shared == nil {
				p.shared = map[string]int{}
			}
			p.shared[m.uid] = max(p.shared[m.uid], 1) + 1
		}
	}
	for uid, k := range fresh {
		if k > 1 {
			if p.shared == nil {
				p.shared = map[string]int{}
			}
			p.shared[uid] = k
		}
	}
	if a.Keep && known == 0 && !acceptAllAsNew && n >= tripListed {
		retrieved := 0
		cache.Each(func(_ string, e uidcache.Entry) {
			if e.State == uidcache.Retrieved || e.State == uidcache.Deleted {
				retrieved++
			}
		})
		if retrieved >= tripCached {
			return p, &CacheMismatchError{Cached: retrieved, Listed: n, Path: cache.Path()}
		}
	}
	if distinct < cache.Len() {
		// Some cached UIDs are not listed: the listing is complete, so
		// they were deleted, here or elsewhere, and are forgotten.
		for cp := 0; cp < cache.Positions(); cp++ {
			if listed[cp/64]&(1<<(cp%64)) != 0 {
				continue
			}
			if uid, _, ok := cache.At(cp); ok {
				p.forget = append(p.forget, uid)
			}
		}
	}
	limit := a.MaxMessages
	var suspects []message // retrieving them broke a session
	for i := 0; i < n; i++ {
		m := msgs.At(i)
		var e uidcache.Entry
		cp, cached := cache.Find(m.uid) // cheap: the order of the first pass
		if cached {
			_, e, _ = cache.At(cp)
		}
		if cached && e.State == uidcache.Quarantined {
			p.quarantined = append(p.quarantined, m)
			continue
		}
		recorded := cached && (e.State == uidcache.Retrieved || e.State == uidcache.Deleted)
		if recorded && e.Size > 0 && e.Size != m.size && p.shared[m.uid] == 0 {
			// RFC 1939 §7 forbids giving a UID to another message, but
			// some servers do once the first is gone: deleted unseen,
			// or skipped as retrieved, this one would be lost. A UID
			// listed for several messages at once has several sizes and
			// one record: its size tells nothing (below for those).
			p.reused = append(p.reused, m)
			recorded, cached = false, false
		}
		unseen := false // delete without retrieving
		switch {
		case recorded && e.State == uidcache.Deleted && !a.Keep:
			// delivered in a session whose QUIT never completed
			unseen = true
		case recorded && !a.FetchAll:
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
			if p.shared[m.uid] == 0 {
				p.dele = append(p.dele, m)
				continue
			}
			if a.Keep {
				continue
			}
		}
		if a.MaxSize > 0 && m.size > a.MaxSize {
			if cached && e.State == uidcache.Skipped {
				p.tooLargeKnown++
			} else {
				p.tooLarge = append(p.tooLarge, m)
			}
			continue
		}
		if limit > 0 && len(p.fetch)+len(suspects) >= limit {
			continue
		}
		if cached && e.State == uidcache.Broken {
			suspects = append(suspects, m)
			continue
		}
		p.fetch = append(p.fetch, m)
	}
	// A message whose retrieval broke the last session goes last: if it
	// breaks this one too, the others are delivered first (CONTRACT §5).
	p.fetch = append(p.fetch, suspects...)
	p.suspects = len(suspects)
	p.oneByOne = p.suspects > 0
	return p, nil
}

// planWithoutUIDs retrieves every message, within max_size and
// max_messages, for a server without UIDL (delete mode only; see
// session.list). The cache holds nothing of these messages. A message too
// large is reported on every run, as nothing can remember it was.
func planWithoutUIDs(a *config.Account, cache cacheView, msgs messages) plan {
	var p plan
	var suspects []message
	listed := map[string]bool{}
	for i := 0; i < msgs.Len(); i++ {
		m := msgs.At(i)
		key := noUIDLKey(m)
		listed[key] = true
		var e uidcache.Entry
		if pos, ok := cache.Find(key); ok {
			_, e, _ = cache.At(pos)
		}
		if e.State == uidcache.Quarantined {
			p.quarantined = append(p.quarantined, m)
			continue
		}
		if a.MaxSize > 0 && m.size > a.MaxSize {
			p.tooLarge = append(p.tooLarge, m)
			continue
		}
		if a.MaxMessages > 0 && len(p.fetch)+len(suspects) >= a.MaxMessages {
			continue
		}
		if e.State == uidcache.Broken {
			suspects = append(suspects, m)
			continue
		}
		p.fetch = append(p.fetch, m)
	}
	p.fetch = append(p.fetch, suspects...)
	p.suspects = len(suspects)
	p.oneByOne = p.suspects > 0
	cache.Each(func(key string, _ uidcache.Entry) {
		if strings.HasPrefix(key, noUIDLPrefix) && !listed[key] {
			p.forget = append(p.forget, key)
		}
	})
	return p
}

// noUIDLPrefix begins the keys of noUIDLKey.
const noUIDLPrefix = "#size:"

// noUIDLKey names a message of a server without UIDL in the cache, for
// the one thing the cache holds of such messages: that retrieving it
// broke sessions (see quarantineAfter). Its size is all there is to tell
// it from the others by; a message of the same size is taken for it.
func noUIDLKey(m message) string { return noUIDLPrefix + strconv.FormatInt(m.size, 10) }

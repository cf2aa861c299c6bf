package uidcache

import "hash/maphash"

// index maps the UIDs of a cache to their positions: an open-addressing
// hash table with linear probing, at most half full. Each slot holds 8
// bits of the UID's hash and its position + 1 in 24 bits, so that a probe
// looks at a UID only when those bits agree; 0 is an empty slot, and a
// position of all ones a deleted one. It holds no pointers, so the
// garbage collector never scans it, and it takes 4 to 8 bytes per UID (a
// map[string]int32 takes about 28).
type index struct {
	seed  maphash.Seed
	slots []uint32
	used  int // slots not empty: live and deleted
}

const (
	posMask  = 1<<24 - 1
	tombPos  = posMask // a deleted slot's position + 1
	maxItems = posMask - 1
	tagShift = 24
)

// reset empties the index and sizes it for n UIDs.
func (x *index) reset(n int) {
	if x.seed == (maphash.Seed{}) {
		x.seed = maphash.MakeSeed()
	}
	size := 16
	for size < 2*n {
		size *= 2
	}
	x.slots, x.used = make([]uint32, size), 0
}

func (x *index) hash(uid string) uint64 { return maphash.String(x.seed, uid) }

// lookup returns the slot of uid, and its position; if uid is absent, the
// slot where it would go, and -1. uidAt returns the UID at a position.
func (x *index) lookup(uid string, uidAt func(int) string) (slot, pos int) {
	h := x.hash(uid)
	tag := uint32(h>>56) << tagShift
	mask := uint64(len(x.slots) - 1)
	free := -1
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		switch {
		case s == 0:
			if free < 0 {
				free = int(i)
			}
			return free, -1
		case s&posMask == tombPos:
			if free < 0 {
				free = int(i)
			}
		case s&^posMask == tag && uidAt(int(s&posMask)-1) == uid:
			return int(i), int(s&posMask) - 1
		}
	}
}

// set puts uid at pos into slot, as lookup returned it for a UID absent.
func (x *index) set(slot int, uid string, pos int) {
	if x.slots[slot] == 0 {
		x.used++
	}
	x.slots[slot] = uint32(x.hash(uid)>>56)<<tagShift | uint32(pos+1)
}

// remove empties the slot of a UID.
func (x *index) remove(slot int) { x.slots[slot] = tombPos }

// full reports whether one more UID would make the table more than half
// full, counting deleted slots.
func (x *index) full() bool { return 2*(x.used+1) > len(x.slots) }

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

// spot is where a UID is or would go in the index: its slot and hash.
type spot struct {
	slot int
	hash uint64
}

// lookup returns the spot of uid, and its position; if uid is absent, the
// spot where it would go, and -1. uidAt returns the UID at a position.
func (x *index) lookup(uid string, uidAt func(int) string) (spot, int) {
	return x.probe(x.hash(uid), func(p int) bool { return uidAt(p) == uid })
}

// lookupBytes is lookup for a UID given as bytes.
func (x *index) lookupBytes(uid []byte, uidAt func(int) string) (spot, int) {
	return x.probe(maphash.Bytes(x.seed, uid), func(p int) bool { return uidAt(p) == string(uid) })
}

// probe looks for the UID of hash h; is tells whether it is at a
// position.
func (x *index) probe(h uint64, is func(pos int) bool) (spot, int) {
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
			return spot{free, h}, -1
		case s&posMask == tombPos:
			if free < 0 {
				free = int(i)
			}
		case s&^posMask == tag && is(int(s&posMask)-1):
			return spot{int(i), h}, int(s&posMask) - 1
		}
	}
}

// set puts the UID of a spot that lookup found free at pos.
func (x *index) set(at spot, pos int) {
	if x.slots[at.slot] == 0 {
		x.used++
	}
	x.slots[at.slot] = uint32(at.hash>>56)<<tagShift | uint32(pos+1)
}

// remove empties the spot of a UID.
func (x *index) remove(at spot) { x.slots[at.slot] = tombPos }

// full reports whether one more UID would make the table more than half
// full, counting deleted slots.
func (x *index) full() bool { return 2*(x.used+1) > len(x.slots) }

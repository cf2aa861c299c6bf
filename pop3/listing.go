package pop3

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Listing is the response to LIST or UIDL: a line per message, in the
// server's order. It keeps the lines in a few arrays rather than a value
// per message, so that the listing of a maildrop of half a million
// messages costs a handful of allocations and about the octets of its
// UIDs: the UIDs share one string, sizes take 4 octets while they are
// below 4 GiB, and the message numbers are stored only when they are not
// simply 1, 2, 3, ... A Listing is not changed once its command is done.
type Listing struct {
	nums    []int    // message numbers; nil while they are 1, 2, 3, ...
	sizes   []uint32 // LIST, while every size fits
	sizes64 []int64  // LIST, once one does not
	uids    string   // UIDL: the UIDs, one after the other
	ends    []uint32 // UIDL: UID i ends at uids[ends[i]]
	n       int      // lines
	uidl    bool
	text    strings.Builder
}

// Len returns the number of lines.
func (l *Listing) Len() int { return l.n }

// Number returns the message number of line i.
func (l *Listing) Number(i int) int {
	if l.nums == nil {
		return i + 1
	}
	return l.nums[i]
}

// At returns line i: the message number and, as the command gives them,
// its size (LIST) or its UID (UIDL). The UID shares the listing's memory;
// it does not allocate.
func (l *Listing) At(i int) MessageInfo {
	m := MessageInfo{Number: l.Number(i)}
	switch {
	case l.uidl:
	case l.sizes64 != nil:
		m.Size = l.sizes64[i]
	default:
		m.Size = int64(l.sizes[i])
	}
	if l.uidl {
		start := uint32(0)
		if i > 0 {
			start = l.ends[i-1]
		}
		m.UID = l.uids[start:l.ends[i]]
	}
	return m
}

// All returns the lines as a slice, for listings small enough not to
// mind a value per message.
func (l *Listing) All() []MessageInfo {
	all := make([]MessageInfo, l.n)
	for i := range all {
		all[i] = l.At(i)
	}
	return all
}

// grow reserves room for lines more lines, and octets more octets of
// UIDs (UIDL).
func (l *Listing) grow(lines, octets int) {
	if l.uidl {
		l.ends = growTo(l.ends, lines)
		l.text.Grow(octets)
	} else if l.sizes64 == nil {
		l.sizes = growTo(l.sizes, lines)
	}
}

// growTo returns s with room for n more elements, at least doubling its
// capacity when it must grow: append alone grows large slices by a
// quarter at a time, copying them each time.
func growTo[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	t := make([]T, len(s), max(2*cap(s), len(s)+n, 64))
	copy(t, s)
	return t
}

// add appends a line.
func (l *Listing) add(n int) {
	if l.nums == nil && n != l.n+1 {
		l.nums = make([]int, l.n, max(2*l.n, 64))
		for i := range l.nums {
			l.nums[i] = i + 1
		}
	}
	if l.nums != nil {
		l.nums = append(l.nums, n)
	}
	l.n++
}

// addSize appends a line of LIST.
func (l *Listing) addSize(n int, size int64) {
	if l.sizes64 == nil && size > math.MaxUint32 {
		l.sizes64 = make([]int64, len(l.sizes), max(2*len(l.sizes), 64))
		for i, s := range l.sizes {
			l.sizes64[i] = int64(s)
		}
		l.sizes = nil
	}
	if l.sizes64 != nil {
		l.sizes64 = append(growTo(l.sizes64, 1), size)
	} else {
		l.sizes = append(growTo(l.sizes, 1), uint32(size))
	}
	l.add(n)
}

// addUID appends a line of UIDL.
func (l *Listing) addUID(n int, uid []byte) error {
	if l.text.Len()+len(uid) > math.MaxUint32 {
		return protoErrorf("UIDL", "more than %d octets of unique-ids", uint32(math.MaxUint32))
	}
	l.text.Grow(len(uid)) // doubling, unlike Write's append
	l.text.Write(uid)
	l.ends = growTo(l.ends, 1)
	l.ends = append(l.ends, uint32(l.text.Len()))
	l.add(n)
	return nil
}

// done ends the listing: its UIDs become readable.
func (l *Listing) done() {
	l.uids = l.text.String()
}

// number parses a message number or a size: decimal digits, as
// strconv.ParseInt would take them, without allocating in the usual case.
func number(b []byte, bits int) (int64, bool) {
	if len(b) > 0 && len(b) <= bits/4 { // cannot overflow
		var n int64
		for _, c := range b {
			if c < '0' || c > '9' {
				return slowNumber(b, bits)
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
	return slowNumber(b, bits)
}

func slowNumber(b []byte, bits int) (int64, bool) {
	n, err := strconv.ParseInt(string(b), 10, bits)
	return n, err == nil
}

// scanSizeLine parses "n size" of LIST (RFC 1939 §5; anything after the
// size is ignored, as the RFC allows).
func scanSizeLine(cmd string, line []byte) (n int, size int64, err error) {
	var f [2][]byte
	ascii := true
	k := 0
	for i := 0; i < len(line) && k < 2; {
		for i < len(line) && asciiSpace(line[i]) {
			i++
		}
		start := i
		for i < len(line) && !asciiSpace(line[i]) {
			ascii = ascii && line[i] < 0x80
			i++
		}
		if i > start {
			f[k] = line[start:i]
			k++
		}
	}
	if !ascii {
		// strings.Fields, which splits on Unicode spaces too
		m, err := parseScanListing(cmd, line)
		return m.Number, m.Size, err
	}
	if k < 2 {
		return 0, 0, protoErrorf(cmd, "malformed scan listing %q", truncate(line, 80))
	}
	num, ok1 := number(f[0], strconv.IntSize)
	sz, ok2 := number(f[1], 64)
	if !ok1 || !ok2 || num < 1 || sz < 0 {
		return 0, 0, protoErrorf(cmd, "malformed scan listing %q", truncate(line, 80))
	}
	return int(num), sz, nil
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// scanUIDLine parses "n uid" of UIDL (RFC 1939 §7). The UID is the rest
// of the line after the separating spaces, kept as it is even where it
// breaks the RFC's rules, so that no message becomes unaddressable;
// callers that store UIDs must encode them (see ValidUID). It is a part
// of line.
func scanUIDLine(line []byte) (n int, uid []byte, err error) {
	sp := bytes.IndexAny(line, " \t")
	if sp < 1 {
		return 0, nil, protoErrorf("UIDL", "malformed unique-id listing %q", truncate(line, 80))
	}
	num, ok := number(line[:sp], strconv.IntSize)
	uid = bytes.TrimRight(bytes.TrimLeft(line[sp:], " \t"), " \t")
	if !ok || num < 1 || len(uid) == 0 {
		return 0, nil, protoErrorf("UIDL", "malformed unique-id listing %q", truncate(line, 80))
	}
	return int(num), uid, nil
}

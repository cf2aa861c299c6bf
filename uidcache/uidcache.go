// Package uidcache remembers which messages of one mailbox have been
// retrieved, by their POP3 unique id (RFC 1939 §7), with the time each was
// first seen.
//
// A cache belongs to a mailbox, named by a key such as "alice@pop.example.org"
// (USER@HOST), not to a configured account, so renaming an account does not
// fetch everything again. It is a human-readable text file, replaced
// atomically on Save (write a temporary file, fsync, rename, fsync the
// directory), so a crash leaves either the old or the new cache, never a mix.
// UIDs are opaque bytes: whatever a server sends, even a UID breaking the
// RFC's rules, is encoded so it cannot corrupt the file.
package uidcache

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// State says what became of a message.
type State byte

const (
	// Retrieved: delivered, and left on the server.
	Retrieved State = 'R'
	// Deleted: delivered and marked for deletion; it is gone once a QUIT
	// succeeds, and if it is still listed later, that QUIT never completed:
	// it must be deleted again, not delivered again.
	Deleted State = 'D'
	// Skipped: not retrieved on purpose (too large) and already reported.
	Skipped State = 'S'
	// Broken: retrieving it broke the session Entry.Breaks runs in a row
	// (1 to 9); it is retrieved again.
	Broken State = 'B'
	// Quarantined: retrieving it broke the session too many runs in a
	// row; it is left on the server (a "poison" message) until forgotten.
	Quarantined State = 'Q'
)

func (s State) valid() bool {
	return s == Retrieved || s == Deleted || s == Skipped || s == Broken || s == Quarantined
}

// Entry is what the cache knows of a UID.
type Entry struct {
	Seen  time.Time // when the message was first seen, to the second
	State State
	// Breaks counts the runs in a row whose session broke while
	// retrieving the message (State Broken): 1 to 9.
	Breaks int
	// Size is the message's size as the server listed it when it was
	// recorded, 0 if unknown (caches of older versions). A UID listed
	// later with another size names another message: a server that
	// reuses UIDs, against RFC 1939 §7.
	Size int64
}

// Cache is the set of UIDs known for one mailbox. It is not safe for
// concurrent use; the caller holds the account's lock.
//
// A cache of a big kept mailbox is read on every run, so it is kept in a
// few large pieces, with nothing per UID for the garbage collector to
// scan: the UIDs one after the other in one string, a fixed-size record
// per UID, and an index (see index). Entries stay in the order their
// UIDs were first recorded, which is the file's order and, for a kept
// mailbox, the server's: Find looks first where its last look ended, so
// a listing looked up in order costs a string comparison per message.
type Cache struct {
	fs    vfs.FS
	path  string
	key   string
	uids  strings.Builder  // every UID recorded, one after the other
	text  string           // uids.String()
	items []item           // in the order first recorded; removed ones stay until compacted
	index index            // UID → position in items, of the live ones
	next  int              // where Find looks first
	big   map[string]int64 // sizes of 4 GiB and more, by UID
	dirty bool
	// removed counts the removed items still in items.
	removed int
}

// item is what the cache keeps of a UID, in 16 bytes: where the UID is in
// text, and its entry. State 0 marks an item removed.
type item struct {
	off    uint32
	seen   uint32 // Unix seconds, 1970 to 2106 (see Put)
	size   uint32 // bigSize: see Cache.big
	n      uint16 // the UID's length (pop3 bounds UIDs far below 65536)
	state  State
	breaks uint8
}

// bigSize is the size of an item whose size does not fit in 32 bits: it
// is kept in Cache.big.
const bigSize = math.MaxUint32

// maxUID is the longest UID a cache records: longer ones are cut, which
// cannot happen with UIDs from the pop3 package (Options.MaxUID).
const maxUID = 1<<16 - 1

func (c *Cache) uidAt(pos int) string {
	it := &c.items[pos]
	return c.text[it.off : it.off+uint32(it.n)]
}

func (c *Cache) entry(pos int) Entry {
	it := &c.items[pos]
	e := Entry{Seen: time.Unix(int64(it.seen), 0).UTC(), State: it.state, Breaks: int(it.breaks), Size: int64(it.size)}
	if it.size == bigSize {
		e.Size = c.big[c.uidAt(pos)]
	}
	return e
}

// setEntry sets the entry of the item at pos, whose UID is uid.
func (c *Cache) setEntry(pos int, uid string, seen int64, state State, breaks int, size int64) {
	it := &c.items[pos]
	it.seen = uint32(min(max(seen, 0), math.MaxUint32))
	it.state, it.breaks = state, uint8(breaks)
	it.size = uint32(min(size, bigSize))
	if size >= bigSize {
		if c.big == nil {
			c.big = map[string]int64{}
		}
		c.big[uid] = size
	}
}

// addUID appends a UID to the text and returns its offset.
func (c *Cache) addUID(uid string) uint32 {
	off := uint32(c.uids.Len())
	c.uids.WriteString(uid)
	c.text = c.uids.String()
	return off
}

// FileName returns the name of the cache file of key within a state
// directory: EscapeKey(key) + ".uidl".
func FileName(key string) string { return EscapeKey(key) + ".uidl" }

// EscapeKey makes a key safe as a file name: every byte outside
// [A-Za-z0-9._@+-], and a leading dot, is written as %XX. A name longer
// than maxName is cut to keepName bytes and followed by "~" and the first
// 32 hex digits of the key's SHA-256, so that with ".uidl", ".lock" and
// Save's temporary prefix it stays within NAME_MAX (255); "~" is never
// written otherwise, so a cut name cannot be another key's.
func EscapeKey(key string) string {
	name := escapeName(key)
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	return name[:keepName] + "~" + hex.EncodeToString(sum[:16])
}

// Bounds of EscapeKey's names.
const (
	maxName  = 200
	keepName = 160
)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// FS is the file system of the state directory; nil means the real
	// one. Save and Snapshot.Write use it too.
	FS vfs.FS
}

// Open loads the cache of key from the state directory dir. A missing file
// is an empty cache; the file is only written by Save. The file is opened
// without following a symbolic link: the cache decides which messages are
// deleted unread, so it must be popfetch's own file. At most one Options
// is used.
func Open(dir, key string, opts ...Options) (*Cache, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := &Cache{fs: vfs.OrOS(o.FS), path: filepath.Join(dir, FileName(key)), key: key}
	f, err := c.fs.OpenFile(c.path, os.O_RDONLY|vfs.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		c.index.reset(0)
		return c, nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("uidcache: %s is a symbolic link: refusing to use it (remove it; popfetch writes its own)", c.path)
	}
	if err != nil {
		return nil, fmt.Errorf("uidcache: %w", err)
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size
	}
	if err := c.load(f, size); err != nil {
		return nil, fmt.Errorf("uidcache: %s:%w", c.path, err)
	}
	return c, nil
}

// maxLine bounds a line of the file: no line Save writes comes near.
const maxLine = 1 << 20

// load reads the entries of a file of about size octets: one line each,
// "UID\ttime\tstate" or "UID\ttime\tstate\tsize"; empty lines and lines beginning with '#' are
// comments. A UID listed twice takes the last line's entry, at the first
// line's place.
func (c *Cache) load(r io.Reader, size int64) error {
	br := bufio.NewReaderSize(r, 64<<10)
	c.reserve(br, size)
	var last lastTime
	err := eachLine(br, func(num int, line []byte) error {
		if len(line) == 0 || line[0] == '#' {
			return nil
		}
		if err := c.parseLine(line, &last); err != nil {
			return fmt.Errorf("%d: %w", num, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.text = c.uids.String()
	c.reindex()
	return nil
}

// reserve sizes the text and the items for a file of size octets, from
// the lines of its first 64 KiB: growing them as the lines come would
// copy them, and leave the copies to the collector. The file's lines are
// much alike; a guess a little short grows them once.
func (c *Cache) reserve(br *bufio.Reader, size int64) {
	head, _ := br.Peek(br.Size())
	if len(head) == 0 || size < int64(len(head)) || size >= 1<<31 {
		size = int64(len(head))
	}
	lines, octets := 0, 0
	for rest := head; len(rest) > 0; lines++ {
		line := rest
		if end := bytes.IndexByte(rest, '\n'); end >= 0 {
			line, rest = rest[:end], rest[end+1:]
		} else {
			rest = nil
		}
		octets += max(bytes.IndexByte(line, '\t'), 0)
	}
	scale := func(n int) int {
		est := int(size * int64(n) / int64(max(len(head), 1)))
		return est + est/32 + 16
	}
	c.uids.Grow(scale(octets))
	c.items = make([]item, 0, scale(lines))
}

// eachLine calls fn for each line that br reads, numbered from 1,
// without its line ending (LF or CRLF). The line is valid during the
// call.
func eachLine(br *bufio.Reader, fn func(num int, line []byte) error) error {
	var long []byte // a line longer than br's buffer
	for num := 1; ; num++ {
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			if long = append(long[:0], line...); len(long) > maxLine {
				return fmt.Errorf("%d: line longer than %d octets", num, maxLine)
			}
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(long, more...)
			long = line
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf(" %w", err)
		}
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if err := fn(num, line); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

// lastTime is the time of the line parsed last: a run records many
// entries in the same second, and their lines are read with one parse.
type lastTime struct {
	text [32]byte
	n    int
	seen int64
}

var errMalformed = errors.New("malformed line: want UID, time, state and size separated by tabs")

// parseLine parses a line of the file, without its line ending, and
// appends its item.
func (c *Cache) parseLine(line []byte, last *lastTime) error {
	t1 := bytes.IndexByte(line, '\t')
	if t1 < 0 {
		return errMalformed
	}
	// the time Save writes is 20 octets long
	t2 := t1 + 21
	if t2 >= len(line) || line[t2] != '\t' || bytes.IndexByte(line[t1+1:t2], '\t') >= 0 {
		if t2 = bytes.IndexByte(line[t1+1:], '\t'); t2 < 0 {
			return errMalformed
		}
		t2 += t1 + 1
	}
	enc, when, st := line[:t1], line[t1+1:t2], line[t2+1:]
	var size []byte // optional: older versions wrote three fields
	if t3 := bytes.IndexByte(st, '\t'); t3 >= 0 {
		st, size = st[:t3], st[t3+1:]
		if bytes.IndexByte(size, '\t') >= 0 {
			return errMalformed
		}
	}
	if len(st) < 1 || len(st) > 2 {
		return errMalformed
	}
	state, breaks := State(st[0]), 0
	if !state.valid() {
		return fmt.Errorf("bad state %q", st)
	}
	switch {
	case state == Broken && len(st) == 2 && '1' <= st[1] && st[1] <= '9':
		breaks = int(st[1] - '0')
	case len(st) != 1:
		return fmt.Errorf("bad state %q", st)
	}
	var seen int64
	if string(when) == string(last.text[:last.n]) && last.n > 0 {
		seen = last.seen
	} else {
		var err error
		if seen, err = parseTime(when); err != nil {
			return err
		}
		if len(when) <= len(last.text) {
			last.n = copy(last.text[:], when)
			last.seen = seen
		}
	}
	var n int64
	if size != nil {
		var ok bool
		if n, ok = parseSize(size); !ok {
			return fmt.Errorf("bad size %q", size)
		}
	}
	if len(c.items) >= maxItems {
		return errors.New("too many entries")
	}
	off := c.uids.Len()
	if err := appendDecoded(&c.uids, enc); err != nil {
		return err
	}
	k := c.uids.Len() - off
	if k > maxUID {
		return fmt.Errorf("UID of %d octets", k)
	}
	c.items = append(c.items, item{off: uint32(off), n: uint16(k)})
	pos := len(c.items) - 1
	var uid string
	if n >= bigSize {
		uid = c.uids.String()[off : off+k]
	}
	c.setEntry(pos, uid, seen, state, breaks, n)
	return nil
}

// parseTime parses an RFC 3339 time as Unix seconds. The form the cache
// writes, "2006-01-02T15:04:05Z", is read directly; any other goes
// through time.Parse.
func parseTime(s []byte) (int64, error) {
	if len(s) == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z' {
		y, ok1 := digits(s[0:4])
		mo, ok2 := digits(s[5:7])
		d, ok3 := digits(s[8:10])
		h, ok4 := digits(s[11:13])
		mi, ok5 := digits(s[14:16])
		sec, ok6 := digits(s[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && h < 24 && mi < 60 && sec < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
			if t.Day() == d { // not a day past the month's end
				return t.Unix(), nil
			}
		}
	}
	t, err := time.Parse(time.RFC3339, string(s))
	if err != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return t.Unix(), nil
}

// parseSize parses a size field: a positive decimal number, as
// strconv.ParseInt takes it.
func parseSize(b []byte) (int64, bool) {
	if len(b) > 0 && len(b) < 19 { // cannot overflow
		var n int64
		for _, c := range b {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int64(c-'0')
		}
		if n >= 0 {
			return n, n > 0
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && n > 0
}

// digits parses a run of decimal digits.
func digits(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// reindex builds the index from the items, which it compacts. Of the
// items of a UID found twice (a file written by hand), the last one's
// entry is kept, at the first one's place.
func (c *Cache) reindex() {
	c.compactItems()
	c.index.reset(len(c.items))
	for i := range c.items {
		uid := c.uidAt(i)
		at, p := c.index.lookup(uid, c.uidAt)
		if p < 0 {
			c.index.set(at, i)
			continue
		}
		it := c.items[i]
		it.off, it.n = c.items[p].off, c.items[p].n
		c.items[p] = it
		c.items[i] = item{}
		c.removed++
	}
	if c.removed > 0 {
		c.reindex()
	}
}

// compactItems drops the removed items, and so renumbers positions.
func (c *Cache) compactItems() {
	if c.removed == 0 {
		return
	}
	live := c.items[:0]
	for _, it := range c.items {
		if it.state != 0 {
			live = append(live, it)
		}
	}
	clear(c.items[len(live):])
	c.items, c.removed, c.next = live, 0, 0
}

// Path returns the cache file's path.
func (c *Cache) Path() string { return c.path }

// Key returns the mailbox key the cache belongs to.
func (c *Cache) Key() string { return c.key }

// Len returns the number of UIDs in the cache.
func (c *Cache) Len() int { return len(c.items) - c.removed }

// Get returns the entry of a UID.
func (c *Cache) Get(uid string) (Entry, bool) {
	p, ok := c.Find(uid)
	if !ok {
		return Entry{}, false
	}
	return c.entry(p), true
}

// Find returns the position of uid in the cache, for At. Positions run
// from 0 to Positions()-1 in the order the UIDs were first recorded; they
// stay valid until the next Snapshot or Save. Finding UIDs in the order
// they were recorded is fastest: each look begins where the last one
// found its UID.
func (c *Cache) Find(uid string) (int, bool) {
	if p := c.next; p < len(c.items) && c.items[p].state != 0 && c.uidAt(p) == uid {
		c.next++
		return p, true
	}
	_, p := c.index.lookup(uid, c.uidAt)
	if p < 0 {
		return -1, false
	}
	c.next = p + 1
	return p, true
}

// Ref names a UID the cache holds, in 8 bytes, for as long as the cache
// lives: Delete, Put and Snapshot do not change what a Ref names. A
// caller can keep a Ref per message of a long listing rather than a copy
// of each UID.
type Ref uint64

// Lookup returns a Ref to uid if the cache holds it. Like Find, it is
// fastest for UIDs looked up in the order they were recorded.
func (c *Cache) Lookup(uid []byte) (Ref, bool) {
	p := c.next
	if !(p < len(c.items) && c.items[p].state != 0 && c.uidAt(p) == string(uid)) {
		if _, p = c.index.lookupBytes(uid, c.uidAt); p < 0 {
			return 0, false
		}
	}
	c.next = p + 1
	it := &c.items[p]
	return Ref(it.off)<<16 | Ref(it.n), true
}

// UID returns the UID that r names.
func (c *Cache) UID(r Ref) string {
	off := uint32(r >> 16)
	return c.text[off : off+uint32(r&0xffff)]
}

// At returns the UID and entry at a position (see Find); ok is false for
// a position whose UID was deleted.
func (c *Cache) At(pos int) (uid string, e Entry, ok bool) {
	if c.items[pos].state == 0 {
		return "", Entry{}, false
	}
	return c.uidAt(pos), c.entry(pos), true
}

// Positions returns the number of positions (see Find): Len, and the
// positions of UIDs deleted since the last Snapshot.
func (c *Cache) Positions() int { return len(c.items) }

// Put records a UID. Seen is truncated to the second, and kept between
// 1970 and 2106; Breaks is kept within 1 to 9 for Broken, and 0
// otherwise. A UID longer than 65535 octets is recorded cut to that
// length.
func (c *Cache) Put(uid string, e Entry) {
	uid = uid[:min(len(uid), maxUID)]
	e.Seen = time.Unix(min(max(e.Seen.Unix(), 0), math.MaxUint32), 0).UTC()
	if e.State != Broken {
		e.Breaks = 0
	} else {
		e.Breaks = min(max(e.Breaks, 1), 9)
	}
	e.Size = max(e.Size, 0)
	at, p := c.index.lookup(uid, c.uidAt)
	if p >= 0 && c.entry(p) == e {
		return
	}
	if p < 0 {
		if len(c.items) >= maxItems {
			c.compactItems()
			if len(c.items) >= maxItems {
				// pop3 lists at most a million messages
				panic("uidcache: more than 16777214 UIDs")
			}
			c.grow()
			at, _ = c.index.lookup(uid, c.uidAt)
		}
		if c.index.full() {
			c.grow()
			at, _ = c.index.lookup(uid, c.uidAt)
		}
		p = len(c.items)
		c.items = append(c.items, item{off: c.addUID(uid), n: uint16(len(uid))})
		c.index.set(at, p)
	}
	c.setEntry(p, uid, e.Seen.Unix(), e.State, e.Breaks, e.Size)
	c.dirty = true
}

// grow makes room in the index for more UIDs.
func (c *Cache) grow() {
	c.index.reset(2 * len(c.items))
	for i := range c.items {
		if c.items[i].state != 0 {
			uid := c.uidAt(i)
			at, _ := c.index.lookup(uid, c.uidAt)
			c.index.set(at, i)
		}
	}
}

// Delete forgets a UID.
func (c *Cache) Delete(uid string) {
	at, p := c.index.lookup(uid, c.uidAt)
	if p < 0 {
		return
	}
	c.index.remove(at)
	c.items[p].state = 0
	c.removed++
	c.dirty = true
}

// Each calls fn for every UID in the cache, in the order they were first
// recorded; fn may Delete the UID it is given.
func (c *Cache) Each(fn func(uid string, e Entry)) {
	for i := range c.items {
		if c.items[i].state != 0 {
			fn(c.uidAt(i), c.entry(i))
		}
	}
}

// UIDs returns every UID in the cache, sorted.
func (c *Cache) UIDs() []string {
	uids := make([]string, 0, c.Len())
	c.Each(func(uid string, _ Entry) { uids = append(uids, uid) })
	sort.Strings(uids)
	return uids
}

// Dirty reports whether the cache changed since it was loaded or saved.
func (c *Cache) Dirty() bool { return c.dirty }

// Save writes the cache atomically: a temporary file in the same directory
// (mode 0600), fsynced, renamed over the cache, and the directory fsynced.
// The directory is created with mode 0700 if missing.
func (c *Cache) Save() error {
	if err := c.Snapshot().Write(); err != nil {
		c.dirty = true
		return err
	}
	return nil
}

// SaveReserving saves the cache as Save does, padded with a comment line
// as long as n more entries would make it: it proves, before a run
// delivers n messages, that the cache can be saved with them, on a file
// system that is neither full nor read-only (CONTRACT §5).
func (c *Cache) SaveReserving(n int) error {
	s := c.Snapshot()
	s.reserve = min(n, 1<<20) * reservePerEntry
	if err := s.Write(); err != nil {
		c.dirty = true
		return err
	}
	return nil
}

// reservePerEntry is the room SaveReserving keeps per entry: a UID of
// RFC 1939's 70 characters, the time, the state and the separators.
const reservePerEntry = 96

// Snapshot is the cache's contents at one moment, ready to be written
// while the cache goes on changing: the slow part of a save (formatting
// the lines, the writes and fsyncs) can run in another goroutine.
type Snapshot struct {
	fs      vfs.FS
	path    string
	key     string
	items   []item           // a copy of the cache's, live items only
	text    string           // the UIDs: what the cache appends later is not in it
	big     map[string]int64 // a copy of the cache's
	reserve int              // octets of comment lines to add (SaveReserving)
}

// Snapshot captures the cache as it is now, and marks it clean: a caller
// whose Write of the snapshot fails must call MarkDirty. It copies the
// entries' 16-byte records and shares the UIDs (the cache only ever adds
// to them): Write formats the lines.
func (c *Cache) Snapshot() *Snapshot {
	if c.removed > len(c.items)/2 {
		c.compactItems()
		c.grow()
	}
	items := make([]item, 0, len(c.items)-c.removed)
	for _, it := range c.items {
		if it.state != 0 {
			items = append(items, it)
		}
	}
	c.dirty = false
	return &Snapshot{fs: c.fs, path: c.path, key: c.key, items: items, text: c.text, big: maps.Clone(c.big)}
}

// writeTo writes the file's lines: a line per UID, in the order the UIDs
// were first recorded; lines recorded in the same second share the
// formatting of their time.
func (s *Snapshot) writeTo(w *bufio.Writer) error {
	fmt.Fprintf(w, "# popfetch UID cache v1: %s\n", encodeUID(s.key))
	w.WriteString("# UID\tfirst seen (UTC)\tstate: R retrieved, D deleted (awaiting QUIT), S skipped, " +
		"Bn broke n sessions, Q quarantined\tsize as listed\n")
	var b, when []byte
	var seen uint32
	for i := range s.items {
		it := &s.items[i]
		if it.seen != seen || when == nil {
			seen = it.seen
			when = time.Unix(int64(seen), 0).UTC().AppendFormat(when[:0], time.RFC3339)
		}
		uid := s.text[it.off : it.off+uint32(it.n)]
		b = appendEncoded(b[:0], uid)
		b = append(b, '\t')
		b = append(b, when...)
		b = append(b, '\t', byte(it.state))
		if it.state == Broken {
			b = append(b, '0'+it.breaks)
		}
		if it.size > 0 {
			b = append(b, '\t')
			size := int64(it.size)
			if it.size == bigSize {
				size = s.big[uid]
			}
			b = strconv.AppendInt(b, size, 10)
		}
		b = append(b, '\n')
		w.Write(b)
	}
	// comment lines of 64 bytes, well within what Open reads as a line
	line := "# room for the entries of a run " + strings.Repeat(".", 31) + "\n"
	for pad := s.reserve; pad > 0; pad -= len(line) {
		w.WriteString(line)
	}
	return w.Flush()
}

// MarkDirty marks the cache as changed since it was last saved.
func (c *Cache) MarkDirty() { c.dirty = true }

// Write replaces the cache file with the snapshot atomically, as Save
// does. It may be called from any goroutine.
func (s *Snapshot) Write() error {
	dir := filepath.Dir(s.path)
	if _, err := vfs.MkdirAll(s.fs, dir, 0o700); err != nil {
		return fmt.Errorf("uidcache: %w", err)
	}
	f, tmp, err := s.createTemp(dir)
	if err != nil {
		return fmt.Errorf("uidcache: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		s.fs.Remove(tmp)
		return fmt.Errorf("uidcache: writing %s: %w", s.path, err)
	}
	if err := s.writeTo(bufio.NewWriterSize(f, 64<<10)); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		s.fs.Remove(tmp)
		return fmt.Errorf("uidcache: writing %s: %w", s.path, err)
	}
	if err := s.fs.Rename(tmp, s.path); err != nil {
		s.fs.Remove(tmp)
		return fmt.Errorf("uidcache: %w", err)
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("uidcache: syncing %s: %w", dir, err)
	}
	return nil
}

// createTemp creates a new file (mode 0600) for the snapshot in dir, under
// a name no other file has.
func (s *Snapshot) createTemp(dir string) (vfs.File, string, error) {
	for {
		var r [6]byte
		rand.Read(r[:])
		tmp := filepath.Join(dir, ".tmp-"+filepath.Base(s.path)+"-"+hex.EncodeToString(r[:]))
		f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, tmp, err
		}
	}
}

const hexDigits = "0123456789ABCDEF"

// EncodeUID returns a UID as the cache file writes it: itself when it is
// printable ASCII without spaces or '%', else with every other byte (and
// '%') as %XX; the empty UID is a lone "%". The result holds no space,
// tab or line break, so it can be shown and typed back safely.
func EncodeUID(uid string) string { return encodeUID(uid) }

// DecodeUID undoes EncodeUID. It fails on a malformed escape.
func DecodeUID(s string) (string, error) { return decodeUID(s) }

// encodeUID writes a UID as itself when it is printable ASCII without
// spaces, and escapes every other byte, and '%', as %XX. A leading '#' is
// escaped too: the line would read as a comment, and the UID be forgotten.
func encodeUID(uid string) string {
	if cleanUID(uid) {
		return uid
	}
	return string(appendEncoded(nil, uid))
}

// cleanUID reports whether a UID is written as itself.
func cleanUID(uid string) bool {
	if uid == "" || uid[0] == '#' {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if b := uid[i]; b < 0x21 || b > 0x7e || b == '%' {
			return false
		}
	}
	return true
}

// appendEncoded appends the encoding of a UID (see encodeUID).
func appendEncoded(b []byte, uid string) []byte {
	if cleanUID(uid) {
		return append(b, uid...)
	}
	if uid == "" {
		return append(b, '%') // the empty UID; no valid encoding is a lone %
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if c < 0x21 || c > 0x7e || c == '%' || (i == 0 && c == '#') {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}

func decodeUID(s string) (string, error) {
	var b strings.Builder
	if err := appendDecoded(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// appendDecoded appends the UID that s encodes (see encodeUID).
func appendDecoded(b *strings.Builder, s []byte) error {
	if len(s) == 1 && s[0] == '%' {
		return nil // the empty UID
	}
	if bytes.IndexByte(s, '%') < 0 {
		if len(s) == 0 {
			return errors.New("empty UID")
		}
		b.Write(s)
		return nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return fmt.Errorf("bad escape in UID %q", s)
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return fmt.Errorf("bad escape in UID %q", s)
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// escapeName makes a key safe as a file name.
func escapeName(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.' && i > 0, c == '_', c == '@', c == '+', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

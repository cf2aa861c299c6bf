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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/durable"
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
// Each entry keeps its line of the file, so that a Snapshot (taken for
// every batch a run records) copies lines rather than formatting and
// sorting the whole cache: the file lists UIDs in the order they were
// first recorded.
type Cache struct {
	path    string
	key     string
	entries map[string]*item
	order   []*item // in file order; may hold removed items
	removed int     // removed items still in order
	dirty   bool
}

// item is an entry and its line in the file.
type item struct {
	Entry
	line    string // "UID\ttime\tstate\n"
	removed bool
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

// Open loads the cache of key from the state directory dir. A missing file
// is an empty cache; the file is only written by Save.
func Open(dir, key string) (*Cache, error) {
	c := &Cache{path: filepath.Join(dir, FileName(key)), key: key, entries: map[string]*item{}}
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("uidcache: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		uid, e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("uidcache: %s:%d: %w", c.path, n, err)
		}
		if it, ok := c.entries[uid]; ok { // a UID twice: the last line wins
			it.Entry, it.line = e, line+"\n"
			continue
		}
		it := &item{Entry: e, line: line + "\n"}
		c.entries[uid] = it
		c.order = append(c.order, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("uidcache: reading %s: %w", c.path, err)
	}
	return c, nil
}

func parseLine(line string) (string, Entry, error) {
	f := strings.Split(line, "\t")
	if len(f) < 3 || len(f) > 4 || len(f[2]) < 1 || len(f[2]) > 2 {
		return "", Entry{}, errors.New("malformed line: want UID, time, state and size separated by tabs")
	}
	uid, err := decodeUID(f[0])
	if err != nil {
		return "", Entry{}, err
	}
	seen, err := time.Parse(time.RFC3339, f[1])
	if err != nil {
		return "", Entry{}, fmt.Errorf("bad time %q", f[1])
	}
	st := State(f[2][0])
	if !st.valid() {
		return "", Entry{}, fmt.Errorf("bad state %q", f[2])
	}
	e := Entry{Seen: seen, State: st}
	switch {
	case st == Broken && len(f[2]) == 2 && '1' <= f[2][1] && f[2][1] <= '9':
		e.Breaks = int(f[2][1] - '0')
	case len(f[2]) != 1:
		return "", Entry{}, fmt.Errorf("bad state %q", f[2])
	}
	if len(f) == 4 {
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || size <= 0 {
			return "", Entry{}, fmt.Errorf("bad size %q", f[3])
		}
		e.Size = size
	}
	return uid, e, nil
}

// Path returns the cache file's path.
func (c *Cache) Path() string { return c.path }

// Key returns the mailbox key the cache belongs to.
func (c *Cache) Key() string { return c.key }

// Len returns the number of UIDs in the cache.
func (c *Cache) Len() int { return len(c.entries) }

// Get returns the entry of a UID.
func (c *Cache) Get(uid string) (Entry, bool) {
	it, ok := c.entries[uid]
	if !ok {
		return Entry{}, false
	}
	return it.Entry, true
}

// Put records a UID. Seen is truncated to the second; Breaks is kept
// within 1 to 9 for Broken, and 0 otherwise.
func (c *Cache) Put(uid string, e Entry) {
	e.Seen = e.Seen.UTC().Truncate(time.Second)
	if e.State != Broken {
		e.Breaks = 0
	} else {
		e.Breaks = min(max(e.Breaks, 1), 9)
	}
	e.Size = max(e.Size, 0)
	it, ok := c.entries[uid]
	if ok && it.Entry == e {
		return
	}
	if !ok {
		it = &item{}
		c.entries[uid] = it
		c.order = append(c.order, it)
	}
	it.Entry, it.line = e, formatLine(uid, e)
	c.dirty = true
}

// Delete forgets a UID.
func (c *Cache) Delete(uid string) {
	if it, ok := c.entries[uid]; ok {
		delete(c.entries, uid)
		it.removed = true
		c.removed++
		c.dirty = true
	}
}

// Each calls fn for every UID in the cache, in no particular order; fn may
// Delete the UID it is given.
func (c *Cache) Each(fn func(uid string, e Entry)) {
	for uid, it := range c.entries {
		fn(uid, it.Entry)
	}
}

// UIDs returns every UID in the cache, sorted.
func (c *Cache) UIDs() []string {
	uids := make([]string, 0, len(c.entries))
	for uid := range c.entries {
		uids = append(uids, uid)
	}
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
	// comment lines of 64 bytes, well within what Open reads as a line
	line := "# room for the entries of a run " + strings.Repeat(".", 31) + "\n"
	for pad := min(n, 1<<20) * reservePerEntry; pad > 0; pad -= len(line) {
		s.data = append(s.data, line...)
	}
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
// while the cache goes on changing: the slow part of a save (the writes
// and fsyncs) can run in another goroutine.
type Snapshot struct {
	path string
	data []byte
}

// Snapshot captures the cache as it is now, and marks it clean: a caller
// whose Write of the snapshot fails must call MarkDirty. It copies each
// entry's line, in the order the UIDs were first recorded.
func (c *Cache) Snapshot() *Snapshot {
	if c.removed > len(c.order)/2 {
		live := c.order[:0]
		for _, it := range c.order {
			if !it.removed {
				live = append(live, it)
			}
		}
		clear(c.order[len(live):])
		c.order, c.removed = live, 0
	}
	var b bytes.Buffer
	b.Grow(128 + 48*len(c.entries))
	fmt.Fprintf(&b, "# popfetch UID cache v1: %s\n", encodeUID(c.key))
	fmt.Fprintf(&b, "# UID\tfirst seen (UTC)\tstate: R retrieved, D deleted (awaiting QUIT), S skipped, "+
		"Bn broke n sessions, Q quarantined\tsize as listed\n")
	for _, it := range c.order {
		if !it.removed {
			b.WriteString(it.line)
		}
	}
	c.dirty = false
	return &Snapshot{path: c.path, data: b.Bytes()}
}

// formatLine is an entry's line in the file.
func formatLine(uid string, e Entry) string {
	state := string(rune(e.State))
	if e.State == Broken {
		state += string(rune('0' + e.Breaks))
	}
	line := encodeUID(uid) + "\t" + e.Seen.UTC().Format(time.RFC3339) + "\t" + state
	if e.Size > 0 {
		line += "\t" + strconv.FormatInt(e.Size, 10)
	}
	return line + "\n"
}

// MarkDirty marks the cache as changed since it was last saved.
func (c *Cache) MarkDirty() { c.dirty = true }

// Write replaces the cache file with the snapshot atomically, as Save
// does. It may be called from any goroutine.
func (s *Snapshot) Write() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("uidcache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(s.path)+"-*")
	if err != nil {
		return fmt.Errorf("uidcache: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("uidcache: writing %s: %w", s.path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(s.data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("uidcache: writing %s: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("uidcache: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("uidcache: syncing %s: %w", dir, err)
	}
	return nil
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
	clean := !strings.HasPrefix(uid, "#")
	for i := 0; i < len(uid); i++ {
		if b := uid[i]; b < 0x21 || b > 0x7e || b == '%' {
			clean = false
			break
		}
	}
	if clean && uid != "" {
		return uid
	}
	var b strings.Builder
	if uid == "" {
		return "%" // the empty UID; no valid encoding is a lone %
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if c < 0x21 || c > 0x7e || c == '%' || (i == 0 && c == '#') {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func decodeUID(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	if !strings.Contains(s, "%") {
		if s == "" {
			return "", errors.New("empty UID")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in UID %q", s)
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("bad escape in UID %q", s)
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), nil
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

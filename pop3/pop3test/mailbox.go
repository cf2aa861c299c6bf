package pop3test

import (
	"bytes"
	"fmt"
	"sync"
)

// Message is a message in a Mailbox.
type Message struct {
	UID  string
	Data []byte // as added: LF or CRLF line endings, any bytes
	wire []byte // CRLF line endings, byte-stuffed, without the terminator
	size int64  // size for LIST: CRLF line endings, not stuffed
}

// Size returns the size the server lists for the message.
func (m *Message) Size() int64 { return m.size }

// Mailbox is the maildrop of one user. It is safe for concurrent use; the
// server locks it for the length of a session (RFC 1939 §4).
type Mailbox struct {
	// ReuseUIDs gives a message added by Add the UID of a message removed
	// before, the longest-removed first, when there is one: a server that
	// breaks RFC 1939 §7's "should never reuse" (some reset a counter).
	// Set it before adding messages.
	ReuseUIDs bool

	mu      sync.Mutex
	msgs    []*Message
	nextID  int
	inUse   bool
	removed []Removal
	free    []string // UIDs of removed messages, for ReuseUIDs
	prefix  string   // of every UID Add gives, after RenameUIDs
	rename  string   // pending RenameUIDs prefix, applied at the next lock
}

// Add appends a message with a generated UID and returns the UID.
func (mb *Mailbox) Add(data []byte) string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var uid string
	if mb.ReuseUIDs && len(mb.free) > 0 {
		uid, mb.free = mb.free[0], mb.free[1:]
	} else {
		mb.nextID++
		uid = fmt.Sprintf("%spt%08d", mb.prefix, mb.nextID)
	}
	mb.msgs = append(mb.msgs, newMessage(uid, data))
	return uid
}

// AddWithUID appends a message with the given UID, which may be anything,
// even a duplicate or a UID breaking RFC 1939's rules.
func (mb *Mailbox) AddWithUID(uid string, data []byte) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.msgs = append(mb.msgs, newMessage(uid, data))
}

// Messages returns the messages on the server, in order.
func (mb *Mailbox) Messages() []*Message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]*Message(nil), mb.msgs...)
}

// Len returns the number of messages on the server.
func (mb *Mailbox) Len() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return len(mb.msgs)
}

// Removed returns the messages removed so far, in the order of their
// removal (see Removal).
func (mb *Mailbox) Removed() []Removal {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]Removal(nil), mb.removed...)
}

// RenameUIDs changes the UID scheme, as a server migration does: from the
// next session on, every message's UID is prefix followed by its old UID,
// and so is every UID Add gives. Sessions already running see the old
// UIDs to their end.
func (mb *Mailbox) RenameUIDs(prefix string) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.rename = prefix + mb.rename
}

// lock takes the maildrop for a session; false if another session has it.
func (mb *Mailbox) lock() ([]*Message, bool) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.inUse {
		return nil, false
	}
	mb.inUse = true
	if mb.rename != "" {
		for _, m := range mb.msgs {
			m.UID = mb.rename + m.UID
		}
		mb.prefix = mb.rename + mb.prefix
		mb.rename, mb.free = "", nil
	}
	return append([]*Message(nil), mb.msgs...), true
}

// unlock releases the maildrop; if commit, it removes the messages of
// gone, recording the session that removed them and why.
func (mb *Mailbox) unlock(session int, gone map[*Message]RemovalReason, commit bool) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.inUse = false
	if !commit || len(gone) == 0 {
		return
	}
	kept := mb.msgs[:0]
	for _, m := range mb.msgs {
		why, ok := gone[m]
		if !ok {
			kept = append(kept, m)
			continue
		}
		mb.removed = append(mb.removed, Removal{Message: m, UID: m.UID, Session: session, Reason: why})
		if why != RemovedHidden {
			mb.free = append(mb.free, m.UID)
		}
	}
	for i := len(kept); i < len(mb.msgs); i++ {
		mb.msgs[i] = nil
	}
	mb.msgs = kept
}

func newMessage(uid string, data []byte) *Message {
	m := &Message{UID: uid, Data: data}
	var w bytes.Buffer
	w.Grow(len(data) + len(data)/32 + 8)
	rest := data
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		m.size += int64(len(line)) + 2
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	m.wire = w.Bytes()
	return m
}

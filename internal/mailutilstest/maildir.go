package mailutilstest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// UIDHeader is the header field Populate adds to each message: pop3d
// answers UIDL with its value.
const UIDHeader = "X-UIDL"

// inbox is user's Maildir, or a failed test if user is unknown.
func (s *Server) inbox(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.users[user] {
		s.t.Fatalf("mailutilstest: unknown user %q (WithUser it)", user)
	}
	return filepath.Join(s.dir, "home", user, "INBOX")
}

// Populate delivers msgs to user's Maildir the way an MDA does (write into
// tmp/, rename into new/), in order, each with an X-UIDL field added at the
// end of its header, and returns their UIDs ("mu-" and a number, unique in
// the server). Messages with LF line endings are what pop3d expects; each
// must have a header ended by an empty line. It may be called between
// sessions: a session sees the messages present when it logged in, in the
// order they were added.
func (s *Server) Populate(user string, msgs [][]byte) []string {
	s.t.Helper()
	md := s.inbox(user)
	uids := make([]string, len(msgs))
	for i, m := range msgs {
		name, uid := s.nextName()
		data, err := withUID(m, uid)
		if err != nil {
			s.t.Fatalf("mailutilstest: Populate: message %d: %v", i, err)
		}
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			s.t.Fatalf("mailutilstest: Populate: %v", err)
		}
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			s.t.Fatalf("mailutilstest: Populate: %v", err)
		}
		uids[i] = uid
	}
	return uids
}

// withUID returns m with "X-UIDL: uid" as the last field of its header.
func withUID(m []byte, uid string) ([]byte, error) {
	end := -1 // where the empty line that ends the header starts
	switch {
	case bytes.HasPrefix(m, []byte("\n")), bytes.HasPrefix(m, []byte("\r\n")):
		end = 0
	default:
		i := bytes.Index(m, []byte("\n\n"))
		j := bytes.Index(m, []byte("\n\r\n"))
		if i < 0 || (j >= 0 && j < i) {
			i = j
		}
		if i >= 0 {
			end = i + 1
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("no empty line ends its header")
	}
	eol := "\n"
	if end > 1 && m[end-2] == '\r' {
		eol = "\r\n"
	}
	out := make([]byte, 0, len(m)+len(uid)+12)
	out = append(out, m[:end]...)
	out = append(out, UIDHeader+": "+uid+eol...)
	return append(out, m[end:]...), nil
}

// nextName returns a unique Maildir base name whose leading time (seconds,
// then microseconds) increases with each message, so that pop3d numbers
// the messages in the order they were added, and the message's UID.
func (s *Server) nextName() (name, uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := time.Now().Truncate(time.Microsecond)
	if !ts.After(s.last) {
		ts = s.last.Add(time.Microsecond)
	}
	s.last = ts
	s.seq++
	return fmt.Sprintf("%d.M%06dP%dQ%d.mailutilstest", ts.Unix(), ts.Nanosecond()/1000, os.Getpid(), s.seq),
		fmt.Sprintf("mu-%d", s.seq)
}

// storedMessage is a file of a Maildir.
type storedMessage struct {
	base string // the name as Populate gave it, without pop3d's suffixes
	path string
}

// list returns user's messages in new/ and cur/, in the order they were
// added. pop3d renames the files it has seen (NAME,a=…,u=N:2,FLAGS).
func (s *Server) list(user string) []storedMessage {
	s.t.Helper()
	md := s.inbox(user)
	var msgs []storedMessage
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			s.t.Fatalf("mailutilstest: %v", err)
		}
		for _, e := range ents {
			base, _, _ := strings.Cut(e.Name(), ",")
			base, _, _ = strings.Cut(base, ":")
			msgs = append(msgs, storedMessage{base: base, path: filepath.Join(md, sub, e.Name())})
		}
	}
	slices.SortFunc(msgs, func(a, b storedMessage) int { return strings.Compare(a.base, b.base) })
	return msgs
}

// Count returns how many messages user's Maildir holds.
func (s *Server) Count(user string) int {
	s.t.Helper()
	return len(s.list(user))
}

// Messages returns user's messages as stored (with their X-UIDL field),
// which is what RETR sends once its line endings are CRLF and its dots
// stuffed, in the order they were added.
func (s *Server) Messages(user string) [][]byte {
	s.t.Helper()
	var out [][]byte
	for _, m := range s.list(user) {
		b, err := os.ReadFile(m.path)
		if err != nil {
			s.t.Fatalf("mailutilstest: %v", err)
		}
		out = append(out, b)
	}
	return out
}

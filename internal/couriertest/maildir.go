package couriertest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Maildir is the path of user's Maildir, or a failed test if user is
// unknown.
func (s *Server) Maildir(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.users[user] {
		s.t.Fatalf("couriertest: unknown user %q (WithUser it)", user)
	}
	return filepath.Join(s.dir, "home", user, "Maildir")
}

// Populate delivers msgs to user's Maildir the way an MDA does (write into
// tmp/, rename into new/), in order. Each is stored as given, which is what
// RETR sends once each LF is CRLF, its dots stuffed and, when its last line
// has no LF, CRLF added; a message must therefore use LF line endings
// (courierpop3d would send a stored CRLF as CR CR LF): one that holds CRLF
// fails the test. It may be called between sessions: a session sees the
// messages present when it logged in, in the order they were added.
// Courier gives each message its UID ("UID<n>-<uidvalidity>") in the first
// session that sees it.
func (s *Server) Populate(user string, msgs [][]byte) {
	s.t.Helper()
	md := s.Maildir(user)
	for i, m := range msgs {
		if bytes.Contains(m, []byte("\r\n")) {
			s.t.Fatalf("couriertest: Populate: message %d has CRLF line endings; a Maildir holds LF", i)
		}
		name := s.nextName()
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, m, 0o600); err != nil {
			s.t.Fatalf("couriertest: Populate: %v", err)
		}
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			s.t.Fatalf("couriertest: Populate: %v", err)
		}
	}
}

// nextName returns a unique Maildir base name whose leading time (seconds,
// then microseconds in fixed width) increases with each message: Courier
// numbers messages by the number their name starts with, then by name.
func (s *Server) nextName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := time.Now().Truncate(time.Microsecond)
	if !ts.After(s.last) {
		ts = s.last.Add(time.Microsecond)
	}
	s.last = ts
	s.seq++
	return fmt.Sprintf("%d.M%06dP%dQ%d.couriertest", ts.Unix(), ts.Nanosecond()/1000, os.Getpid(), s.seq)
}

// waitSessions waits (at most 10 s) until no session runs: courierpop3d
// answers QUIT first and removes the deleted messages afterwards, so a
// client may be gone before its deletions are done.
func (s *Server) waitSessions() {
	if s.ns == "" {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if !sessionsRunning(s.ns) {
			return
		}
	}
}

// storedMessage is a message file of a Maildir.
type storedMessage struct {
	base string // the name Populate gave it, without Courier's ":2,S"
	path string
}

// list returns user's messages in new/ and cur/ in the order they were
// added. courierpop3d moves new/ files to cur/ at login and adds ":2,S"
// to the name of a message it sent by RETR.
func (s *Server) list(user string) []storedMessage {
	s.t.Helper()
	md := s.Maildir(user)
	s.waitSessions()
	var msgs []storedMessage
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			s.t.Fatalf("couriertest: %v", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			msgs = append(msgs, storedMessage{base: base, path: filepath.Join(md, sub, e.Name())})
		}
	}
	slices.SortFunc(msgs, func(a, b storedMessage) int { return strings.Compare(a.base, b.base) })
	return msgs
}

// Count returns how many messages user's Maildir holds once no session
// runs (it waits at most 10 s for that).
func (s *Server) Count(user string) int {
	s.t.Helper()
	return len(s.list(user))
}

// Messages returns user's messages as stored, in the order they were
// added, once no session runs (as Count): what Populate was given, for
// the messages still there.
func (s *Server) Messages(user string) [][]byte {
	s.t.Helper()
	var out [][]byte
	for _, m := range s.list(user) {
		b, err := os.ReadFile(m.path)
		if err != nil {
			s.t.Fatalf("couriertest: %v", err)
		}
		out = append(out, b)
	}
	return out
}

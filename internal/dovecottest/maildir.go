package dovecottest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AddUser creates a user (or changes its password) with an empty Maildir.
// It works while the server runs. Any password works (passwords are stored
// base64-encoded), but the name must be made of letters, digits and
// ". _ @ -" and not start with a dot.
//
// Changing the password of an existing user on a running server takes up to
// a second: dovecot looks at a passwd-file at most once a second, so
// AddUser waits for the next second to begin.
func (s *Server) AddUser(name, password string) {
	s.t.Helper()
	if !userRE.MatchString(name) {
		s.t.Fatalf("dovecottest: bad user name %q (use letters, digits and . _ @ -, not starting with a dot)", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	md := s.maildirLocked(name)
	for _, p := range []string{filepath.Dir(md), md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
		if err := os.Mkdir(p, 0o700); err != nil && !os.IsExist(err) {
			s.t.Fatalf("dovecottest: AddUser: %v", err)
		}
		if err := s.chown(p); err != nil {
			s.t.Fatalf("dovecottest: AddUser: %v", err)
		}
	}
	old, existed := s.users[name]
	s.users[name] = password
	if err := s.writeUserLocked(name); err != nil {
		s.t.Fatalf("dovecottest: AddUser: %v", err)
	}
	if existed && old != password && s.cmd != nil {
		now := time.Now()
		time.Sleep(time.Until(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	}
}

// writeUserLocked replaces the user's passwd-file atomically: one line
// user:{PLAIN.b64}password:uid:gid:gecos:home:shell: with uid/gid left empty
// (mail_uid/mail_gid apply).
func (s *Server) writeUserLocked(name string) error {
	line := fmt.Sprintf("%s:{PLAIN.b64}%s:::%s:%s::\n", name,
		base64.StdEncoding.EncodeToString([]byte(s.users[name])), "dovecottest user", filepath.Dir(s.maildirLocked(name)))
	path := filepath.Join(s.dir, "passwd", name)
	tmp := filepath.Join(s.dir, "passwd", ".tmp-"+name) // no user name starts with a dot
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return err
	}
	// dovecot re-reads a passwd-file when its st_mtime (seconds) or size
	// changed: make sure the mtime does.
	mt := time.Now()
	if st, err := os.Stat(path); err == nil && !mt.Truncate(time.Second).After(st.ModTime()) {
		mt = st.ModTime().Truncate(time.Second).Add(time.Second)
	}
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Maildir is the path of user's Maildir on the server.
func (s *Server) Maildir(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maildirLocked(user)
}

func (s *Server) maildirLocked(user string) string {
	return filepath.Join(s.dir, "mail", user, "Maildir")
}

func (s *Server) knownUser(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[user]; !ok {
		s.t.Fatalf("dovecottest: unknown user %q (AddUser it first)", user)
	}
	return s.maildirLocked(user)
}

// Populate delivers msgs to user's Maildir the way an MDA does (write into
// tmp/, rename into new/), in order. The bytes are stored as given;
// messages with LF line endings are what dovecot expects. It may be called
// while the server runs and between sessions: a session sees the messages
// present when it logged in, and every message added gets a new, higher UID
// (so a new UIDL) in the order of msgs.
func (s *Server) Populate(user string, msgs [][]byte) {
	s.t.Helper()
	md := s.knownUser(user)
	for _, m := range msgs {
		name := s.nextName(m)
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, m, 0o600); err != nil {
			s.t.Fatalf("dovecottest: Populate: %v", err)
		}
		if err := s.chown(tmp); err != nil {
			s.t.Fatalf("dovecottest: Populate: %v", err)
		}
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			s.t.Fatalf("dovecottest: Populate: %v", err)
		}
	}
}

// nextName returns a unique Maildir base name. Dovecot assigns UIDs to new
// files in the order of the time (seconds, then M microseconds) in their
// names, so the time is made strictly increasing. S= (file size) and W=
// (size with every bare LF counted as CRLF, what LIST reports) save dovecot
// reading each file to learn its sizes.
func (s *Server) nextName(m []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := time.Now().Truncate(time.Microsecond)
	if !ts.After(s.lastTS) {
		ts = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = ts
	s.seq++
	vsize := len(m) + bytes.Count(m, []byte("\n")) - bytes.Count(m, []byte("\r\n"))
	return fmt.Sprintf("%d.M%dP%dQ%d.dovecottest,S=%d,W=%d",
		ts.Unix(), ts.Nanosecond()/1000, os.Getpid(), s.seq, len(m), vsize)
}

// SetSieve makes script user's Sieve script (RFC 5228; Pigeonhole's
// extensions such as fileinto and mailbox), run by WithLMTP's LMTP on
// every message delivered to user; "" removes it. fileinto "Folder"
// creates the folder, which MessagesIn reads.
func (s *Server) SetSieve(user, script string) {
	s.t.Helper()
	md := s.knownUser(user)
	path := filepath.Join(filepath.Dir(md), "active.sieve")
	os.Remove(strings.TrimSuffix(path, ".sieve") + ".svbin")
	if script == "" {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			s.t.Fatalf("dovecottest: SetSieve: %v", err)
		}
		return
	}
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		s.t.Fatalf("dovecottest: SetSieve: %v", err)
	}
	if err := s.chown(path); err != nil {
		s.t.Fatalf("dovecottest: SetSieve: %v", err)
	}
}

// MessagesIn returns the contents of the messages in the folder of user's
// mailbox (Maildir++: the Maildir's .folder), as Messages does for the
// INBOX; none if the folder does not exist.
func (s *Server) MessagesIn(user, folder string) [][]byte {
	s.t.Helper()
	md := filepath.Join(s.knownUser(user), "."+folder)
	if _, err := os.Stat(md); os.IsNotExist(err) {
		return nil
	}
	return s.messagesOf(md)
}

// Count is the number of messages in user's Maildir (new/ and cur/) now.
func (s *Server) Count(user string) int {
	s.t.Helper()
	files, err := listMessages(s.knownUser(user))
	if err != nil {
		s.t.Fatalf("dovecottest: Count: %v", err)
	}
	return len(files)
}

// Messages returns the contents of the messages in user's Maildir, in UID
// order (as far as dovecot has assigned UIDs yet; the rest follow in the
// order they were added).
func (s *Server) Messages(user string) [][]byte {
	s.t.Helper()
	return s.messagesOf(s.knownUser(user))
}

func (s *Server) messagesOf(md string) [][]byte {
	s.t.Helper()
	files, err := listMessages(md)
	if err != nil {
		s.t.Fatalf("dovecottest: Messages: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if os.IsNotExist(err) {
			// renamed by dovecot (new/ -> cur/, flags) meanwhile: look again
			data, err = readMoved(md, f.base)
		}
		if err != nil {
			s.t.Fatalf("dovecottest: Messages: %v", err)
		}
		out = append(out, data)
	}
	return out
}

// ResetUIDs throws away dovecot's UID list and indexes of user's Maildir, as
// a server restored from a backup or migrated would: at the next login every
// message gets a new UID under a new UIDVALIDITY, so all UIDLs change. Call
// it while no session of user is open.
func (s *Server) ResetUIDs(user string) {
	s.t.Helper()
	md := s.knownUser(user)
	ents, err := os.ReadDir(md)
	if err != nil {
		s.t.Fatalf("dovecottest: ResetUIDs: %v", err)
	}
	for _, e := range ents {
		n := e.Name()
		// dovecot-uidvalidity* are kept: they make the next UIDVALIDITY differ.
		if strings.HasPrefix(n, "dovecot-uidlist") || strings.HasPrefix(n, "dovecot.index") || strings.HasPrefix(n, "dovecot.list.index") {
			if err := os.Remove(filepath.Join(md, n)); err != nil {
				s.t.Fatalf("dovecottest: ResetUIDs: %v", err)
			}
		}
	}
}

type msgFile struct {
	path, base string
	uid        uint64 // 0: not in dovecot-uidlist yet
	sec, usec  int64
}

var nameTimeRE = regexp.MustCompile(`^(\d+)\.M(\d+)`)

// listMessages lists the message files of a Maildir in UID order.
func listMessages(md string) ([]msgFile, error) {
	uids := readUIDList(filepath.Join(md, "dovecot-uidlist"))
	// new/ before cur/, keyed by base name: a message dovecot moves from
	// new/ to cur/ meanwhile is seen once or twice, but never missed.
	byBase := map[string]msgFile{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			f := msgFile{path: filepath.Join(md, sub, e.Name()), base: base, uid: uids[base]}
			if m := nameTimeRE.FindStringSubmatch(base); m != nil {
				f.sec, _ = strconv.ParseInt(m[1], 10, 64)
				f.usec, _ = strconv.ParseInt(m[2], 10, 64)
			}
			byBase[base] = f
		}
	}
	files := make([]msgFile, 0, len(byBase))
	for _, f := range byBase {
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b msgFile) int {
		switch {
		case a.uid != 0 && b.uid != 0:
			return cmpInt(a.uid, b.uid)
		case a.uid != 0:
			return -1
		case b.uid != 0:
			return 1
		}
		if c := cmpInt(a.sec, b.sec); c != 0 {
			return c
		}
		if c := cmpInt(a.usec, b.usec); c != 0 {
			return c
		}
		return strings.Compare(a.base, b.base)
	})
	return files, nil
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readUIDList parses dovecot-uidlist (version 3: a header line, then
// "UID [ext...] :filename" per message) into base name -> UID.
func readUIDList(path string) map[string]uint64 {
	m := map[string]uint64{}
	data, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	lines := strings.Split(string(data), "\n")
	for _, l := range lines[min(1, len(lines)):] {
		i := strings.Index(l, " :")
		if i < 0 {
			continue
		}
		uidStr, _, _ := strings.Cut(l[:i], " ")
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			continue
		}
		base, _, _ := strings.Cut(l[i+2:], ":")
		m[base] = uid
	}
	return m
}

func readMoved(md, base string) ([]byte, error) {
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if b, _, _ := strings.Cut(e.Name(), ":"); b == base {
				return os.ReadFile(filepath.Join(md, sub, e.Name()))
			}
		}
	}
	return nil, fmt.Errorf("message %s vanished", base)
}

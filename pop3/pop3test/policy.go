package pop3test

import (
	"errors"
	"io"
	"time"
)

// Retention says what a session that ends with QUIT does to the messages
// it retrieved, besides removing those marked by DELE. Servers differ
// here, and a client that QUITs after retrieving a message it could not
// deliver loses it on all but the first kind.
type Retention int

const (
	// RetainRetrieved is RFC 1939: QUIT removes the messages marked by
	// DELE, and no others. The zero value.
	RetainRetrieved Retention = iota
	// ExpireRetrieved removes, at QUIT, every message retrieved by RETR
	// or TOP in the session, DELE or not: RFC 2449 §6.7's EXPIRE 0, and
	// GNU mailutils pop3d with "expire 0; delete-expired true". CAPA lists
	// Server.ExpireCapa.
	ExpireRetrieved
	// HideRetrieved hides, at QUIT, every message retrieved by RETR in
	// the session from all later sessions, as Gmail's POP does; the
	// messages stay in the account (Mailbox.Removed lists them as
	// RemovedHidden). CAPA says nothing of it.
	HideRetrieved
)

// RemovalReason says why a message left the maildrop.
type RemovalReason int

const (
	// RemovedByDele: marked by DELE, removed by QUIT (RFC 1939 §6).
	RemovedByDele RemovalReason = iota + 1
	// RemovedExpired: retrieved in a session that ended with QUIT on a
	// server with ExpireRetrieved.
	RemovedExpired
	// RemovedHidden: retrieved in a session that ended with QUIT on a
	// server with HideRetrieved; kept in the account, no longer listed.
	RemovedHidden
)

func (r RemovalReason) String() string {
	switch r {
	case RemovedByDele:
		return "deleted"
	case RemovedExpired:
		return "expired"
	case RemovedHidden:
		return "hidden"
	}
	return "?"
}

// Removal is a message that left the maildrop.
type Removal struct {
	Message *Message
	UID     string // its UID when it was removed
	Session int    // the session whose QUIT removed it (see SessionLog)
	Reason  RemovalReason
}

// SessionLog is what one session did, for a checker that must tell which
// session removed what and why.
type SessionLog struct {
	// Number counts the sessions of the server from 1, in the order of
	// their connections.
	Number int
	// User is the user logged in, "" if none.
	User string
	// Commands are the command lines received, secrets included.
	Commands []string
	// Requested are the messages named by RETR or TOP, in order, whether
	// answered, refused or cut short by a fault.
	Requested []*Message
	// Retrieved are the messages answered to RETR or TOP, in order (a
	// message retrieved twice is listed twice), whether or not a fault
	// then cut the answer short.
	Retrieved []*Message
	// Updated is true once the session entered the UPDATE state (RFC
	// 1939 §6): QUIT was received after login and its removals were made,
	// whether or not its answer reached the client.
	Updated bool
	// Struck is true if the session's Faults.Net fault struck.
	Struck bool
	// End says how the session ended: "quit", "quit refused",
	// "client hung up", "dropped" (a fault or DropSessions), "closed"
	// (Server.Close), or "" while it runs.
	End string
}

// NetFault breaks the connection of a session at a given octet, as a
// network or a crashing server would (see Faults.Net). Octets are counted
// on the session's plaintext, the greeting included, across STLS.
type NetFault struct {
	// Received counts the octets received from the client; else those
	// sent to it.
	Received bool
	// After is how many octets pass in that direction before the fault.
	After int64
	// Stall, if set, makes the server send and read nothing for this
	// long once the fault strikes (Close ends it at once); then the
	// connection is dropped.
	Stall time.Duration
}

// errFault ends a session whose NetFault struck.
var errFault = errors.New("network fault")

// faultConn counts the plaintext octets of a session each way and
// strikes its NetFault. Reading and writing happen in the session's
// goroutine only.
type faultConn struct {
	ss       *session
	fault    *NetFault
	sent     int64
	received int64
	struck   bool
}

// reader and writer wrap rw, which changes at STLS; the counts go on.
func (fc *faultConn) reader(r io.Reader) io.Reader { return faultReader{fc, r} }
func (fc *faultConn) writer(w io.Writer) io.Writer { return faultWriter{fc, w} }

type faultReader struct {
	fc *faultConn
	r  io.Reader
}

func (fr faultReader) Read(p []byte) (int, error) {
	fc := fr.fc
	if fc.struck {
		return 0, errFault
	}
	if f := fc.fault; f != nil && f.Received {
		left := f.After - fc.received
		if left <= 0 {
			return 0, fc.strike()
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := fr.r.Read(p)
	fc.received += int64(n)
	return n, err
}

type faultWriter struct {
	fc *faultConn
	w  io.Writer
}

func (fw faultWriter) Write(p []byte) (int, error) {
	fc := fw.fc
	if fc.struck {
		return 0, errFault
	}
	f := fc.fault
	if f == nil || f.Received || fc.sent+int64(len(p)) <= f.After {
		n, err := fw.w.Write(p)
		fc.sent += int64(n)
		return n, err
	}
	head := max(f.After-fc.sent, 0)
	n, err := fw.w.Write(p[:head])
	fc.sent += int64(n)
	if err != nil {
		return n, err
	}
	return n, fc.strike()
}

// strike stalls as the fault says, then drops the connection.
func (fc *faultConn) strike() error {
	fc.struck = true
	fc.ss.srv.mu.Lock()
	fc.ss.log.Struck = true
	fc.ss.srv.mu.Unlock()
	if d := fc.fault.Stall; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-fc.ss.srv.done:
			t.Stop()
		}
	}
	fc.ss.conn.Close()
	return errFault
}

// DropSessions drops every open session at once, committing nothing, as
// when the network between client and server fails or the client's
// machine dies: a QUIT that arrives, or is being answered, after the
// call has no effect. The server goes on accepting connections.
func (s *Server) DropSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped++
	for c := range s.conns {
		c.Close()
	}
}

// Log returns what every session did so far, in order (see SessionLog).
func (s *Server) Log() []SessionLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionLog, len(s.logs))
	for i, l := range s.logs {
		out[i] = *l
		out[i].Commands = append([]string(nil), l.Commands...)
		out[i].Requested = append([]*Message(nil), l.Requested...)
		out[i].Retrieved = append([]*Message(nil), l.Retrieved...)
	}
	return out
}

// logCommand adds a command line to the session's log.
func (ss *session) logCommand(line string) {
	s := ss.srv
	s.mu.Lock()
	s.received = append(s.received, line)
	ss.log.Commands = append(ss.log.Commands, line)
	s.mu.Unlock()
}

// requested logs a message named by RETR or TOP.
func (ss *session) requested(m *Message) {
	ss.srv.mu.Lock()
	ss.log.Requested = append(ss.log.Requested, m)
	ss.srv.mu.Unlock()
}

// retrieved logs a message sent in answer to RETR or TOP.
func (ss *session) retrieved(cmd string, m *Message) {
	s := ss.srv
	s.mu.Lock()
	ss.log.Retrieved = append(ss.log.Retrieved, m)
	s.mu.Unlock()
	if ss.retr == nil {
		ss.retr = map[*Message]bool{}
	}
	// Gmail hides what RETR sent; EXPIRE 0 also counts TOP.
	if cmd == "RETR" || ss.srv.Retention == ExpireRetrieved {
		ss.retr[m] = true
	}
}

// ended records how the session ended, unless already said.
func (ss *session) ended(how string) {
	s := ss.srv
	s.mu.Lock()
	if ss.log.End == "" {
		ss.log.End = how
	}
	s.mu.Unlock()
}

// endedByFault records the end of a session whose connection failed:
// "dropped" if a NetFault or DropSessions did it, "closed" if Close did,
// else "client hung up".
func (ss *session) endedByFault() {
	s := ss.srv
	s.mu.Lock()
	how := "client hung up"
	switch {
	case ss.fc.struck || ss.dropped != s.dropped:
		how = "dropped"
	case s.closed:
		how = "closed"
	}
	s.mu.Unlock()
	ss.ended(how)
}

// update enters the UPDATE state at QUIT (RFC 1939 §6): it removes the
// messages marked by DELE, and those retrieved if the server's Retention
// says so, and unlocks the maildrop. It reports false, removing nothing,
// if DropSessions dropped the session first.
func (ss *session) update() bool {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.dropped != s.dropped {
		return false
	}
	gone := map[*Message]RemovalReason{}
	for m := range ss.retr {
		switch s.Retention {
		case ExpireRetrieved:
			gone[m] = RemovedExpired
		case HideRetrieved:
			gone[m] = RemovedHidden
		}
	}
	for m := range ss.deleted {
		gone[m] = RemovedByDele
	}
	ss.user.Mailbox.unlock(ss.log.Number, gone, true)
	ss.log.Updated = true
	ss.authed = false
	return true
}

// expireCapa is the CAPA line of ExpireRetrieved.
func (s *Server) expireCapa() string {
	if s.ExpireCapa != "" {
		return s.ExpireCapa
	}
	return "EXPIRE 0"
}

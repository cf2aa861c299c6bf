package mailutilstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// End says how Session ends a session.
type End int

const (
	// Quit ends the session with QUIT: pop3d enters the UPDATE state and
	// removes what was marked by DELE, and what was retrieved.
	Quit End = iota
	// Hangup closes the connection without QUIT: nothing changes.
	Hangup
)

// Reply is the answer to one command: its status line, and for a
// multi-line answer the lines that follow, dot-unstuffed, without the
// final ".".
type Reply struct {
	Status string
	Lines  []string
}

// OK reports whether the status is +OK.
func (r Reply) OK() bool { return strings.HasPrefix(r.Status, "+OK") }

// Session logs user in with USER/PASS, sends cmds one at a time (RETR n,
// TOP n k, and UIDL, LIST and CAPA without an argument, have multi-line
// answers), and ends the session as end says. It returns the reply to
// each command. Any failure, a refused login included, fails the test.
func (s *Server) Session(user, password string, end End, cmds ...string) []Reply {
	s.t.Helper()
	replies, err := s.session(user, password, end, cmds)
	if err != nil {
		s.t.Fatalf("mailutilstest: session of %s: %v\n--- pop3d log ---\n%s", user, err, s.Log())
	}
	return replies
}

// Stat returns what STAT says of user's maildrop (messages and octets),
// in a session that retrieves nothing and ends with QUIT.
func (s *Server) Stat(user, password string) (n int, octets int64) {
	s.t.Helper()
	r := s.Session(user, password, Quit, "STAT")[0]
	f := strings.Fields(r.Status)
	if !r.OK() || len(f) < 3 {
		s.t.Fatalf("mailutilstest: STAT answered %q", r.Status)
	}
	n, err1 := strconv.Atoi(f[1])
	octets, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		s.t.Fatalf("mailutilstest: STAT answered %q", r.Status)
	}
	return n, octets
}

func (s *Server) session(user, password string, end End, cmds []string) ([]Reply, error) {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	do := func(cmd string) (Reply, error) {
		if cmd != "" {
			if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
				return Reply{}, err
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return Reply{}, fmt.Errorf("%s: %v", cmd, err)
		}
		rep := Reply{Status: strings.TrimRight(line, "\r\n")}
		if !rep.OK() || !multiLine(cmd) {
			return rep, nil
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return rep, fmt.Errorf("%s: %v", cmd, err)
			}
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if line == "." {
				return rep, nil
			}
			rep.Lines = append(rep.Lines, strings.TrimPrefix(line, "."))
		}
	}
	for _, cmd := range []string{"", "USER " + s.Login(user), "PASS " + password} {
		rep, err := do(cmd)
		if err != nil {
			return nil, err
		}
		if !rep.OK() {
			return nil, fmt.Errorf("%q answered %q", strings.Fields(cmd + " greeting")[0], rep.Status)
		}
	}
	var replies []Reply
	for _, cmd := range cmds {
		rep, err := do(cmd)
		if err != nil {
			return replies, err
		}
		replies = append(replies, rep)
	}
	if end == Hangup {
		// Wait until pop3d has seen the end and closed the session, so
		// that what it does then is done when Session returns.
		_ = c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, r); err != nil {
			return replies, fmt.Errorf("waiting for the server to end the session: %v", err)
		}
		return replies, nil
	}
	rep, err := do("QUIT")
	if err != nil {
		return replies, err
	}
	if !rep.OK() {
		return replies, fmt.Errorf("QUIT answered %q", rep.Status)
	}
	return replies, nil
}

// multiLine reports whether the answer to cmd is multi-line when +OK
// (RFC 1939, RFC 2449 CAPA).
func multiLine(cmd string) bool {
	f := strings.Fields(strings.ToUpper(cmd))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "RETR", "TOP":
		return true
	case "UIDL", "LIST", "CAPA":
		return len(f) == 1
	}
	return false
}

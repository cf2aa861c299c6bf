package couriertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Dialog says how Session talks to the server around its commands.
type Dialog struct {
	// UTF8 sends UTF8 (RFC 6856 §2) before logging in, as a client that
	// wants messages as stored does.
	UTF8 bool
	// Hangup ends the session by closing the connection instead of
	// QUIT: nothing changes on the server.
	Hangup bool
}

// Reply is the answer to one command: its status line and, for a
// multi-line answer, the lines that follow as Data, dot-unstuffed, each
// CRLF turned into LF, without the final ".".
type Reply struct {
	Status string
	Data   []byte
}

// OK reports whether the status is +OK.
func (r Reply) OK() bool { return strings.HasPrefix(r.Status, "+OK") }

// Lines returns Data split into lines (CAPA, UIDL, LIST).
func (r Reply) Lines() []string {
	if len(r.Data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(r.Data), "\n"), "\n")
}

// Session connects to the plain listener, sends UTF8 if d says so, logs
// user in with USER/PASS, sends cmds one at a time (RETR n, TOP n k, and
// UIDL, LIST and CAPA without an argument, have multi-line answers), and
// ends the session as d says. It returns the reply to each command. Any
// failure, a refused login included, fails the test.
func (s *Server) Session(user, password string, d Dialog, cmds ...string) []Reply {
	s.t.Helper()
	replies, err := s.session(user, password, d, cmds)
	if err != nil {
		s.t.Fatalf("couriertest: session of %s: %v\n--- log ---\n%s", user, err, s.Log())
	}
	return replies
}

// Stat returns what STAT says of user's maildrop (messages and octets),
// in a session that retrieves nothing and ends with QUIT.
func (s *Server) Stat(user, password string) (n int, octets int64) {
	s.t.Helper()
	r := s.Session(user, password, Dialog{}, "STAT")[0]
	f := strings.Fields(r.Status)
	if !r.OK() || len(f) < 3 {
		s.t.Fatalf("couriertest: STAT answered %q", r.Status)
	}
	n, err1 := strconv.Atoi(f[1])
	octets, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		s.t.Fatalf("couriertest: STAT answered %q", r.Status)
	}
	return n, octets
}

func (s *Server) session(user, password string, d Dialog, cmds []string) ([]Reply, error) {
	c, err := net.DialTimeout("tcp", s.plain, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
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
		var data bytes.Buffer
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return rep, fmt.Errorf("%s: %v", cmd, err)
			}
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if string(line) == "." {
				rep.Data = data.Bytes()
				return rep, nil
			}
			data.Write(bytes.TrimPrefix(line, []byte(".")))
			data.WriteByte('\n')
		}
	}
	login := []string{"", "USER " + user, "PASS " + password}
	if d.UTF8 {
		login = []string{"", "UTF8", "USER " + user, "PASS " + password}
	}
	for _, cmd := range login {
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
	if d.Hangup {
		// Wait until the server has seen the end and closed the session,
		// so that what it does then is done when Session returns.
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
	// courierpop3d removes deleted messages before it answers QUIT; wait
	// for the end of the session all the same, as Hangup does.
	_, _ = io.Copy(io.Discard, r)
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

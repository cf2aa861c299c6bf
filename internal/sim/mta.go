package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/emersion/go-smtp"
)

// mta is the mail server an LMTP or SMTP target delivers to: go-smtp's
// server, on a unix socket (LMTP) or loopback TCP (SMTP). What it accepts
// it keeps as files DIR/msg.N, line ends made LF again, for the checker
// to read like an MDA's; it fails as the run's MTAFault says.
//
// A message is kept before its answer is written, as a real server's
// queue or mailbox has it before its 250: a cut after the data and before
// the answer leaves the client not knowing (CONTRACT §5: kept on the POP3
// server and fetched again: a duplicate, never a loss), and the checker
// allows that message one more copy.
type mta struct {
	srv   *smtp.Server
	ln    net.Listener
	addr  string // as the account's lmtp or smtp key gives it
	store string

	mu      sync.Mutex
	run     int
	fault   *MTAFault       // of the current run; nil: none
	data    int             // DATA commands of the current run
	kept    int             // messages kept, for the file names
	unknown int             // cuts after the data, for the duplicate bound
	points  map[string]bool // fault points reached
}

// startMTA starts the server for target t (LMTP or SMTP) in dir.
func startMTA(t Target, dir string, seed uint64) (*mta, error) {
	m := &mta{store: filepath.Join(dir, "mta"), points: map[string]bool{}}
	if err := os.MkdirAll(m.store, 0o700); err != nil {
		return nil, err
	}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mtaSession{m: m, conn: c.Conn(), seed: seed}, nil
	}))
	m.srv.Domain = "mta.sim.test"
	// mailgen's traps have lines of 20 000 octets, over RFC 5321's 1 000
	// but taken by Dovecot's LMTP, as here
	m.srv.MaxLineLength = 1 << 20
	var err error
	if t == LMTP {
		m.srv.LMTP = true
		sock := filepath.Join(dir, "lmtp.sock")
		m.ln, err = net.Listen("unix", sock)
		m.addr = "unix:" + sock
	} else {
		m.ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			m.addr = m.ln.Addr().String()
		}
	}
	if err != nil {
		return nil, err
	}
	go m.srv.Serve(m.ln)
	return m, nil
}

// beginRun sets the faults of run n.
func (m *mta) beginRun(n int, f *MTAFault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.run, m.fault, m.data = n, f, 0
}

// close stops the server and ends its connections, and adds the fault
// points it reached to points.
func (m *mta) close(points map[string]bool) {
	m.srv.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.points {
		points[p] = true
	}
}

// unknowns returns how many deliveries the client could not know the
// outcome of.
func (m *mta) unknowns() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unknown
}

// answer is what the server does with a message it has read: keep it or
// not, and answer (nil: 250), or cut the connection (cut).
func (m *mta) answer(seed uint64) (keep, cut bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data++
	f := m.fault
	if f == nil {
		return true, false, nil
	}
	c := chance(seed, "mta", m.run, m.data)
	switch {
	case f.CutAt == m.data:
		m.points["mta: cut after the data, before the answer"] = true
		if f.CutKept {
			m.unknown++
		}
		return f.CutKept, true, nil
	case c < f.TempFail:
		m.points["mta: 451 after the data"] = true
		return false, false, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "simulated: try again later"}
	case c < f.TempFail+f.PermFail:
		m.points["mta: 554 after the data"] = true
		return false, false, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "simulated: refused"}
	}
	return true, false, nil
}

// keep writes a message the server accepted.
func (m *mta) keep(data []byte) error {
	m.mu.Lock()
	m.kept++
	name := filepath.Join(m.store, fmt.Sprintf("msg.%06d", m.kept))
	m.mu.Unlock()
	return os.WriteFile(name, bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), 0o600)
}

// MTARecipient is the address the mail server takes mail for.
// (go-smtp's server wants a domain in RCPT TO, as RFC 5321 does; Dovecot's
// LMTP takes a bare user name too, popfetch's default recipient.)
const MTARecipient = "alice@mta.sim.test"

// mtaSession is one client connection of the mta.
type mtaSession struct {
	m    *mta
	conn net.Conn
	seed uint64
}

func (s *mtaSession) Reset()                                         {}
func (s *mtaSession) Logout() error                                  { return nil }
func (s *mtaSession) Mail(from string, opts *smtp.MailOptions) error { return nil }
func (s *mtaSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if to != MTARecipient {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user: " + to}
	}
	return nil
}

func (s *mtaSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	keep, cut, answer := s.m.answer(s.seed)
	if keep {
		if err := s.m.keep(data); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
		}
	}
	if cut {
		s.conn.Close()
		return errors.New("simulated: connection cut")
	}
	return answer
}

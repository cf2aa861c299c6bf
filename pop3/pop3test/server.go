// Package pop3test runs an in-process POP3 server for tests and the demo,
// in the spirit of net/http/httptest: Start it on 127.0.0.1:0 with users
// and mailboxes defined by the caller, point a client at Addr, Close it.
//
// The server speaks RFC 1939 with CAPA, PIPELINING, RESP-CODES and
// AUTH-RESP-CODE (RFC 2449, 3206), STLS (RFC 2595), APOP and AUTH (RFC 5034)
// with PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER. Deletions are
// committed only by QUIT. Faults are injected through the fields of Faults.
//
// Servers that are legal but hostile to a careless client are played by
// explicit settings: Server.Retention (EXPIRE 0 and Gmail, where a QUIT
// removes or hides what was retrieved), Mailbox.ReuseUIDs and
// Mailbox.RenameUIDs, Faults.ListSize, Faults.Refuse and
// Faults.RefuseLogin; the network by Faults.Net (cut or stall at any
// octet), Faults.Interrupt and DropSessions. Server.Log and
// Mailbox.Removed tell a checker what each session did and which
// messages left the maildrop, when and why.
package pop3test

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is an account on the server.
type User struct {
	Name     string
	Password string // for USER/PASS, APOP, PLAIN, LOGIN, CRAM-MD5
	Token    string // OAuth2 bearer token for XOAUTH2 and OAUTHBEARER
	Mailbox  *Mailbox
}

// Faults change how the server behaves, to test a client against servers
// that are strict, old, slow or broken. The zero value is a well-behaved
// server. Set them before Start, or between sessions.
type Faults struct {
	// Greeting replaces the greeting line (without CRLF).
	Greeting string
	// HideCaps lists capabilities left out of CAPA, e.g. "PIPELINING";
	// a hidden command (STLS, UIDL, TOP, USER, SASL) is also refused.
	HideCaps []string
	// NoCAPA makes CAPA an unknown command, as on RFC 1939 servers.
	NoCAPA bool
	// Respond, if set, is asked first for every command line; if it returns
	// ok, its line (without CRLF) is sent instead of the normal response
	// and the command has no other effect.
	Respond func(cmd string, args []string) (line string, ok bool)
	// DropQuit closes the connection on QUIT without answering and without
	// committing deletions.
	DropQuit bool
	// TLS, if set, adjusts the server's TLS configuration (implicit TLS and
	// STLS) at Start, e.g. to offer only TLS 1.1.
	TLS func(*tls.Config)
	// Interrupt, if set, is asked for every command after Respond; a
	// non-nil *Interrupt breaks off the response to that command: see
	// Interrupt. Not for STLS.
	Interrupt func(cmd string, args []string) *Interrupt
	// ListSize, if set, gives the size LIST reports for a message instead
	// of its true size (Message.Size), to play a server whose sizes are
	// wrong.
	ListSize func(m *Message) int64
	// Unsolicited, if set, gives lines (without CRLF) sent right after the
	// response to a command, as if answering commands the client never
	// sent; cmd is "" for the greeting.
	Unsolicited func(cmd string, args []string) []string
	// Refuse, if set, is asked before RETR, TOP and DELE of a message m
	// and before QUIT (m nil) in the TRANSACTION state; if it returns
	// true, the command is answered -ERR and has no effect. A refused
	// QUIT ends the session and removes nothing (RFC 1939 §6 answers -ERR
	// when removal fails).
	Refuse func(cmd string, m *Message) bool
	// RefuseLogin, if set, is asked once a user's credentials are
	// accepted; a line it returns (without CRLF, e.g.
	// "-ERR [SYS/TEMP] try later" or "-ERR [IN-USE] busy") is sent instead
	// of logging in.
	RefuseLogin func(user string) string
	// InterruptMessage, if set, is asked after Interrupt for RETR, TOP
	// and DELE of an existing message m, so a fault can follow a
	// message whatever its number; a non-nil *Interrupt breaks off the
	// response as Interrupt's do.
	InterruptMessage func(cmd string, m *Message) *Interrupt
	// Net, if set, is asked at the start of each session (numbered from
	// 1, see SessionLog) for a fault of its connection; nil: none.
	Net func(session int) *NetFault
}

// Server is an in-process POP3 server.
type Server struct {
	// Faults to inject; see Faults.
	Faults Faults
	// Mechanisms are the SASL mechanisms offered; nil means PLAIN LOGIN
	// CRAM-MD5 XOAUTH2 OAUTHBEARER.
	Mechanisms []string
	// OfferSTLS offers STLS on a plain listener (Start). Default true.
	OfferSTLS bool
	// ExtraCaps are listed in CAPA as given, before and after login, e.g.
	// "EXPIRE 0" or "LOGIN-DELAY 900".
	ExtraCaps []string
	// UTF8 plays a server of RFC 6856: CAPA lists UTF8, and the UTF8
	// command is accepted before login (RFC 6856 §2: AUTHORIZATION state
	// only). A session that has not sent it gets each message whose
	// header holds 8-bit bytes as Courier's pop3d sends it to a legacy
	// client: wrapped in a multipart/mixed message, a notice and the
	// original as a message/global attachment. LIST sizes stay those of
	// the messages as stored.
	UTF8 bool
	// Latency delays every byte each way by this much, so a round trip
	// takes twice as long (see RoundTrips).
	Latency time.Duration
	// Retention says what QUIT does to the messages a session retrieved;
	// the zero value is RFC 1939's (see Retention).
	Retention Retention
	// ExpireCapa is the CAPA line listed with ExpireRetrieved; "" means
	// "EXPIRE 0" (RFC 2449 §6.7). GNU mailutils spells it "EXPIRE0" in
	// some versions.
	ExpireCapa string

	mu       sync.Mutex
	users    map[string]*User
	ln       net.Listener
	tlsConf  *tls.Config
	implicit bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	closed   bool
	done     chan struct{} // closed by Close: ends stalls
	received []string
	waits    int // round trips the clients waited for, see RoundTrips
	early    int
	sessions int
	active   int // sessions not yet ended
	logs     []*SessionLog
	dropped  int // DropSessions calls so far
}

// NewServer returns a server with no users; add them with AddUser.
func NewServer() *Server {
	return &Server{users: map[string]*User{}, conns: map[net.Conn]struct{}{}, OfferSTLS: true,
		done: make(chan struct{})}
}

// AddUser adds a user with a password and returns its empty mailbox.
func (s *Server) AddUser(name, password string) *Mailbox {
	mb := &Mailbox{}
	s.mu.Lock()
	s.users[name] = &User{Name: name, Password: password, Mailbox: mb}
	s.mu.Unlock()
	return mb
}

// SetToken sets the OAuth2 bearer token accepted for a user.
func (s *Server) SetToken(name, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[name]; u != nil {
		u.Token = token
	}
}

// Start listens on 127.0.0.1 on a free port, without TLS (STLS is offered
// unless OfferSTLS is false).
func (s *Server) Start() error { return s.start(false) }

// StartTLS listens on 127.0.0.1 on a free port with implicit TLS.
func (s *Server) StartTLS() error { return s.start(true) }

func (s *Server) start(implicit bool) error {
	cert, err := testCertificate()
	if err != nil {
		return err
	}
	s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.Faults.TLS != nil {
		s.Faults.TLS(s.tlsConf)
	}
	s.implicit = implicit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	return nil
}

// Addr returns the address the server listens on, "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Certificate returns the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate {
	c, _ := testCertificate()
	return c.Leaf
}

// CertPool returns a pool that trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

// Received returns every command line received so far, in all sessions,
// secrets included, so tests can prove what a client did or did not send.
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

// EarlyCommands returns how many times a command arrived before the
// response to the previous one was sent while PIPELINING was not offered.
func (s *Server) EarlyCommands() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.early
}

// Sessions returns how many connections were accepted.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Active returns how many sessions are open: a client that drops the
// connection has ended its session only once the server has seen it, and
// until then the maildrop stays locked (RFC 1939 §4).
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Close stops listening, drops every open session (committing nothing) and
// waits for them to end.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed && s.done != nil {
		close(s.done)
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.sessions++
		s.active++
		log := &SessionLog{Number: s.sessions}
		s.logs = append(s.logs, log)
		dropped := s.dropped
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			conn := s.wrapLatency(conn)
			if s.implicit {
				conn = tls.Server(conn, s.tlsConf)
			}
			sess := &session{srv: s, f: &s.Faults, conn: conn, started: time.Now(), log: log, dropped: dropped}
			sess.run()
			s.mu.Lock()
			delete(s.conns, sess.conn)
			delete(s.conns, conn)
			s.active--
			s.mu.Unlock()
			sess.conn.Close()
		}()
	}
}

// hidden reports whether the session's faults hide a capability.
func (ss *session) hidden(capa string) bool {
	for _, h := range ss.f.HideCaps {
		if strings.EqualFold(h, capa) {
			return true
		}
	}
	return false
}

func (s *Server) mechanisms() []string {
	var m []string
	for _, name := range s.Mechanisms {
		m = append(m, strings.ToUpper(name))
	}
	if s.Mechanisms == nil {
		m = []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"}
	}
	return m
}

func (s *Server) user(name string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[name]
}

// session is one client connection.
type session struct {
	srv     *Server
	f       *Faults   // the server's Faults, read as the session goes
	started time.Time // accepted, before any TLS handshake
	waiting time.Time // since when all was answered and nothing more came
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	tls     bool
	utf8    bool // the client sent UTF8 (RFC 6856)
	stamp   string
	user    *User // after USER, or once logged in
	authed  bool
	msgs    []*Message
	deleted map[*Message]bool
	retr    map[*Message]bool // retrieved, for Retention
	log     *SessionLog
	dropped int       // the server's DropSessions count at the start
	fc      faultConn // counts octets for Faults.Net
}

var errQuit = errors.New("quit")

func (ss *session) run() {
	s := ss.srv
	ss.tls = s.implicit
	ss.br = bufio.NewReader(ss.fc.reader(ss.conn))
	ss.bw = bufio.NewWriter(ss.fc.writer(ss.conn))
	var nonce [8]byte
	rand.Read(nonce[:])
	ss.stamp = fmt.Sprintf("<%s.%d@pop3test>", hex.EncodeToString(nonce[:]), time.Now().Unix())
	defer func() {
		if ss.authed {
			// no QUIT: nothing is committed
			ss.user.Mailbox.unlock(ss.log.Number, nil, false)
		}
		ss.ended("client hung up")
	}()
	ss.fc.ss = ss
	if ss.f.Net != nil {
		ss.fc.fault = ss.f.Net(ss.log.Number)
	}
	if tc, ok := ss.conn.(*tls.Conn); ok {
		// Handshake before the greeting reads any fault: the client's
		// hello orders the session after whatever the test did before
		// it dialled, such as changing Faults between two runs.
		if tc.Handshake() != nil {
			return
		}
	}
	greeting := "+OK pop3test ready " + ss.stamp
	if ss.f.Greeting != "" {
		greeting = ss.f.Greeting
	}
	ss.reply(greeting)
	ss.unsolicited("", nil)
	for {
		// Without PIPELINING the server answers in lock-step: each
		// response goes out before the next command is looked at.
		if ss.br.Buffered() == 0 || !ss.pipelining() {
			if ss.bw.Flush() != nil {
				ss.endedByFault()
				return
			}
			ss.idle(time.Now())
		}
		line, err := ss.readLine()
		if err != nil {
			ss.endedByFault()
			return
		}
		ss.logCommand(line)
		ss.arrived(time.Now())
		if err := ss.handle(line); err != nil {
			ss.bw.Flush()
			ss.endedByFault()
			return
		}
		if !ss.pipelining() && ss.br.Buffered() > 0 {
			s.mu.Lock()
			s.early++
			s.mu.Unlock()
		}
	}
}

func (ss *session) pipelining() bool { return !ss.hidden("PIPELINING") && !ss.f.NoCAPA }

func (ss *session) readLine() (string, error) {
	line, err := ss.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) > 4096 {
		return "", errors.New("line too long")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (ss *session) reply(format string, args ...any) {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	ss.bw.WriteString(format)
	ss.bw.WriteString("\r\n")
}

func (ss *session) handle(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		ss.reply("-ERR empty command")
		return nil
	}
	cmd, args := strings.ToUpper(f[0]), f[1:]
	err := ss.respond(cmd, args)
	if err == nil {
		ss.unsolicited(cmd, args)
	}
	return err
}

// respond answers a command, with the faults of Respond and Interrupt.
func (ss *session) respond(cmd string, args []string) error {
	if ss.f.Respond != nil {
		if resp, ok := ss.f.Respond(cmd, args); ok {
			ss.reply(resp)
			return nil
		}
	}
	if ss.f.Interrupt != nil {
		if in := ss.f.Interrupt(cmd, args); in != nil {
			return ss.interrupt(in, func() error { return ss.dispatch(cmd, args) })
		}
	}
	m := ss.peek(cmd, args)
	if m != nil && cmd != "DELE" {
		ss.requested(m)
	}
	if m != nil && ss.f.InterruptMessage != nil {
		if in := ss.f.InterruptMessage(cmd, m); in != nil {
			return ss.interrupt(in, func() error { return ss.dispatch(cmd, args) })
		}
	}
	return ss.dispatch(cmd, args)
}

// dispatch answers a command as a well-behaved server would, but for the
// faults of HideCaps, NoCAPA and DropQuit.
func (ss *session) dispatch(cmd string, args []string) error {
	if ss.hidden(cmd) || (cmd == "CAPA" && ss.f.NoCAPA) || (cmd == "PASS" && ss.hidden("USER")) ||
		(cmd == "AUTH" && ss.hidden("SASL")) {
		ss.reply("-ERR unknown command")
		return nil
	}
	if cmd == "QUIT" {
		if ss.f.DropQuit {
			ss.ended("dropped")
			return errQuit
		}
		if ss.authed && ss.f.Refuse != nil && ss.f.Refuse(cmd, nil) {
			ss.ended("quit refused")
			ss.reply("-ERR some deleted messages not removed")
			return errQuit
		}
		// RFC 1939 §6: the UPDATE state removes the messages, then
		// answers; a client that sees +OK must find them gone.
		if ss.authed && !ss.update() {
			ss.ended("dropped")
			return errDropped
		}
		ss.ended("quit")
		ss.reply("+OK bye")
		return errQuit
	}
	if cmd == "CAPA" {
		ss.capa()
		return nil
	}
	if !ss.authed {
		return ss.authorization(cmd, args)
	}
	return ss.transaction(cmd, args)
}

func (ss *session) capa() {
	s := ss.srv
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if !ss.authed {
		if !ss.tls && s.OfferSTLS {
			caps = append(caps, "STLS")
		}
		caps = append(caps, "USER", "SASL "+strings.Join(s.mechanisms(), " "))
	}
	if s.Retention == ExpireRetrieved {
		caps = append(caps, s.expireCapa())
	}
	caps = append(caps, s.ExtraCaps...)
	caps = append(caps, "IMPLEMENTATION pop3test")
	if s.UTF8 {
		caps = append(caps, "UTF8")
	}
	ss.reply("+OK capabilities follow")
	for _, c := range caps {
		if !ss.hidden(strings.Fields(c)[0]) {
			ss.reply(c)
		}
	}
	ss.reply(".")
}

func (ss *session) authorization(cmd string, args []string) error {
	s := ss.srv
	switch cmd {
	case "STLS":
		if ss.tls || !s.OfferSTLS {
			ss.reply("-ERR STLS not available")
			return nil
		}
		ss.reply("+OK begin TLS negotiation")
		if err := ss.bw.Flush(); err != nil {
			return err
		}
		tc := tls.Server(ss.conn, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		s.mu.Lock()
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		ss.conn, ss.tls, ss.user = tc, true, nil
		ss.br = bufio.NewReader(ss.fc.reader(tc))
		ss.bw = bufio.NewWriter(ss.fc.writer(tc))
		return nil
	case "USER":
		if len(args) != 1 {
			ss.reply("-ERR usage: USER name")
			return nil
		}
		ss.user = s.user(args[0])
		ss.reply("+OK send PASS")
		return nil
	case "PASS":
		u := ss.user
		pass := ""
		if len(args) > 0 {
			pass = strings.Join(args, " ")
		}
		if u == nil || pass != u.Password || u.Password == "" {
			ss.user = nil
			ss.reply("-ERR [AUTH] invalid user name or password")
			return nil
		}
		return ss.login(u)
	case "APOP":
		if len(args) != 2 {
			ss.reply("-ERR usage: APOP name digest")
			return nil
		}
		u := s.user(args[0])
		if u == nil || u.Password == "" || apopDigest(ss.stamp, u.Password) != strings.ToLower(args[1]) {
			ss.reply("-ERR [AUTH] authentication failed")
			return nil
		}
		return ss.login(u)
	case "AUTH":
		if len(args) == 0 {
			ss.reply("+OK mechanisms follow")
			for _, m := range s.mechanisms() {
				ss.reply(m)
			}
			ss.reply(".")
			return nil
		}
		u, err := ss.sasl(strings.ToUpper(args[0]), args[1:])
		if err != nil {
			return err
		}
		if u != nil {
			return ss.login(u)
		}
		return nil
	case "UTF8":
		if s.UTF8 {
			ss.utf8 = true
			ss.reply("+OK UTF8 enabled")
			return nil
		}
	}
	ss.reply("-ERR command not valid before login")
	return nil
}

// login enters the TRANSACTION state, locking the maildrop.
func (ss *session) login(u *User) error {
	if ss.f.RefuseLogin != nil {
		if line := ss.f.RefuseLogin(u.Name); line != "" {
			ss.user = nil
			ss.reply("%s", line)
			return nil
		}
	}
	msgs, ok := u.Mailbox.lock()
	if !ok {
		ss.user = nil
		ss.reply("-ERR [IN-USE] mailbox locked by another session")
		return nil
	}
	ss.user, ss.authed, ss.msgs, ss.deleted = u, true, msgs, map[*Message]bool{}
	ss.srv.mu.Lock()
	ss.log.User = u.Name
	ss.srv.mu.Unlock()
	ss.reply("+OK logged in, %d messages", len(msgs))
	return nil
}

// peek returns the message a RETR, TOP or DELE names, if it exists and
// is not deleted; nil otherwise, and for other commands.
func (ss *session) peek(cmd string, args []string) *Message {
	if !ss.authed || len(args) == 0 || (cmd != "RETR" && cmd != "TOP" && cmd != "DELE") {
		return nil
	}
	var n int
	if _, err := fmt.Sscanf(args[0], "%d", &n); err != nil || n < 1 || n > len(ss.msgs) || ss.deleted[ss.msgs[n-1]] {
		return nil
	}
	return ss.msgs[n-1]
}

// message returns the message numbered by arg, or replies -ERR.
func (ss *session) message(arg string) *Message {
	var n int
	if _, err := fmt.Sscanf(arg, "%d", &n); err != nil || n < 1 || n > len(ss.msgs) {
		ss.reply("-ERR no such message")
		return nil
	}
	m := ss.msgs[n-1]
	if ss.deleted[m] {
		ss.reply("-ERR message %d already deleted", n)
		return nil
	}
	return m
}

func (ss *session) transaction(cmd string, args []string) error {
	switch cmd {
	case "STAT":
		n, size := 0, int64(0)
		for _, m := range ss.msgs {
			if !ss.deleted[m] {
				n++
				size += m.size
			}
		}
		ss.reply("+OK %d %d", n, size)
	case "LIST", "UIDL":
		if len(args) > 0 {
			if m := ss.message(args[0]); m != nil {
				ss.reply("+OK %s %s", args[0], ss.listValue(cmd, m))
			}
			return nil
		}
		ss.reply("+OK listing follows")
		// One line per message, written without allocating: a listing of
		// half a million messages costs the server no garbage that a
		// client's benchmark would count as its own.
		var line []byte
		for i, m := range ss.msgs {
			if ss.deleted[m] {
				continue
			}
			line = strconv.AppendInt(line[:0], int64(i+1), 10)
			line = append(line, ' ')
			switch {
			case cmd == "UIDL":
				line = append(line, m.UID...)
			case ss.f.ListSize != nil:
				line = strconv.AppendInt(line, ss.f.ListSize(m), 10)
			default:
				line = strconv.AppendInt(line, m.size, 10)
			}
			line = append(line, '\r', '\n')
			ss.bw.Write(line)
		}
		ss.reply(".")
	case "RETR", "TOP":
		if len(args) < 1 || (cmd == "TOP" && len(args) < 2) {
			ss.reply("-ERR missing argument")
			return nil
		}
		m := ss.message(args[0])
		if m == nil || ss.refused(cmd, m) {
			return nil
		}
		body := ss.wireOf(m)
		if cmd == "TOP" {
			var n int
			if _, err := fmt.Sscanf(args[1], "%d", &n); err != nil || n < 0 {
				ss.reply("-ERR bad line count")
				return nil
			}
			body = topOf(body, n)
		}
		ss.reply("+OK %d octets", m.size)
		ss.bw.Write(body)
		ss.reply(".")
		ss.retrieved(cmd, m)
	case "DELE":
		if len(args) < 1 {
			ss.reply("-ERR missing argument")
			return nil
		}
		if m := ss.message(args[0]); m != nil && !ss.refused(cmd, m) {
			ss.deleted[m] = true
			ss.reply("+OK message deleted")
		}
	case "NOOP":
		ss.reply("+OK")
	case "RSET":
		ss.deleted = map[*Message]bool{}
		ss.reply("+OK")
	default:
		ss.reply("-ERR unknown command")
	}
	return nil
}

// refused answers -ERR to a command that Faults.Refuse refuses.
func (ss *session) refused(cmd string, m *Message) bool {
	if ss.f.Refuse == nil || !ss.f.Refuse(cmd, m) {
		return false
	}
	ss.reply("-ERR [SYS/TEMP] cannot %s message now", strings.ToLower(cmd))
	return true
}

func (ss *session) listValue(cmd string, m *Message) string {
	if cmd == "UIDL" {
		return m.UID
	}
	if ss.f.ListSize != nil {
		return fmt.Sprint(ss.f.ListSize(m))
	}
	return fmt.Sprint(m.size)
}

// topOf returns the header and the first n body lines of a wire message.
func topOf(wire []byte, n int) []byte {
	i := 0
	inBody := false
	for i < len(wire) {
		end := i
		for end < len(wire) && wire[end] != '\n' {
			end++
		}
		if end < len(wire) {
			end++
		}
		line := wire[i:end]
		if inBody {
			if n == 0 {
				return wire[:i]
			}
			n--
		} else if string(line) == "\r\n" {
			inBody = true
		}
		i = end
	}
	return wire
}

package deliver

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTPOptions tunes an LMTP or SMTP target. The zero value is ready to use.
type SMTPOptions struct {
	// Recipient is the address given in RCPT TO. %T becomes the
	// envelope's Recipient (the account's user) and %% a single %; ""
	// means "%T".
	Recipient string
	// TLSConfig is used for STARTTLS, which an SMTP target starts when the
	// server offers it. It is cloned; an empty ServerName becomes the host
	// of the address. A server on a loopback address is not verified (a
	// local MTA's certificate is rarely one a CA signed, and the loopback
	// interface needs no protection); any other is, by RootCAs or the
	// system's roots. Nil means the system's roots.
	TLSConfig *tls.Config
	// Timeout bounds connecting, each command's answer and each write of
	// the message; 0 means 5 minutes (RFC 5321 §4.5.3.2). The answer to
	// the end of a message may take up to twice as long, since the server
	// may filter it first.
	Timeout time.Duration
	// Logger, if set, receives a trace of the commands and answers at
	// debug level. The message itself is never traced, only its size.
	Logger *slog.Logger
}

// Message data is held in memory up to this size, and beyond it in an
// unlinked temporary file.
const smtpSpoolMemory = 128 << 10

// SMTP delivers each message over one connection to an LMTP server (RFC
// 2033: Dovecot, Cyrus, Postfix's lmtp) or an SMTP server (RFC 5321: the
// local MTA), so that its filters, quotas and indexes see the mail.
//
// Each message is its own transaction: MAIL FROM the envelope sender
// (the null sender <> when there is none), RCPT TO the recipient, DATA.
// Deliver returns nil once the server has answered 250 to the end of the
// message (LMTP: for the recipient), which makes the message its
// responsibility; Commit does nothing.
//
// The message is read whole before the transaction begins: into memory up
// to 128 KiB, and beyond that into an unlinked file in os.TempDir. So
// MAIL can declare what the message needs (BODY=8BITMIME, SMTPUTF8 when
// its header holds 8-bit bytes, SIZE), a message the server cannot take
// is refused before anything is sent, and a message whose reading fails
// never reaches the server. What goes out is what was read, with LF line
// endings as CRLF and the lines that begin with a dot stuffed (RFC 5321
// §4.5.2); nothing else is changed. DATA cannot carry a NUL byte or a
// carriage return that does not end a line (RFC 5321 §2.3.8, RFC 6152
// §3), nor 8-bit bytes to a server without 8BITMIME: such a message is
// refused, with an *Error whose MessageOnly is set, and stays where it is.
//
// The connection is opened by OpenLMTP or OpenSMTP and kept from message
// to message; when the server has closed it meanwhile (its idle timeout
// ran out while a large message was read), the next message opens a new
// one.
type SMTP struct {
	kind    string // "lmtp" or "smtp"
	network string // "tcp" or "unix"
	addr    string
	opts    SMTPOptions
	name    string // our name in LHLO/EHLO

	c       *smtp.Client // nil when there is no connection
	conn    *smtpConn
	used    bool // the connection has carried a transaction
	eight   bool // the server offers 8BITMIME
	utf8    bool // the server offers SMTPUTF8
	sizeExt bool // the server offers SIZE

	sp  smtpSpool
	buf []byte
}

// OpenLMTP connects to the LMTP server at addr, "unix:/path" or
// "host:port" (see LMTPAddress), and says LHLO. A failure is an *Error
// with Temporary set: the server may well be back later.
func OpenLMTP(addr string, opts SMTPOptions) (*SMTP, error) {
	network, a, err := LMTPAddress(addr)
	if err != nil {
		return nil, &Error{Target: "lmtp", Op: "parsing the address", Err: err}
	}
	return openSMTP("lmtp", network, a, opts)
}

// OpenSMTP connects to the SMTP server at addr, "host" or "host:port"
// (see SMTPAddress), says EHLO and starts TLS if the server offers it. A
// failure to connect or to be greeted is an *Error with Temporary set; a
// failed TLS handshake or certificate check is an *Error without.
func OpenSMTP(addr string, opts SMTPOptions) (*SMTP, error) {
	a, err := SMTPAddress(addr)
	if err != nil {
		return nil, &Error{Target: "smtp", Op: "parsing the address", Err: err}
	}
	return openSMTP("smtp", "tcp", a, opts)
}

// LMTPAddress parses an LMTP address: "unix:/path" (an absolute path) or
// "host:port". LMTP has no standard port (RFC 2033 §5), so the port must
// be given.
func LMTPAddress(s string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("%q: the socket path must be absolute", s)
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("%q is neither unix:/path nor host:port", s)
	}
	if err := checkPort(port); err != nil {
		return "", "", fmt.Errorf("%q: %v", s, err)
	}
	return "tcp", s, nil
}

// SMTPAddress parses an SMTP address, "host" or "host:port" ("[::1]" or
// "[::1]:port" for an IPv6 address), and returns it as host:port, with
// port 25 if none was given.
func SMTPAddress(s string) (string, error) {
	if s == "" {
		return "", errors.New("no host")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if strings.ContainsAny(h, "[]/ ") || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			return "", fmt.Errorf("%q is not host or host:port", s)
		}
		return net.JoinHostPort(h, "25"), nil
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	if err := checkPort(port); err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	return s, nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func openSMTP(kind, network, addr string, opts SMTPOptions) (*SMTP, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Recipient == "" {
		opts.Recipient = "%T"
	}
	t := &SMTP{kind: kind, network: network, addr: addr, opts: opts, name: heloName(),
		buf: make([]byte, 64<<10)}
	t.sp.mem = make([]byte, 0, smtpSpoolMemory)
	if err := t.connect(); err != nil {
		return nil, err
	}
	return t, nil
}

// heloName is the name we give in LHLO/EHLO: the host name if it is a
// fully qualified one, else "localhost".
func heloName() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") || strings.ContainsAny(h, " \t\r\n") {
		return "localhost"
	}
	return h
}

// where names the server in errors.
func (t *SMTP) where() string {
	if t.network == "unix" {
		return "unix:" + t.addr
	}
	return t.addr
}

func (t *SMTP) trace(format string, args ...any) {
	if t.opts.Logger != nil {
		t.opts.Logger.Debug(t.kind + ": " + fmt.Sprintf(format, args...))
	}
}

// connect opens the connection, says LHLO or EHLO and, for SMTP, starts
// TLS when the server offers it.
func (t *SMTP) connect() error {
	d := net.Dialer{Timeout: t.opts.Timeout}
	raw, err := d.Dial(t.network, t.addr)
	if err != nil {
		return &Error{Target: t.kind, Op: "connecting to " + t.where(), Err: err, Temporary: true}
	}
	conn := &smtpConn{Conn: raw, timeout: t.opts.Timeout}
	c := t.newClient(conn)
	if err := c.Hello(t.name); err != nil {
		c.Close()
		// a 5xx greeting or LHLO/EHLO answer: the server will not take mail from us
		var se *smtp.SMTPError
		perm := errors.As(err, &se) && se.Code/100 == 5
		return &Error{Target: t.kind, Op: "greeting " + t.where(), Err: err, Temporary: !perm}
	}
	t.trace("connected to %s", t.where())
	if ok, _ := c.Extension("STARTTLS"); ok && t.kind == "smtp" {
		if c, err = t.startTLS(conn); err != nil {
			return err
		}
	}
	t.c, t.conn, t.used = c, conn, false
	t.eight, _ = c.Extension("8BITMIME")
	t.utf8, _ = c.Extension("SMTPUTF8")
	t.sizeExt, _ = c.Extension("SIZE")
	return nil
}

func (t *SMTP) newClient(conn net.Conn) *smtp.Client {
	var c *smtp.Client
	if t.kind == "lmtp" {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = t.opts.Timeout
	c.SubmissionTimeout = 2 * t.opts.Timeout
	return c
}

// startTLS upgrades the connection with STARTTLS (RFC 3207). go-smtp does
// that only for a client it creates itself, which reads a greeting and
// says EHLO first: the greeting read already is given to it once more,
// and the server hears a second EHLO, which RFC 5321 §4.1.4 allows.
func (t *SMTP) startTLS(conn *smtpConn) (*smtp.Client, error) {
	host, _, _ := net.SplitHostPort(t.addr)
	var cfg *tls.Config
	if t.opts.TLSConfig != nil {
		cfg = t.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = strings.Trim(host, "[]")
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	if isLoopbackAddr(conn.RemoteAddr()) {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = nil
	}
	conn.replay = []byte("220 greeting already read\r\n")
	c, err := smtp.NewClientStartTLS(conn, cfg)
	if err == nil {
		c.CommandTimeout = t.opts.Timeout
		c.SubmissionTimeout = 2 * t.opts.Timeout
		err = c.Hello(t.name)
	}
	if err != nil {
		conn.Close()
		var se *smtp.SMTPError
		return nil, &Error{Target: t.kind, Op: "starting TLS with " + t.where(), Err: err,
			Temporary: errors.As(err, &se) && se.Temporary()}
	}
	t.trace("TLS started with %s", t.where())
	return c, nil
}

func isLoopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// drop closes the connection without QUIT: the server discards a
// transaction it has not confirmed.
func (t *SMTP) drop() {
	if t.c != nil {
		t.c.Close()
		t.c, t.conn = nil, nil
	}
}

// Deliver sends one message and waits for the server's answer to it.
//
// The error is an *Error:
//   - the server refused the message, at MAIL, RCPT, DATA or the end of
//     the data: MessageOnly, and Temporary for a 4xx answer; Err is the
//     *smtp.SMTPError;
//   - the message has a NUL byte, a bare carriage return, or 8-bit bytes
//     for a server without 8BITMIME: MessageOnly; nothing was sent;
//   - the connection broke during the transaction: MessageOnly and
//     Temporary. If it broke after the end of the data, before the answer,
//     the server may have delivered the message all the same: the message
//     is not taken as delivered, and a later run delivers it again;
//   - reading the message failed: Source, Err the reader's error; nothing
//     was sent;
//   - no connection could be opened: Temporary (not MessageOnly).
func (t *SMTP) Deliver(env Envelope, r io.Reader) error {
	if err := t.sp.fill(t.kind, r, t.buf); err != nil {
		return err
	}
	sp := &t.sp
	switch {
	case sp.nul:
		return &Error{Target: t.kind, Op: "checking the message", MessageOnly: true,
			Err: errors.New("it holds a NUL byte, which SMTP and LMTP cannot carry (RFC 5321 §2.3.8); it was left as it is")}
	case sp.cr:
		return &Error{Target: t.kind, Op: "checking the message", MessageOnly: true,
			Err: errors.New("it holds a carriage return that does not end a line, which SMTP and LMTP cannot carry (RFC 5321 §2.3.8); it was left as it is")}
	}
	rcpt := expandPlaceholders(t.opts.Recipient, "", env.Recipient)
	if err := checkAddress(rcpt); err != nil {
		return &Error{Target: t.kind, Op: "checking the recipient", Err: fmt.Errorf("%q: %v", rcpt, err)}
	}
	sender := bareSender(env.Sender)
	if checkAddress(sender) != nil {
		// a Return-Path that is no address cannot be used in MAIL FROM;
		// bounces then go nowhere, as for a message without one
		t.trace("Return-Path %q is not an address: MAIL FROM:<>", sender)
		sender = ""
	}

	for attempt := 0; ; attempt++ {
		if t.c == nil {
			if err := t.connect(); err != nil {
				return err
			}
		}
		retry, err := t.transaction(sender, rcpt)
		if err == nil || !retry || attempt > 0 {
			return err
		}
		// The server had closed the connection while it was idle:
		// nothing of this message was sent. Once more, on a new one.
		t.trace("the connection was closed while idle; connecting again")
	}
}

// transaction sends the spooled message. retry reports that the
// connection, used before, failed at MAIL: nothing of the message was
// sent, and a new connection may well work.
func (t *SMTP) transaction(sender, rcpt string) (retry bool, err error) {
	sp := &t.sp
	if sp.eightBit && !t.eight {
		return false, &Error{Target: t.kind, Op: "checking the message", MessageOnly: true,
			Err: fmt.Errorf("it holds 8-bit bytes and %s does not offer 8BITMIME (RFC 6152); it was left as it is", t.where())}
	}
	used := t.used
	t.used = true
	var mo smtp.MailOptions
	// RFC 6531 §3.4: SMTPUTF8 for UTF-8 in the envelope or the header.
	mo.UTF8 = t.utf8 && (sp.header8 || !isASCII(sender) || !isASCII(rcpt))
	if t.sizeExt {
		mo.Size = sp.size + sp.lines // as sent: CRLF line endings
	}
	// go-smtp adds BODY=8BITMIME when the server offers it, for every
	// message: RFC 6152 §3 allows it for 7-bit ones too.
	t.trace("C: MAIL FROM:<%s>%s", sender, mailParams(t, mo))
	if err := t.c.Mail(sender, &mo); err != nil {
		if isReply(err) && !isClosing(err) {
			t.reset()
			return false, t.refused("MAIL FROM:<"+sender+">", err)
		}
		t.drop()
		return used, t.broken("MAIL FROM", err, false)
	}
	t.trace("C: RCPT TO:<%s>", rcpt)
	if err := t.c.Rcpt(rcpt, nil); err != nil {
		if isReply(err) && !isClosing(err) {
			t.reset()
			return false, t.refused("RCPT TO:<"+rcpt+">", err)
		}
		t.drop()
		return false, t.broken("RCPT TO", err, false)
	}
	t.trace("C: DATA")
	w, err := t.c.Data()
	if err != nil {
		if isReply(err) && !isClosing(err) {
			t.reset()
			return false, t.refused("DATA", err)
		}
		t.drop()
		return false, t.broken("DATA", err, false)
	}
	if _, err := copyMessage(w, sp.reader(), t.buf); err != nil {
		t.drop()
		var se sourceError
		if errors.As(err, &se) {
			return false, &Error{Target: t.kind, Op: "reading the spooled message", Err: se.err, MessageOnly: true}
		}
		return false, t.broken("sending the message", err, false)
	}
	t.trace("C: (message of %d octets) .", sp.size+sp.lines)
	var resp string
	if t.kind == "lmtp" {
		var rs map[string]*smtp.DataResponse
		rs, err = w.CloseWithLMTPResponse()
		var lerr smtp.LMTPDataError
		if errors.As(err, &lerr) && len(lerr) == 1 {
			for _, se := range lerr {
				err = se // the one recipient's answer
			}
		}
		if r := rs[rcpt]; r != nil {
			resp = r.StatusText
		}
	} else {
		var r *smtp.DataResponse
		if r, err = w.CloseWithResponse(); r != nil {
			resp = r.StatusText
		}
	}
	if err != nil {
		if isReply(err) && !isClosing(err) {
			return false, t.refused("the end of the message", err)
		}
		t.drop()
		return false, t.broken("waiting for the answer to the message", err, true)
	}
	t.trace("S: 250 %s", resp)
	return false, nil
}

func mailParams(t *SMTP, mo smtp.MailOptions) string {
	var s string
	if t.eight {
		s += " BODY=8BITMIME"
	}
	if mo.Size > 0 {
		s += fmt.Sprintf(" SIZE=%d", mo.Size)
	}
	if mo.UTF8 {
		s += " SMTPUTF8"
	}
	return s
}

// reset ends a refused transaction with RSET, or drops the connection if
// that fails too.
func (t *SMTP) reset() {
	if err := t.c.Reset(); err != nil {
		t.drop()
		return
	}
}

// refused makes the *Error of an answer that refused the message.
func (t *SMTP) refused(op string, err error) error {
	var se *smtp.SMTPError
	errors.As(err, &se)
	t.trace("S: %d %s", se.Code, se.Message)
	return &Error{Target: t.kind, Op: op + " at " + t.where(), Err: err,
		MessageOnly: true, Temporary: se.Code/100 == 4}
}

// broken makes the *Error of a connection that failed during a
// transaction. unknown says the server had the whole message.
func (t *SMTP) broken(op string, err error, unknown bool) error {
	t.trace("connection lost (%s): %v", op, err)
	if unknown {
		err = fmt.Errorf("the connection ended before the server confirmed the message, "+
			"which it may or may not have delivered: it is taken as not delivered "+
			"(a later run delivers it again, perhaps a second time): %w", err)
	}
	return &Error{Target: t.kind, Op: op + " at " + t.where(), Err: err,
		MessageOnly: true, Temporary: true}
}

// isReply reports whether err is an answer of the server (a 4xx or 5xx
// reply), not a failure of the connection or a garbled answer.
func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && (se.Code/100 == 4 || se.Code/100 == 5)
}

// isClosing reports a 421 answer: the server closes the connection (RFC
// 5321 §3.8).
func isClosing(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == 421
}

// checkAddress refuses what cannot stand between < and > in MAIL FROM or
// RCPT TO: control characters, blanks, angle brackets. "" passes (the
// null sender).
func checkAddress(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c == 0x7f:
			return errors.New("it holds a control character")
		case c == ' ' || c == '<' || c == '>':
			return fmt.Errorf("it holds %q", c)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Commit does nothing: a message is delivered once the server has
// answered 250 to it.
func (t *SMTP) Commit() error { return nil }

// Close says QUIT, closes the connection and removes the spool file.
func (t *SMTP) Close() error {
	if t.c != nil {
		t.conn.timeout = min(t.opts.Timeout, 5*time.Second)
		t.c.CommandTimeout = t.conn.timeout
		if err := t.c.Quit(); err != nil {
			t.c.Close()
		}
		t.c, t.conn = nil, nil
	}
	t.sp.close()
	return nil
}

// smtpConn renews a write deadline before every write, so that a stalled
// server fails a write in time while a large message that keeps moving
// does not (go-smtp sets read deadlines itself, and none for the message).
// It can hand out bytes once more (see SMTP.startTLS).
type smtpConn struct {
	net.Conn
	timeout time.Duration
	replay  []byte
}

func (c *smtpConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *smtpConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// smtpSpool holds one message, and what Deliver must know of it before
// sending it.
type smtpSpool struct {
	mem  []byte   // the first bytes, up to cap(mem)
	file *os.File // the rest, if any; unlinked, reused
	size int64    // bytes of the message
	// What the bytes hold.
	lines    int64 // LFs
	nul, cr  bool
	eightBit bool // any byte ≥ 0x80
	header8  bool // a byte ≥ 0x80 in the header
	// scanning state
	inHeader, lineStart bool
}

// fill reads the message from r and scans it. Errors are *Error.
func (s *smtpSpool) fill(kind string, r io.Reader, buf []byte) error {
	s.mem = s.mem[:0]
	s.size, s.lines = 0, 0
	s.nul, s.cr, s.eightBit, s.header8 = false, false, false, false
	s.inHeader, s.lineStart = true, true
	inFile := false
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			s.scan(chunk)
			if !inFile {
				k := min(len(chunk), cap(s.mem)-len(s.mem))
				s.mem = append(s.mem, chunk[:k]...)
				chunk = chunk[k:]
				if len(chunk) > 0 {
					if err := s.startFile(); err != nil {
						return &Error{Target: kind, Op: "spooling the message in " + os.TempDir(), Err: err}
					}
					inFile = true
				}
			}
			if len(chunk) > 0 {
				if _, err := s.file.Write(chunk); err != nil {
					s.dropFile()
					return &Error{Target: kind, Op: "spooling the message in " + os.TempDir(), Err: err}
				}
			}
			s.size += int64(n)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &Error{Target: kind, Op: "reading the message", Err: rerr, Source: true}
		}
	}
}

// scan notes what the bytes hold.
func (s *smtpSpool) scan(p []byte) {
	s.lines += int64(bytes.Count(p, []byte{'\n'}))
	if !s.nul && bytes.IndexByte(p, 0) >= 0 {
		s.nul = true
	}
	if !s.cr && bytes.IndexByte(p, '\r') >= 0 {
		s.cr = true
	}
	if !s.eightBit || s.inHeader {
		for _, c := range p {
			if c >= 0x80 {
				s.eightBit = true
				if s.inHeader {
					s.header8 = true
				}
			}
			if s.inHeader {
				if c == '\n' && s.lineStart {
					s.inHeader = false // the empty line that ends the header
				}
				s.lineStart = c == '\n'
			} else if s.eightBit {
				break
			}
		}
	}
}

// startFile makes the spool file ready for the rest of a message: a new
// unlinked file, or the one of the last message, emptied.
func (s *smtpSpool) startFile() error {
	if s.file == nil {
		f, err := os.CreateTemp("", "popfetch-smtp-")
		if err != nil {
			return err
		}
		os.Remove(f.Name()) // only our descriptor holds it now
		s.file = f
		return nil
	}
	_, err := s.file.Seek(0, io.SeekStart)
	if err == nil {
		err = s.file.Truncate(0)
	}
	if err != nil {
		s.dropFile()
	}
	return err
}

// reader returns the spooled message.
func (s *smtpSpool) reader() io.Reader {
	if int64(len(s.mem)) == s.size {
		return bytes.NewReader(s.mem)
	}
	return io.MultiReader(bytes.NewReader(s.mem),
		io.NewSectionReader(s.file, 0, s.size-int64(len(s.mem))))
}

func (s *smtpSpool) dropFile() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

func (s *smtpSpool) close() { s.dropFile() }

package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is the I/O timeout used when Options.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// DefaultMinProgress is the progress asked of a server in each Timeout of
// waiting when Options.MinProgress is zero: 4 KiB, which any link that
// carries mail at all brings in well under a second, while a server that
// trickles bytes to hold a session open must send them in earnest.
const DefaultMinProgress = 4 << 10

// DefaultWindow is the number of pipelined commands in flight used when
// Options.Window is zero.
const DefaultWindow = 1000

// DefaultMaxUID is the longest UID accepted when Options.MaxUID is zero.
// RFC 1939 §7 allows 70 octets; real servers stay within that, and a
// longer UID is taken as an attempt to exhaust memory.
const DefaultMaxUID = 512

// DefaultMaxListing bounds the octets of one CAPA, LIST or UIDL response
// (each line counted with a two-octet line ending) when Options.MaxListing
// is zero: 80 MiB holds a million messages whose UIDs have the greatest
// length RFC 1939 §7 allows.
const DefaultMaxListing = 80 << 20

// Options configure the transport of a Client. A nil *Options is the same as
// the zero value.
type Options struct {
	// TLSConfig is used for implicit TLS and STLS. It is cloned; if its
	// ServerName is empty, the host of the dialled address is used. TLS 1.2
	// is the minimum whatever MinVersion says.
	TLSConfig *tls.Config
	// Timeout bounds how long the client waits on the server. Connecting,
	// the TLS handshake and each write must finish within it. While the
	// client waits for responses, every Timeout spent waiting must bring
	// the end of a response or at least MinProgress octets: a server that
	// stalls, or that trickles bytes to hold the session open, fails with
	// a timeout (a net.Error whose Timeout is true), while a long transfer
	// that keeps moving never does. Time the caller spends between reads
	// (delivering a message) does not count. Zero means DefaultTimeout.
	Timeout time.Duration
	// MinProgress is the octets each Timeout of waiting must bring, unless
	// a response ends within it (see Timeout). Zero means
	// DefaultMinProgress.
	MinProgress int
	// Dialer dials the TCP connection. Nil means a default net.Dialer.
	Dialer *net.Dialer
	// Logger receives the protocol trace at slog.LevelDebug, with
	// passwords, AUTH exchanges and message contents left out. Nil: silent.
	Logger *slog.Logger
	// Window bounds the number of commands written but not yet answered
	// when pipelining. Zero means DefaultWindow.
	Window int
	// MaxUID bounds the length of a UID in a UIDL response: a longer one
	// is a *ProtocolError. Zero means DefaultMaxUID.
	MaxUID int
	// MaxListing bounds the size of a CAPA, LIST or UIDL response in
	// octets: a longer one is a *ProtocolError. Zero means
	// DefaultMaxListing.
	MaxListing int64
}

func (o *Options) timeout() time.Duration {
	if o == nil || o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o *Options) window() int {
	if o == nil || o.Window <= 0 {
		return DefaultWindow
	}
	return o.Window
}

func (o *Options) minProgress() int {
	if o == nil || o.MinProgress <= 0 {
		return DefaultMinProgress
	}
	return o.MinProgress
}

func (o *Options) maxUID() int {
	if o == nil || o.MaxUID <= 0 {
		return DefaultMaxUID
	}
	return o.MaxUID
}

func (o *Options) maxListing() int64 {
	if o == nil || o.MaxListing <= 0 {
		return DefaultMaxListing
	}
	return o.MaxListing
}

func (o *Options) logger() *slog.Logger {
	if o == nil {
		return nil
	}
	return o.Logger
}

func (o *Options) dialer() *net.Dialer {
	if o == nil || o.Dialer == nil {
		return &net.Dialer{}
	}
	return o.Dialer
}

// tlsConfig returns a clone of the configured TLS config for host.
func (o *Options) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if o != nil && o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Client is a POP3 client connection. See the package documentation for
// how commands, pipelining and errors work.
type Client struct {
	opts     *Options
	timeout  time.Duration
	window   int
	minProg  int64
	maxUID   int
	maxList  int64
	log      *slog.Logger
	raw      net.Conn      // the TCP connection
	tls      *tls.Conn     // the TLS connection on raw, nil without TLS
	dc       *deadlineConn // raw or tls, with the deadlines of Options.Timeout
	br       *bufio.Reader
	w        *writer
	greeting string
	caps     Caps

	queue []*Command // issued and not yet fully answered, oldest first
	sent  int        // queue[:sent] have been handed to the writer

	mu     sync.Mutex
	broken error // sticky: set once, then every call returns it
}

// Dial connects to addr ("host:port") without TLS and reads the greeting.
// A server that speaks TLS from the first byte never greets in plain text;
// so that this does not cost the whole timeout, Dial tries a TLS handshake
// on a second connection when no greeting came within tlsProbeAfter, and
// returns ErrImplicitTLS at once if it succeeds.
func Dial(ctx context.Context, addr string, opts *Options) (*Client, error) {
	conn, err := dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	stop := probeImplicitTLS(ctx, addr, opts, conn)
	c, err := newClient(conn, nil, opts)
	if speaksTLS := stop(); err != nil && speaksTLS {
		return nil, ErrImplicitTLS
	}
	return c, err
}

// tlsProbeAfter is how long Dial waits for a greeting before it checks
// whether the port speaks TLS; servers greet at once, and one that takes
// longer is only checked, never given up on.
const tlsProbeAfter = time.Second

// probeImplicitTLS starts a watch on conn, whose greeting is awaited:
// after tlsProbeAfter without one, it tries a TLS handshake with addr on a
// second connection (without verifying the certificate: only whether the
// port speaks TLS is asked, and nothing is sent over it), and if that
// succeeds closes conn, so that the wait for the greeting ends. The
// returned stop ends the watch and reports whether it closed conn.
func probeImplicitTLS(ctx context.Context, addr string, opts *Options, conn net.Conn) (stop func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan bool, 1)
	go func() {
		timer := time.NewTimer(tlsProbeAfter)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			done <- false
			return
		case <-timer.C:
		}
		probe, err := dial(ctx, addr, opts)
		if err != nil {
			done <- false
			return
		}
		defer probe.Close()
		host, _, _ := net.SplitHostPort(addr)
		cfg := &tls.Config{ServerName: host, InsecureSkipVerify: true} // only: does it speak TLS?
		if _, err := handshake(ctx, probe, cfg, opts.timeout()); err != nil {
			done <- false
			return
		}
		conn.Close()
		done <- true
	}()
	return func() bool {
		cancel()
		return <-done
	}
}

// DialTLS connects to addr with implicit TLS (RFC 8314; port 995) and reads
// the greeting.
func DialTLS(ctx context.Context, addr string, opts *Options) (*Client, error) {
	raw, err := dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	tc, err := handshake(ctx, raw, opts.tlsConfig(host), opts.timeout())
	if err != nil {
		raw.Close()
		return nil, err
	}
	return newClient(raw, tc, opts)
}

// DialStartTLS connects to addr without TLS, reads the greeting, asks for the
// capabilities and upgrades the connection with STLS (RFC 2595). If the
// server does not list STLS it returns ErrNoSTLS and sends nothing more than
// CAPA and QUIT. The capabilities are asked again after the upgrade.
func DialStartTLS(ctx context.Context, addr string, opts *Options) (*Client, error) {
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
		c.Close()
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	if err := c.StartTLS(ctx, opts.tlsConfig(host)); err != nil {
		if errors.Is(err, ErrNoSTLS) {
			c.Quit()
		}
		c.Close()
		return nil, err
	}
	if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NewClient starts a session on an established connection and reads the
// greeting. If conn is a *tls.Conn its handshake must be complete. The
// client owns conn from then on.
func NewClient(conn net.Conn, opts *Options) (*Client, error) {
	if tc, ok := conn.(*tls.Conn); ok {
		return newClient(conn, tc, opts)
	}
	return newClient(conn, nil, opts)
}

func isRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func dial(ctx context.Context, addr string, opts *Options) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout())
	defer cancel()
	conn, err := opts.dialer().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: connecting to %s: %w", addr, err)
	}
	return conn, nil
}

// handshake runs a TLS handshake on raw, bounded as a whole by timeout:
// a server that trickles it never holds it longer.
func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	tc := tls.Client(raw, cfg)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && (bytes.HasPrefix(rh.RecordHeader[:], []byte("+OK")) || bytes.HasPrefix(rh.RecordHeader[:], []byte("-ERR"))) {
			// A plain POP3 server greets the ClientHello's sender.
			err = ErrNotTLS
		}
		return nil, &TLSError{Err: err}
	}
	return tc, nil
}

// TLSError reports a failed TLS handshake, including a certificate that
// did not verify.
type TLSError struct{ Err error }

func (e *TLSError) Error() string { return "pop3: TLS handshake: " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

func newClient(raw net.Conn, tc *tls.Conn, opts *Options) (*Client, error) {
	c := &Client{
		opts:    opts,
		timeout: opts.timeout(),
		window:  opts.window(),
		minProg: int64(opts.minProgress()),
		maxUID:  opts.maxUID(),
		maxList: opts.maxListing(),
		log:     opts.logger(),
		raw:     raw,
	}
	c.setConn(tc)
	line, err := readLine(c.br, "")
	if err != nil {
		// ioError before Close: Close would record ErrClosed as the cause
		err = c.ioError("reading greeting", err)
		c.Close()
		return nil, err
	}
	c.traceS(line)
	c.dc.progress()
	st, err := parseStatus(line, "")
	if err != nil {
		c.Close()
		return nil, err
	}
	if !st.ok {
		c.Close()
		return nil, &Error{Command: "greeting", Code: st.code, Text: st.text}
	}
	// RFC 1939 §4: after its one-line greeting the server waits for a
	// command; more lines would be taken for the answers to the first
	// commands (see unasked).
	if err := c.unasked(""); err != nil {
		c.Close()
		return nil, err
	}
	c.greeting = st.text
	return c, nil
}

// setConn installs the transport: tc if not nil, else the raw
// connection, with deadlines, and starts a writer on it.
func (c *Client) setConn(tc *tls.Conn) {
	var conn net.Conn = c.raw
	if tc != nil {
		conn = tc
	}
	c.tls = tc
	c.dc = &deadlineConn{Conn: conn, timeout: c.timeout, min: c.minProg}
	c.br = bufio.NewReaderSize(c.dc, readerSize)
	c.w = startWriter(c, c.dc)
}

// Greeting returns the text of the server's greeting, after "+OK ".
func (c *Client) Greeting() string { return c.greeting }

// Caps returns the capabilities of the last successful CAPA, or nil.
func (c *Client) Caps() Caps { return c.caps }

// AssumeCaps makes the client act as if the last CAPA had listed caps,
// typically those the server listed in an earlier session: commands are
// pipelined at once if caps lists PIPELINING. The next successful CAPA
// replaces them. A caller that assumes must be ready for a server that
// changed since: a command the server no longer takes is refused (-ERR)
// like any other.
func (c *Client) AssumeCaps(caps Caps) { c.caps = caps }

// TLSConnectionState returns the state of the TLS connection, if any.
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tls != nil {
		return c.tls.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// RemoteAddr returns the address actually connected to.
func (c *Client) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// Pipelining reports whether commands are pipelined: the last CAPA listed
// PIPELINING.
func (c *Client) Pipelining() bool { return c.caps.Has("PIPELINING") }

// Close drops the connection without QUIT, so no deletion is committed
// (RFC 1939 §6). It may be called from any goroutine, and unblocks any call
// waiting on the network. Closing a closed client is a no-op.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.w.stop()
	return nil
}

// Hangup ends the session without QUIT, as Close does, so no deletion is
// committed and nothing retrieved counts (RFC 1939 §6: no UPDATE state);
// but it first lets the server see the end: it closes the sending side
// and, for up to wait, reads and discards what the server still sends,
// until the server closes the connection. A server that locks the
// mailbox for the session has then released it when Hangup returns, so
// another session can start at once. It returns nil when the server
// closed in time.
func (c *Client) Hangup(wait time.Duration) error {
	c.w.stop()
	c.mu.Lock()
	first := c.broken == nil
	if first {
		c.broken = ErrClosed
	}
	c.mu.Unlock()
	if !first {
		return nil // broken or closed already: nothing to wait for
	}
	defer c.raw.Close()
	if c.tls != nil {
		c.tls.CloseWrite() // close_notify
	}
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// The reads have deadlines of their own (deadlineConn): the wait is
	// bounded by closing the connection under them.
	var late atomic.Bool
	t := time.AfterFunc(wait, func() { late.Store(true); c.raw.Close() })
	defer t.Stop()
	var buf [4096]byte
	for {
		if _, err := c.br.Read(buf[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			if late.Load() {
				return fmt.Errorf("pop3: hanging up: the server did not close the connection within %v", wait)
			}
			return fmt.Errorf("pop3: hanging up: %w", err)
		}
	}
}

// fail marks the client broken with err (the first failure wins) and closes
// the connection.
func (c *Client) fail(err error) {
	c.mu.Lock()
	first := c.broken == nil
	if first {
		c.broken = err
	}
	c.mu.Unlock()
	if first {
		c.raw.Close()
	}
}

// Err returns the error that broke the client, ErrClosed after Close or
// Quit, or nil while the session is usable.
func (c *Client) Err() error { return c.err() }

// err returns the sticky failure, or nil.
func (c *Client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// ioError records a read failure and returns the error that broke the
// client (which may be an earlier write failure, or ErrClosed).
func (c *Client) ioError(op string, err error) error {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		err = fmt.Errorf("pop3: %s: %w", op, err)
	}
	c.fail(err)
	return c.err()
}

func (c *Client) traceC(s string) {
	if c.log != nil {
		c.log.Debug("C: " + s)
	}
}

func (c *Client) traceS(line []byte) {
	if c.log != nil {
		c.log.Debug("S: " + string(line))
	}
}

// deadlineConn gives each read and write on a connection the deadline of
// Options.Timeout. A write has the whole timeout. A read has what is left
// of the timeout since the last progress, counting only the time spent
// waiting in reads: progress is MinProgress octets read, or the end of a
// response (the Client calls progress). So the timeout measures how long
// the server kept the client waiting without moving, and a server that
// sends one byte every few seconds cannot hold a session open, while the
// caller's own pauses between reads never count against the server.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	min     int64

	mu     sync.Mutex
	waited time.Duration // spent waiting in Read since the last progress
	got    int64         // octets read since the last progress
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.mu.Lock()
	left := d.timeout - d.waited
	d.mu.Unlock()
	start := time.Now()
	if err := d.Conn.SetReadDeadline(start.Add(left)); err != nil {
		return 0, err
	}
	n, err := d.Conn.Read(p)
	d.mu.Lock()
	d.waited += time.Since(start)
	if d.got += int64(n); d.got >= d.min {
		d.waited, d.got = 0, 0
	}
	d.mu.Unlock()
	return n, err
}

// progress records the end of a response: the next wait has the whole
// timeout again.
func (d *deadlineConn) progress() {
	d.mu.Lock()
	d.waited, d.got = 0, 0
	d.mu.Unlock()
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	if err := d.Conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.Conn.Write(p)
}

// writer writes command lines from its own goroutine, so that the caller can
// read responses while a long pipeline is being written. It flushes whenever
// it has nothing more queued.
type writer struct {
	ch       chan []byte
	stopping chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startWriter(c *Client, conn net.Conn) *writer {
	w := &writer{
		ch:       make(chan []byte, c.window+4),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		bw := bufio.NewWriterSize(conn, 4096)
		for {
			select {
			case line := <-w.ch:
				_, err := bw.Write(line)
				if err == nil && len(w.ch) == 0 {
					err = bw.Flush()
				}
				if err != nil {
					c.fail(fmt.Errorf("pop3: writing: %w", err))
					return
				}
			case <-w.stopping:
				return
			}
		}
	}()
	return w
}

// send queues a line for writing; after stop it is dropped.
func (w *writer) send(line []byte) {
	select {
	case w.ch <- line:
	case <-w.stopping:
	case <-w.done:
	}
}

// stop ends the writer and waits for it. Lines still queued are dropped.
func (w *writer) stop() {
	w.once.Do(func() { close(w.stopping) })
	<-w.done
}

// Caps are the capabilities listed by CAPA (RFC 2449 §5): each keyword, in
// upper case, with its arguments.
type Caps map[string][]string

// Has reports whether the capability is listed. name is matched without
// regard to case.
func (c Caps) Has(name string) bool {
	_, ok := c[strings.ToUpper(name)]
	return ok
}

// Args returns the arguments of a capability, e.g. the mechanisms of SASL.
func (c Caps) Args(name string) []string { return c[strings.ToUpper(name)] }

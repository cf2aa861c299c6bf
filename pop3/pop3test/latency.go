package pop3test

import (
	"net"
	"sync"
	"time"
)

// RoundTrips returns how many round trips the clients of all sessions so
// far made the server wait, with Latency set: each time the server had
// answered everything it was sent and the next command came only after
// most of a round trip (so the client was waiting for an answer), it
// counts the wait in round trips, rounded, at least one. Work a client
// does between commands counts only if it adds more than half a round
// trip. The TLS handshake and greeting count like any other wait, from
// the connection's acceptance. Without Latency it returns 0.
func (s *Server) RoundTrips() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waits
}

// idle records that everything sent was answered at t.
func (ss *session) idle(t time.Time) {
	if ss.waiting.IsZero() {
		ss.waiting = t
	}
}

// arrived records the arrival of a command line at t.
func (ss *session) arrived(t time.Time) {
	s := ss.srv
	since := ss.waiting
	if !ss.started.IsZero() {
		since = ss.started // the first command: from the connection on
		ss.started = time.Time{}
	}
	ss.waiting = time.Time{}
	if s.Latency <= 0 || since.IsZero() {
		return
	}
	rtt := 2 * s.Latency
	gap := t.Sub(since)
	if gap < rtt*9/10 {
		return // the client did not wait for an answer
	}
	n := max(1, int((gap+rtt/2)/rtt))
	s.mu.Lock()
	s.waits += n
	s.mu.Unlock()
}

// wrapLatency returns conn, or a connection that delays each byte by
// Latency in each direction.
func (s *Server) wrapLatency(conn net.Conn) net.Conn {
	if s.Latency <= 0 {
		return conn
	}
	l := &latencyConn{Conn: conn, delay: s.Latency, in: make(chan chunk, 1<<16), out: make(chan chunk, 1<<16)}
	l.wg.Add(2)
	go l.reader()
	go l.writer()
	return l
}

type chunk struct {
	data []byte
	at   time.Time
}

// latencyConn delays what it reads and what it writes, like a long link:
// writes return at once and are sent after the delay; reads see bytes
// only once the delay after their arrival has passed.
type latencyConn struct {
	net.Conn
	delay   time.Duration
	in, out chan chunk
	pending []byte
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
}

func (l *latencyConn) reader() {
	defer l.wg.Done()
	defer close(l.in)
	for {
		buf := make([]byte, 32<<10)
		n, err := l.Conn.Read(buf)
		if n > 0 {
			l.in <- chunk{data: buf[:n], at: time.Now().Add(l.delay)}
		}
		if err != nil {
			l.in <- chunk{at: time.Now().Add(l.delay)} // EOF marker
			return
		}
	}
}

func (l *latencyConn) writer() {
	defer l.wg.Done()
	defer l.Conn.Close()
	for c := range l.out {
		time.Sleep(time.Until(c.at))
		if _, err := l.Conn.Write(c.data); err != nil {
			for range l.out {
			}
			return
		}
	}
}

func (l *latencyConn) Read(p []byte) (int, error) {
	if len(l.pending) == 0 {
		c, ok := <-l.in
		if !ok || c.data == nil {
			return 0, net.ErrClosed
		}
		time.Sleep(time.Until(c.at))
		l.pending = c.data
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

func (l *latencyConn) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, net.ErrClosed
	}
	l.out <- chunk{data: append([]byte(nil), p...), at: time.Now().Add(l.delay)}
	return len(p), nil
}

// Close closes the connection once what was written has been sent, as
// a kernel does with a socket's send buffer.
func (l *latencyConn) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.out)
	}
	return nil
}

// SetWriteDeadline does nothing: writes return at once, and the delayed
// sending must not be cut short by a deadline meant for the write call
// (tls.Conn.Close sets one while sending its close_notify).
func (l *latencyConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline does nothing, as SetWriteDeadline.
func (l *latencyConn) SetDeadline(time.Time) error { return nil }

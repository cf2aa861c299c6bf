package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-sasl"
)

// Seeds are in testdata/fuzz/<FuzzName>/, taken from the examples of RFC
// 1939, 2449, 3206 and 5034.

// FuzzParseStatus checks that any response line parses or is a
// *ProtocolError, and that what parses says the same once written back.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"))
	f.Add([]byte("-ERR [IN-USE] Do you have another POP session running?"))
	f.Fuzz(func(t *testing.T, line []byte) {
		st, err := parseStatus(line, "X")
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "X" {
				t.Fatalf("error %v (%T) is not a *ProtocolError for X", err, err)
			}
			if hasPrefixFold(line, "+OK") && (len(line) == 3 || line[3] == ' ' || line[3] == '\t') {
				t.Fatalf("refused a +OK line: %v", err)
			}
			return
		}
		if st.ok != hasPrefixFold(line, "+OK") || (!st.ok && !hasPrefixFold(line, "-ERR")) {
			t.Fatalf("ok=%v for %q", st.ok, line)
		}
		if !strings.HasSuffix(string(line), st.text) {
			t.Fatalf("text %q is not the end of %q", st.text, line)
		}
		if st.code != "" {
			if st.ok {
				t.Fatalf("a code in a +OK line: %q", st.code)
			}
			for _, c := range []byte(st.code) {
				if c <= ' ' || c > '~' || c == ']' || ('a' <= c && c <= 'z') {
					t.Fatalf("code %q holds %q", st.code, c)
				}
			}
			if strings.HasPrefix(st.text, " ") {
				t.Fatalf("text %q after the code starts with a space", st.text)
			}
		}
		// written back, the line means the same
		var w string
		if st.ok {
			w = "+OK"
		} else {
			w = "-ERR"
			if st.code != "" {
				w += " [" + string(st.code) + "]"
			}
		}
		if st.text != "" {
			w += " " + st.text
		}
		st2, err := parseStatus([]byte(w), "X")
		if err != nil || st2 != st {
			t.Fatalf("%q parsed as %+v; written back as %q: %+v, %v", line, st, w, st2, err)
		}
	})
}

// refDot is a simple reference for a multi-line response body: whole
// lines, unstuffed, CRLF (or LF) turned into LF. It returns the body, its
// size as the server counts it, what follows the terminator, and whether
// there was a terminator; without one, tail is the unstuffed partial last
// line, of which the reader may have passed on a part.
func refDot(wire []byte) (out []byte, octets int64, rest []byte, ended bool, tail []byte) {
	for {
		i := bytes.IndexByte(wire, '\n')
		if i < 0 {
			if len(wire) > 0 && wire[0] == '.' {
				wire = wire[1:]
			}
			return out, octets, nil, false, wire
		}
		line := wire[:i+1]
		wire = wire[i+1:]
		if string(line) == ".\r\n" || string(line) == ".\n" {
			return out, octets, wire, true, nil
		}
		if line[0] == '.' {
			line = line[1:]
		}
		text := bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		out = append(out, text...)
		out = append(out, '\n')
		octets += int64(len(text)) + 2
	}
}

// stuff byte-stuffs a message as pop3test does: lines split at LF, a CR
// before it dropped, every line sent with CRLF, a leading dot doubled. It
// returns the wire form (without the terminator), the size for LIST and the
// canonical form a reader must give back.
func stuff(msg []byte) (wire []byte, size int64, canon []byte) {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		size += int64(len(line)) + 2
		if len(line) > 0 && line[0] == '.' {
			wire = append(wire, '.')
		}
		wire = append(wire, line...)
		wire = append(wire, "\r\n"...)
		canon = append(canon, line...)
		canon = append(canon, '\n')
	}
	return wire, size, canon
}

// fuzzReader picks a buffer size and a source for the dot reader.
func fuzzReader(wire []byte, mode uint8) *bufio.Reader {
	var r io.Reader = bytes.NewReader(wire)
	if mode&1 != 0 {
		r = iotest.OneByteReader(r)
	}
	size := readerSize
	if mode&2 != 0 {
		size = 16 + int(mode>>2)
	}
	return bufio.NewReaderSize(r, size)
}

// FuzzDotReader compares the dot reader with refDot on arbitrary bytes, and
// round-trips an arbitrary message through stuff.
func FuzzDotReader(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n..stuffed\r\n.\r\n"), uint8(0), uint8(0))
	f.Add([]byte(strings.Repeat("y", 15)+"\r\n.\r\n"), uint8(2), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, mode, chunk uint8) {
		n := 1 + int(chunk)

		// data as a server's bytes
		want, octets, rest, ended, tail := refDot(data)
		br := fuzzReader(data, mode)
		var ends int
		d := newDotReader(br, func(error) { ends++ })
		got, err := readAll(t, d, n)
		if ends != 1 {
			t.Fatalf("onEnd called %d times", ends)
		}
		if ended {
			if err != nil {
				t.Fatalf("error %v on a complete body", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %q, want %q", got, want)
			}
			if d.octets != octets {
				t.Fatalf("octets %d, want %d", d.octets, octets)
			}
			left, _ := io.ReadAll(br)
			if !bytes.Equal(left, rest) {
				t.Fatalf("left %q after the terminator, want %q", left, rest)
			}
		} else {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v on a cut body", err)
			}
			if !bytes.HasPrefix(got, want) || !bytes.HasPrefix(append(want, tail...), got) {
				t.Fatalf("read %q of a cut body, want %q and part of %q", got, want, tail)
			}
		}

		// data as a message, stuffed, read back
		wire, size, canon := stuff(data)
		wire = append(wire, ".\r\n+OK next\r\n"...)
		br = fuzzReader(wire, mode)
		d = newDotReader(br, nil)
		got, err = readAll(t, d, n)
		if err != nil || !bytes.Equal(got, canon) {
			t.Fatalf("round trip: read %q, %v; want %q", got, err, canon)
		}
		if d.octets != size {
			t.Fatalf("round trip: octets %d, size %d", d.octets, size)
		}
		if left, _ := io.ReadAll(br); string(left) != "+OK next\r\n" {
			t.Fatalf("round trip: left %q", left)
		}
	})
}

// FuzzScanListing checks that any LIST line parses or is a *ProtocolError,
// and that what parses is a message number and a size that say the same
// once written back.
func FuzzScanListing(f *testing.F) {
	f.Add([]byte("1 120"))
	f.Add([]byte("+1\u00a0120 x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseScanListing("LIST", line)
		// scanSizeLine, which the client uses, is parseScanListing
		// without its allocations: it must say the same.
		n, size, serr := scanSizeLine("LIST", line)
		if (serr == nil) != (err == nil) || n != m.Number || size != m.Size {
			t.Fatalf("%q: scanSizeLine says %d %d %v, parseScanListing %+v %v", line, n, size, serr, m, err)
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "LIST" {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if m.Number < 1 || m.Size < 0 || m.UID != "" {
			t.Fatalf("%q: accepted %+v", line, m)
		}
		m2, err := parseScanListing("LIST", []byte(fmt.Sprintf("%d %d", m.Number, m.Size)))
		if err != nil || m2 != m {
			t.Fatalf("%q: %+v written back: %+v, %v", line, m, m2, err)
		}
	})
}

// FuzzUIDListing checks that any UIDL line parses or is a *ProtocolError,
// and that an accepted UID is part of the line, trimmed, never empty, and
// says the same once written back.
func FuzzUIDListing(f *testing.F) {
	f.Add([]byte("1 whqtswO00WBw418f9t5JxYwZ"))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseUIDListing(line)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "UIDL" {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if m.Number < 1 || m.Size != 0 || m.UID == "" || !bytes.Contains(line, []byte(m.UID)) ||
			strings.Trim(m.UID, " \t") != m.UID {
			t.Fatalf("%q: accepted %+v", line, m)
		}
		if ValidUID(m.UID) && strings.ContainsAny(m.UID, " \t\r\n\x00\x7f") {
			t.Fatalf("%q: ValidUID(%q)", line, m.UID)
		}
		m2, err := parseUIDListing([]byte(fmt.Sprintf("%d %s", m.Number, m.UID)))
		if err != nil || m2 != m {
			t.Fatalf("%q: %+v written back: %+v, %v", line, m, m2, err)
		}
	})
}

// fuzzConn is a connection whose peer sends fixed bytes and swallows
// everything written.
type fuzzConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	closed bool
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzClient runs a fixed session against arbitrary server bytes: it must
// never panic or hang, and once a call fails with anything but a -ERR,
// every later call must fail too (a broken session stays broken).
func FuzzClient(f *testing.F) {
	f.Add([]byte("+OK <1.2@x>\r\n+OK\r\nPIPELINING\r\n.\r\n+OK\r\n+OK\r\n+OK\r\n+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n" +
		"+OK\r\n1 u\r\n.\r\n+OK\r\na\r\n.\r\n+OK\r\n.\r\n+OK\r\n+OK\r\n"))
	f.Fuzz(func(t *testing.T, server []byte) {
		conn := &fuzzConn{r: bytes.NewReader(server)}
		c, err := NewClient(conn, &Options{Window: 3})
		if err != nil {
			return
		}
		defer c.Close()
		var broken error
		check := func(what string, err error) {
			var e *Error
			if broken != nil && err == nil {
				t.Fatalf("%s succeeded after %v", what, broken)
			}
			if broken == nil && err != nil && !errors.As(err, &e) && !errors.Is(err, ErrBodySkipped) &&
				!errors.Is(err, errMechFuzz) && !errors.Is(err, sasl.ErrUnexpectedServerChallenge) {
				broken = err
			}
		}
		_, err = c.Capa().Wait()
		check("CAPA", err)
		check("AUTH", c.Auth(sasl.NewLoginClient("u", "p")))
		c.User("u")
		check("PASS", c.Pass("p").Wait())
		check("AUTH", c.Auth(fuzzMech{}))
		stat, list, uidl := c.Stat(), c.List(), c.UIDL()
		r1, top, dele := c.Retr(1), c.Top(1, 0), c.Dele(1)
		_, _, err = stat.Wait()
		check("STAT", err)
		_, err = list.Wait()
		check("LIST", err)
		_, err = uidl.Wait()
		check("UIDL", err)
		if body, err := top.Body(); err == nil {
			_, err = io.ReadAll(body)
			check("TOP body", err)
		} else {
			check("TOP", err)
		}
		if body, err := r1.Body(); err == nil {
			_, err = io.ReadAll(body)
			check("RETR body", err)
		} else {
			check("RETR", err)
		}
		check("DELE", dele.Wait())
		check("QUIT", c.Quit())
	})
}

var errMechFuzz = errors.New("fuzz mechanism")

// fuzzMech answers one challenge, then gives up.
type fuzzMech struct{}

func (fuzzMech) Start() (string, []byte, error) { return "X", nil, nil }
func (fuzzMech) Next(ch []byte) ([]byte, error) {
	if len(ch) > 0 {
		return nil, errMechFuzz
	}
	return []byte("r"), nil
}

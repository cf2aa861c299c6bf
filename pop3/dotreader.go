package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// dotReader reads the body of a multi-line response (RFC 1939 §3): it undoes
// the byte-stuffing of lines that start with ".", turns CRLF into LF, and
// returns io.EOF at the terminating ".". Every other byte, including NUL, bare
// CR and 8-bit bytes, is passed through. Lines may be of any length: a line
// longer than the read buffer is passed on in pieces, so memory stays flat.
//
// A bare LF is accepted as a line ending too (some servers send one); it is
// passed on as LF.
type dotReader struct {
	br        *bufio.Reader
	pend      []byte // bytes of the current piece not yet returned; aliases br's buffer
	lineStart bool   // the next byte read from br starts a line
	heldCR    bool   // a CR ended the previous piece and may start a CRLF
	emitCR    bool   // a held CR turned out to be bare and is yet to be returned
	octets    int64  // size of the message as on the server: LF counted as CRLF
	err       error  // sticky: io.EOF at the end, else the failure
	skipped   bool   // the rest was discarded for a later command's response
	onEnd     func(error)
	// first, if set, checks the first line (without its line ending, or
	// the first piece of a long one); an error ends the body with it.
	first func(line []byte) error
}

func newDotReader(br *bufio.Reader, onEnd func(error)) *dotReader {
	return &dotReader{br: br, lineStart: true, onEnd: onEnd}
}

// Read implements io.Reader. It returns io.ErrUnexpectedEOF (wrapped with the
// cause) if the connection ends before the terminator.
func (d *dotReader) Read(p []byte) (int, error) {
	if d.skipped {
		// a clean io.EOF here would pass a truncated message as whole
		return 0, ErrBodySkipped
	}
	n := 0
	for n < len(p) {
		if d.emitCR {
			p[n] = '\r'
			n++
			d.emitCR = false
			continue
		}
		if len(d.pend) == 0 {
			if d.err != nil {
				break
			}
			// Once something is returned, only go on while a whole line is
			// buffered, so a Read never waits on the network with data in hand.
			if n > 0 && !d.lineBuffered() {
				break
			}
			d.next()
			continue
		}
		c := copy(p[n:], d.pend)
		d.pend = d.pend[c:]
		n += c
	}
	if n > 0 {
		return n, nil
	}
	return 0, d.err
}

// lineBuffered reports whether a complete line waits in the buffer.
func (d *dotReader) lineBuffered() bool {
	b := d.br.Buffered()
	if b == 0 {
		return false
	}
	buf, _ := d.br.Peek(b)
	return bytes.IndexByte(buf, '\n') >= 0
}

// next reads the next piece of a line into d.pend, or sets d.err.
func (d *dotReader) next() {
	line, err := d.br.ReadSlice('\n')
	full := errors.Is(err, bufio.ErrBufferFull)
	if err != nil && !full {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.finish(&cutError{err: err})
		return
	}
	if check := d.first; check != nil {
		d.first = nil
		text := line
		if !full {
			text = bytes.TrimSuffix(bytes.TrimSuffix(text, []byte("\n")), []byte("\r"))
		}
		if err := check(text); err != nil {
			d.finish(err)
			return
		}
	}
	if d.lineStart && len(line) > 0 && line[0] == '.' {
		if !full && (len(line) == 2 || (len(line) == 3 && line[1] == '\r')) {
			// ".\r\n" or ".\n": the end of the response.
			d.finish(io.EOF)
			return
		}
		line = line[1:] // RFC 1939 §3: byte-stuffed dot
	}
	if d.heldCR {
		d.heldCR = false
		if len(line) == 0 || line[0] != '\n' {
			// a bare CR; if this is the LF of a CRLF instead, the line
			// ending is counted below
			d.emitCR = true
			d.octets++
		}
	}
	d.lineStart = !full
	if full {
		// A CR at the end of a piece may be the first half of a CRLF.
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
			d.heldCR = true
		}
		d.octets += int64(len(line))
		d.pend = line
		return
	}
	// CRLF -> LF. The slice is already consumed from br, so rewriting it in
	// place is safe and saves a copy.
	if n := len(line); n >= 2 && line[n-2] == '\r' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	// The line ending counts as two octets, as in the server's LIST size,
	// whether it came as CRLF, as a bare LF, or split across two pieces.
	d.octets += int64(len(line)) + 1
	d.pend = line
}

func (d *dotReader) finish(err error) {
	d.err = err
	if d.onEnd != nil {
		f := d.onEnd
		d.onEnd = nil
		if err == io.EOF {
			f(nil)
		} else {
			f(err)
		}
	}
}

// drain reads and discards the rest of the body.
func (d *dotReader) drain() error {
	for d.err == nil {
		d.pend = nil
		d.emitCR = false
		d.next()
	}
	d.pend = nil
	d.emitCR = false
	if d.err == io.EOF {
		return nil
	}
	return d.err
}

// cutError is the error of a message body that ended before its terminator.
type cutError struct{ err error }

func (e *cutError) Error() string {
	return "pop3: message cut short: " + e.err.Error()
}

// Unwrap returns both io.ErrUnexpectedEOF and the cause, so that
// errors.Is(err, io.ErrUnexpectedEOF) holds for every cut.
func (e *cutError) Unwrap() []error {
	if e.err == io.ErrUnexpectedEOF {
		return []error{e.err}
	}
	return []error{io.ErrUnexpectedEOF, e.err}
}

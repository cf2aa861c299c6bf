package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// dotCase is one multi-line response body as sent by a server (wire) and
// what reading it must give.
type dotCase struct {
	name   string
	wire   string
	want   string // the bytes read; for a cut body, the most that may be read
	min    string // for a cut body, the least that must be read
	cut    bool   // the body ends before its terminator: io.ErrUnexpectedEOF
	octets int64  // Octets once read (only checked when !cut)
	rest   string // what is left on the connection after the terminator
}

// A line longer than the buffer is passed on in pieces before its end is
// seen, so a cut body may yield part of its last line: hence min and want.

var mb = strings.Repeat("x", 1<<20)

var dotCases = []dotCase{
	{name: "empty body", wire: ".\r\n", want: "", octets: 0},
	{name: "empty body bare LF terminator", wire: ".\n", want: "", octets: 0},
	{name: "one line", wire: "abc\r\n.\r\n", want: "abc\n", octets: 5},
	{name: "empty lines", wire: "\r\n\r\n.\r\n", want: "\n\n", octets: 4},
	{name: "stuffed dot alone", wire: "..\r\n.\r\n", want: ".\n", octets: 3},
	{name: "stuffed dots", wire: "...\r\n..x\r\n.y\r\n.\r\n", want: "..\n.x\ny\n", octets: 11},
	{name: "dot space is not the terminator", wire: ". \r\n.\r\n", want: " \n", octets: 3},
	{name: "dot CR CR LF is not the terminator", wire: ".\r\r\n.\r\n", want: "\r\n", octets: 3},
	{name: "dot inside a line", wire: "a.\r\nb.c\r\n.\r\n", want: "a.\nb.c\n", octets: 9},
	{name: "bare LF terminator", wire: "a\r\n.\n", want: "a\n", octets: 3},
	{name: "bare LF line endings", wire: "a\nb\n.\n", want: "a\nb\n", octets: 6},
	{name: "bare LF stuffed", wire: "..a\n.\n", want: ".a\n", octets: 4},
	{name: "bare CR mid-line", wire: "a\rb\r\n.\r\n", want: "a\rb\n", octets: 5},
	{name: "CR CR LF", wire: "a\r\r\n.\r\n", want: "a\r\n", octets: 4},
	{name: "bare CR then dot", wire: "a\r.\r\n.\r\n", want: "a\r.\n", octets: 5},
	{name: "bare CR alone", wire: "\r\r\n.\r\n", want: "\r\n", octets: 3},
	{name: "NUL", wire: "a\x00b\r\n\x00\r\n.\r\n", want: "a\x00b\n\x00\n", octets: 8},
	{name: "8-bit", wire: "\xff\xfe\x80 caf\xc3\xa9\r\n.\r\n", want: "\xff\xfe\x80 caf\xc3\xa9\n", octets: 11},
	{name: "1 MB line", wire: mb + "\r\n.\r\n", want: mb + "\n", octets: 1<<20 + 2},
	{name: "1 MB stuffed line", wire: "." + mb + "\r\n.\r\n", want: mb + "\n", octets: 1<<20 + 2},
	{name: "1 MB line then stuffed dot", wire: mb + "\r\n..\r\n.\r\n", want: mb + "\n.\n", octets: 1<<20 + 5},
	{name: "1 MB line with a dot after a bare CR", wire: mb + "\r.\r\n.\r\n", want: mb + "\r.\n", octets: 1<<20 + 4},
	{name: "rest after terminator", wire: "a\r\n.\r\n+OK next\r\n", want: "a\n", octets: 3, rest: "+OK next\r\n"},
	{name: "rest after bare LF terminator", wire: ".\n-ERR x\r\n", want: "", rest: "-ERR x\r\n"},

	{name: "EOF at once", wire: "", cut: true},
	{name: "EOF before terminator", wire: "abc\r\n", want: "abc\n", min: "abc\n", cut: true},
	{name: "last line without newline", wire: "abc\r\ndef", want: "abc\n", min: "abc\n", cut: true},
	{name: "terminator without newline", wire: "abc\r\n.", want: "abc\n", min: "abc\n", cut: true},
	{name: "terminator without LF", wire: "abc\r\n.\r", want: "abc\n", min: "abc\n", cut: true},
	{name: "1 MB line cut", wire: "a\r\n" + mb, want: "a\n" + mb, min: "a\n", cut: true},
}

// readers returns ways of reading wire through a bufio.Reader: the client's
// own buffer size, the smallest bufio allows, and one byte at a time.
func readers() map[string]func(wire string) *bufio.Reader {
	sized := func(size int, wrap func(io.Reader) io.Reader) func(string) *bufio.Reader {
		return func(wire string) *bufio.Reader {
			return bufio.NewReaderSize(wrap(strings.NewReader(wire)), size)
		}
	}
	plain := func(r io.Reader) io.Reader { return r }
	oneByte := iotest.OneByteReader
	return map[string]func(string) *bufio.Reader{
		"64KiB":            sized(readerSize, plain),
		"16":               sized(16, plain),
		"17":               sized(17, plain),
		"4096":             sized(4096, plain),
		"64KiB/onebyte":    sized(readerSize, oneByte),
		"16/onebyte":       sized(16, oneByte),
		"4096/halfreader":  sized(4096, iotest.HalfReader),
		"64KiB/dataerr":    sized(readerSize, iotest.DataErrReader),
		"16/dataerr/1byte": sized(16, func(r io.Reader) io.Reader { return iotest.DataErrReader(oneByte(r)) }),
	}
}

// readAll reads d with reads of at most n bytes (0: io.ReadAll), checking
// that Read never returns bytes and an error together.
func readAll(t *testing.T, d io.Reader, n int) ([]byte, error) {
	t.Helper()
	if n == 0 {
		return io.ReadAll(d)
	}
	var out []byte
	p := make([]byte, n)
	for {
		k, err := d.Read(p)
		if k < 0 || k > n {
			t.Fatalf("Read returned %d", k)
		}
		if k > 0 && err != nil {
			t.Fatalf("Read returned %d bytes and %v", k, err)
		}
		out = append(out, p[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if k == 0 {
			t.Fatal("Read returned 0, nil")
		}
	}
}

func TestDotReaderCases(t *testing.T) {
	for _, tc := range dotCases {
		for rname, newReader := range readers() {
			for _, n := range []int{0, 1, 3, 4096} {
				if len(tc.wire) > 100<<10 && (n == 1 || n == 3 || strings.HasPrefix(rname, "16/") ||
					strings.Contains(rname, "dataerr") || (strings.Contains(rname, "onebyte") && n != 0)) {
					continue // a megabyte a byte at a time is slow under -race
				}
				t.Run(fmt.Sprintf("%s/%s/read%d", tc.name, rname, n), func(t *testing.T) {
					checkDotCase(t, tc, newReader(tc.wire), n)
				})
			}
		}
	}
}

func checkDotCase(t *testing.T, tc dotCase, br *bufio.Reader, n int) {
	var ended []error
	d := newDotReader(br, func(err error) { ended = append(ended, err) })
	got, err := readAll(t, d, n)
	if tc.cut {
		if !strings.HasPrefix(tc.want, string(got)) || !strings.HasPrefix(string(got), tc.min) {
			t.Errorf("read %s, want between %s and %s", abbrev(got), abbrev([]byte(tc.min)), abbrev([]byte(tc.want)))
		}
	} else if string(got) != tc.want {
		t.Errorf("read %s, want %s", abbrev(got), abbrev([]byte(tc.want)))
	}
	if len(ended) != 1 {
		t.Fatalf("onEnd called %d times", len(ended))
	}
	if tc.cut {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got error %v, want io.ErrUnexpectedEOF", err)
		}
		if !errors.Is(ended[0], io.ErrUnexpectedEOF) {
			t.Fatalf("onEnd got %v, want io.ErrUnexpectedEOF", ended[0])
		}
		// the failure is sticky
		if k, err2 := d.Read(make([]byte, 10)); k != 0 || !errors.Is(err2, io.ErrUnexpectedEOF) {
			t.Fatalf("read after cut: %d, %v", k, err2)
		}
		if err := d.drain(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("drain after cut: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("got error %v", err)
	}
	if ended[0] != nil {
		t.Fatalf("onEnd got %v, want nil", ended[0])
	}
	if d.octets != tc.octets {
		t.Errorf("octets %d, want %d", d.octets, tc.octets)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != tc.rest {
		t.Errorf("left %q on the connection, want %q", rest, tc.rest)
	}
	// at the end, reads keep returning io.EOF and drain is a no-op
	if k, err := d.Read(make([]byte, 10)); k != 0 || err != io.EOF {
		t.Errorf("read after end: %d, %v", k, err)
	}
	if err := d.drain(); err != nil {
		t.Errorf("drain after end: %v", err)
	}
}

func abbrev(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q...(%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// TestDotReaderPieceBoundary puts a CR as the last byte a full buffer holds,
// so that a CRLF (or a bare CR) is split across two pieces of a long line.
func TestDotReaderPieceBoundary(t *testing.T) {
	for _, size := range []int{16, 17, 4096, readerSize} {
		fill := strings.Repeat("y", size-1)
		cases := []dotCase{
			{name: "CRLF split", wire: fill + "\r\n.\r\n", want: fill + "\n", octets: int64(size + 1)},
			{name: "CRLF split stuffed", wire: "." + fill[1:] + "\r\n..\r\n.\r\n", want: fill[1:] + "\n.\n", octets: int64(size + 3)},
			{name: "bare CR split", wire: fill + "\rz\r\n.\r\n", want: fill + "\rz\n", octets: int64(size + 3)},
			{name: "bare CR split then dot", wire: fill + "\r.\r\n.\r\n", want: fill + "\r.\n", octets: int64(size + 3)},
			{name: "bare CR split then terminator-like", wire: fill + "\r.\n.\r\n", want: fill + "\r.\n", octets: int64(size + 3)},
			{name: "CR CR split", wire: fill + "\r\r\n.\r\n", want: fill + "\r\n", octets: int64(size + 2)},
			{name: "two pieces then CRLF split", wire: fill + "y" + fill + "\r\n.\r\n", want: fill + "y" + fill + "\n", octets: int64(2*size + 1)},
			{name: "CRLF split then cut", wire: fill + "\r", want: fill, min: fill, cut: true},
		}
		for _, tc := range cases {
			for _, onebyte := range []bool{false, true} {
				t.Run(fmt.Sprintf("%d/%s/onebyte=%v", size, tc.name, onebyte), func(t *testing.T) {
					var r io.Reader = strings.NewReader(tc.wire)
					if onebyte {
						r = iotest.OneByteReader(r)
					}
					checkDotCase(t, tc, bufio.NewReaderSize(r, size), 0)
				})
			}
			t.Run(fmt.Sprintf("%d/%s/read1", size, tc.name), func(t *testing.T) {
				checkDotCase(t, tc, bufio.NewReaderSize(strings.NewReader(tc.wire), size), 1)
			})
		}
	}
}

// TestDotReaderCause checks that a cut by an I/O error matches both
// io.ErrUnexpectedEOF and the cause.
func TestDotReaderCause(t *testing.T) {
	cause := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("abc\r\nde"), iotest.ErrReader(cause))
	d := newDotReader(bufio.NewReader(r), nil)
	got, err := io.ReadAll(d)
	if string(got) != "abc\n" {
		t.Errorf("read %q", got)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, cause) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF and the cause", err)
	}
}

// TestDotReaderDrain checks that drain discards the rest of a body, also
// in the middle of a long line, and stops at the terminator.
func TestDotReaderDrain(t *testing.T) {
	wire := "first\r\n" + mb + "\r\n..\r\n.\r\n+OK after\r\n"
	for _, size := range []int{16, readerSize} {
		for _, k := range []int{0, 1, 6, 7, 100} {
			br := bufio.NewReaderSize(strings.NewReader(wire), size)
			ended := 0
			d := newDotReader(br, func(err error) {
				if err != nil {
					t.Errorf("onEnd(%v)", err)
				}
				ended++
			})
			p := make([]byte, k)
			if _, err := io.ReadFull(d, p); err != nil {
				t.Fatal(err)
			}
			if err := d.drain(); err != nil {
				t.Fatalf("drain: %v", err)
			}
			if ended != 1 {
				t.Fatalf("onEnd called %d times", ended)
			}
			if rest, _ := io.ReadAll(br); string(rest) != "+OK after\r\n" {
				t.Fatalf("size %d, read %d: left %q", size, k, rest)
			}
			if d.octets != int64(7+len(mb)+2+3) {
				t.Errorf("octets %d after drain", d.octets)
			}
		}
	}
}

// TestDotReaderDrainHeldCR drains right after a piece that ended in a CR.
func TestDotReaderDrainHeldCR(t *testing.T) {
	fill := strings.Repeat("y", 15)
	br := bufio.NewReaderSize(strings.NewReader(fill+"\rz\r\n.\r\nrest"), 16)
	d := newDotReader(br, nil)
	p := make([]byte, 15)
	if _, err := io.ReadFull(d, p); err != nil {
		t.Fatal(err)
	}
	if err := d.drain(); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "rest" {
		t.Fatalf("left %q", rest)
	}
}

// TestDotReaderDoesNotWait checks that a Read holding data does not wait
// for more to arrive: a streamed message must reach the caller line by line.
func TestDotReaderDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("one\r\ntwo\r\n"))
	d := newDotReader(bufio.NewReader(pr), nil)
	done := make(chan string, 1)
	go func() {
		p := make([]byte, 100)
		var got []byte
		for len(got) < len("one\ntwo\n") {
			n, err := d.Read(p)
			if err != nil {
				done <- "error: " + err.Error()
				return
			}
			got = append(got, p[:n]...)
		}
		done <- string(got)
	}()
	select {
	case got := <-done:
		if got != "one\ntwo\n" {
			t.Fatalf("read %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for more data with lines in hand")
	}
}

// TestDotReaderInPlaceRewrite makes sure the CRLF→LF rewrite in the bufio
// buffer never touches bytes still to be read.
func TestDotReaderInPlaceRewrite(t *testing.T) {
	var wire bytes.Buffer
	var want bytes.Buffer
	for i := 0; i < 5000; i++ {
		line := strings.Repeat(string(rune('a'+i%26)), 1+i%37)
		if i%5 == 0 {
			wire.WriteString(".")
		}
		wire.WriteString(line + "\r\n")
		want.WriteString(line + "\n")
	}
	wire.WriteString(".\r\n")
	d := newDotReader(bufio.NewReaderSize(iotest.HalfReader(&wire), 64), nil)
	got, err := readAll(t, d, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("body differs")
	}
}

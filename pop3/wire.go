package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// maxLine bounds every status, CAPA, LIST and UIDL line. RFC 2449 §4 limits
// responses to 512 octets; real servers stay far below this bound. Message
// lines are not bounded (see dotReader).
const maxLine = 8192

// readerSize is the size of the connection's read buffer. It must exceed
// maxLine.
const readerSize = 64 << 10

// readLine reads one line of a response and returns it without its line
// ending (CRLF or a bare LF). The slice is valid until the next read.
func readLine(br *bufio.Reader, cmd string) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLine {
		return nil, protoErrorf(cmd, "response line longer than %d octets", maxLine)
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// status is a parsed status line.
type status struct {
	ok   bool
	code ResponseCode
	text string
}

// parseStatus parses a +OK or -ERR line (RFC 1939 §3). It accepts the
// indicators in any case, and no text after them. For -ERR, a leading
// "[CODE]" is taken as an extended response code (RFC 2449 §8).
func parseStatus(line []byte, cmd string) (status, error) {
	var s status
	var rest []byte
	switch {
	case hasPrefixFold(line, "+OK"):
		s.ok, rest = true, line[3:]
	case hasPrefixFold(line, "-ERR"):
		rest = line[4:]
	default:
		return s, protoErrorf(cmd, "expected +OK or -ERR, got %q", truncate(line, 40))
	}
	if len(rest) > 0 {
		if rest[0] != ' ' && rest[0] != '\t' {
			return s, protoErrorf(cmd, "expected +OK or -ERR, got %q", truncate(line, 40))
		}
		rest = rest[1:]
	}
	text := string(rest)
	if !s.ok {
		s.code, text = parseCode(text)
	}
	s.text = text
	return s, nil
}

// parseCode splits "[SYS/TEMP] text" into its code and text.
func parseCode(text string) (ResponseCode, string) {
	if !strings.HasPrefix(text, "[") {
		return "", text
	}
	end := strings.IndexByte(text, ']')
	if end < 2 {
		return "", text
	}
	code := text[1:end]
	for i := 0; i < len(code); i++ {
		c := code[i]
		if c <= ' ' || c > '~' {
			return "", text
		}
	}
	return ResponseCode(strings.ToUpper(code)), strings.TrimLeft(text[end+1:], " ")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// isTerminator reports whether a line (without its ending) ends a multi-line
// response (RFC 1939 §3).
func isTerminator(line []byte) bool {
	return len(line) == 1 && line[0] == '.'
}

// unstuff removes the byte-stuffed leading dot of a multi-line response line.
func unstuff(line []byte) []byte {
	if len(line) > 0 && line[0] == '.' {
		return line[1:]
	}
	return line
}

// checkArg refuses an argument that would break the command's framing.
func checkArg(arg string) error {
	if arg == "" || strings.ContainsAny(arg, "\r\n\x00") {
		return fmt.Errorf("%w: empty or holding CR, LF or NUL", ErrBadArgument)
	}
	return nil
}

// validUID reports whether a UID follows RFC 1939 §7: 1 to 70 octets in the
// range 0x21 to 0x7E.
func validUID(uid []byte) bool {
	if len(uid) == 0 || len(uid) > 70 {
		return false
	}
	return bytes.IndexFunc(uid, func(r rune) bool { return r < 0x21 || r > 0x7e }) < 0
}

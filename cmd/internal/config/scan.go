package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The TOML library reports the line of syntax errors but not the line of
// each key, and FILE:LINE is what users need to fix a configuration. This
// scanner finds those lines: it follows just enough of TOML's grammar
// (headers, dotted and quoted keys, strings of all four kinds, arrays and
// inline tables over several lines, comments) to know where every key is
// defined. It checks nothing: toml.Decode has already accepted the text, and
// on text it does not understand the scanner skips to the next line. It
// never fails and never panics (FuzzParse holds it to that).

// A key path is the list of keys from the top of the document, joined by
// pathSep. The n-th element of an array, and the n-th table of an array of
// tables, is the key "#n" (0-based), so the host of the second [[account]]
// is "account", "#1", "host".
const pathSep = "\x00"

func joinPath(keys []string) string { return strings.Join(keys, pathSep) }

func indexKey(n int) string { return "#" + strconv.Itoa(n) }

// keyLines is where every key and table of a document is defined.
type keyLines struct {
	lines map[string]int // key path → line of its first definition
	spans []span         // each key = value, with the lines it covers
}

// span is a key = value over lines first..last.
type span struct {
	key         string // the last key of the path, e.g. "password"
	first, last int
}

// line returns the line where the key path was defined, or of its nearest
// enclosing table or key that was, or 0.
func (k *keyLines) line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := k.lines[joinPath(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// inValueOf reports whether line is part of a key = value whose key
// satisfies is.
func (k *keyLines) inValueOf(line int, is func(key string) bool) bool {
	for _, s := range k.spans {
		if s.first <= line && line <= s.last && is(s.key) {
			return true
		}
	}
	return false
}

// maxDepth bounds the nesting of arrays and inline tables the scanner
// follows, so hostile input cannot exhaust the stack.
const maxDepth = 64

type scanner struct {
	s      string
	i      int
	line   int
	depth  int
	kl     *keyLines
	arrays map[string]int // path of an array of tables → tables so far
}

// scanLines finds the line of every key in the TOML text src.
func scanLines(src string) *keyLines {
	sc := &scanner{
		s:      src,
		line:   1,
		kl:     &keyLines{lines: make(map[string]int)},
		arrays: make(map[string]int),
	}
	sc.i = len(src) - len(strings.TrimPrefix(src, "\ufeff"))
	var table []string
	for {
		sc.skipBlank()
		if sc.eof() {
			break
		}
		if sc.peek() == '[' {
			table = sc.header()
		} else {
			sc.keyValue(table)
		}
		sc.skipLine()
	}
	return sc.kl
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

// peek returns the next byte, or 0 at the end.
func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *scanner) record(path []string, line int) {
	p := joinPath(path)
	if _, ok := sc.kl.lines[p]; !ok {
		sc.kl.lines[p] = line
	}
}

// skipWS skips spaces and tabs.
func (sc *scanner) skipWS() {
	for !sc.eof() && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (sc *scanner) skipBlank() {
	for !sc.eof() {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r':
			sc.i++
		case '\n':
			sc.i++
			sc.line++
		case '#':
			for !sc.eof() && sc.s[sc.i] != '\n' {
				sc.i++
			}
		default:
			return
		}
	}
}

// skipLine skips the rest of the line (normally only whitespace and a
// comment) and its newline.
func (sc *scanner) skipLine() {
	for !sc.eof() {
		c := sc.s[sc.i]
		sc.i++
		if c == '\n' {
			sc.line++
			return
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the table's path, with the
// index of the current table of every array of tables on the way.
func (sc *scanner) header() []string {
	line := sc.line
	sc.i++ // [
	array := sc.peek() == '['
	if array {
		sc.i++
	}
	keys := sc.key()
	var path []string
	for j, k := range keys {
		path = append(path, k)
		p := joinPath(path)
		if array && j == len(keys)-1 {
			n := sc.arrays[p]
			sc.arrays[p] = n + 1
			sc.record(path, line)
			path = append(path, indexKey(n))
		} else if n, ok := sc.arrays[p]; ok {
			path = append(path, indexKey(n-1))
		}
		sc.record(path, line)
	}
	return path
}

// keyValue reads key = value in the table at base.
func (sc *scanner) keyValue(base []string) {
	first := sc.line
	keys := sc.key()
	if len(keys) == 0 {
		return
	}
	path := append([]string(nil), base...)
	for _, k := range keys {
		path = append(path, k)
		sc.record(path, first)
	}
	sc.skipWS()
	if sc.peek() != '=' {
		return
	}
	sc.i++
	sc.skipWS()
	sc.value(path)
	sc.kl.spans = append(sc.kl.spans, span{key: keys[len(keys)-1], first: first, last: sc.line})
}

// key reads a possibly dotted key of bare and quoted parts.
func (sc *scanner) key() []string {
	var keys []string
	for {
		sc.skipWS()
		c := sc.peek()
		switch {
		case c == '"' || c == '\'':
			keys = append(keys, sc.str())
		case isBare(c):
			start := sc.i
			for !sc.eof() && isBare(sc.s[sc.i]) {
				sc.i++
			}
			keys = append(keys, sc.s[start:sc.i])
		default:
			return keys
		}
		sc.skipWS()
		if sc.peek() != '.' {
			return keys
		}
		sc.i++
	}
}

// isBare reports whether c may be part of a bare key. Bytes of non-ASCII
// characters are let in: the scanner need not judge what is valid.
func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c >= utf8.RuneSelf
}

// value skips one value, recording the keys of inline tables under path.
func (sc *scanner) value(path []string) {
	if sc.depth >= maxDepth {
		return
	}
	sc.depth++
	defer func() { sc.depth-- }()
	switch c := sc.peek(); c {
	case 0:
	case '"', '\'':
		sc.str()
	case '[':
		sc.i++
		for n := 0; ; n++ {
			sc.skipBlank()
			if sc.eof() || sc.peek() == ']' {
				sc.i = min(sc.i+1, len(sc.s))
				return
			}
			start := sc.i
			sc.value(append(path[:len(path):len(path)], indexKey(n)))
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.i++
			}
			if sc.i == start {
				return // not TOML: give up on the line
			}
		}
	case '{':
		sc.i++
		for {
			sc.skipBlank()
			if sc.eof() || sc.peek() == '}' {
				sc.i = min(sc.i+1, len(sc.s))
				return
			}
			start := sc.i
			sc.keyValue(path[:len(path):len(path)])
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.i++
			}
			if sc.i == start {
				return
			}
		}
	default:
		// A number, boolean or date-time.
		start := sc.i
		sc.bare()
		// A date and a time may be separated by a space.
		if sc.i-start == 10 && sc.s[start+4] == '-' &&
			sc.i+1 < len(sc.s) && sc.s[sc.i] == ' ' && isDigit(sc.s[sc.i+1]) {
			sc.i++
			sc.bare()
		}
	}
}

func (sc *scanner) bare() {
	for !sc.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(sc.s[sc.i])) {
		sc.i++
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// str reads a string of any of the four kinds and returns its value, with
// escapes decoded in single-line basic strings (which can be keys).
func (sc *scanner) str() string {
	q := sc.s[sc.i]
	qqq := strings.Repeat(string(q), 3)
	if strings.HasPrefix(sc.s[sc.i:], qqq) {
		sc.i += 3
		start := sc.i
		for !sc.eof() {
			if strings.HasPrefix(sc.s[sc.i:], qqq) {
				end := sc.i
				sc.i += 3
				// Up to two more quotes are part of the string.
				for k := 0; k < 2 && sc.peek() == q; k++ {
					sc.i++
					end++
				}
				return sc.s[start:end]
			}
			c := sc.s[sc.i]
			sc.i++
			switch {
			case c == '\n':
				sc.line++
			case c == '\\' && q == '"' && !sc.eof():
				// Skip the escaped byte, which may be a newline.
				if sc.s[sc.i] == '\n' {
					sc.line++
				}
				sc.i++
			}
		}
		return sc.s[start:]
	}
	sc.i++
	var b strings.Builder
	for !sc.eof() {
		c := sc.s[sc.i]
		switch {
		case c == q:
			sc.i++
			return b.String()
		case c == '\n':
			return b.String() // unterminated; leave the newline to count
		case c == '\\' && q == '"':
			sc.escape(&b)
		default:
			b.WriteByte(c)
			sc.i++
		}
	}
	return b.String()
}

// escape decodes the escape sequence at sc.i in a basic string.
func (sc *scanner) escape(b *strings.Builder) {
	sc.i++ // backslash
	if sc.eof() || sc.s[sc.i] == '\n' {
		b.WriteByte('\\')
		return
	}
	c := sc.s[sc.i]
	sc.i++
	n := 0
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case '"', '\\':
		b.WriteByte(c)
	case 'x':
		n = 2
	case 'u':
		n = 4
	case 'U':
		n = 8
	default:
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	if n == 0 {
		return
	}
	if sc.i+n <= len(sc.s) {
		if v, err := strconv.ParseUint(sc.s[sc.i:sc.i+n], 16, 32); err == nil {
			b.WriteRune(rune(v))
			sc.i += n
			return
		}
	}
	b.WriteByte('\\')
	b.WriteByte(c)
}

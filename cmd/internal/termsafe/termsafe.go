// Package termsafe makes text that came from outside — a server's
// responses, a certificate, an OAuth provider, a message's header — safe to
// print on a terminal or into a log.
//
// Such text may hold bytes that drive a terminal (ESC ]0;title BEL sets a
// window title, ESC [2J clears the screen, a C1 CSI does the same on some
// terminals), break a line to forge another one, or reorder what is shown
// (Unicode bidirectional controls). Escape shows each of them instead, as
// an escape anyone can read.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every character that could act on a terminal or a
// log shown as an escape instead:
//   - C0 controls and DEL as \x00 to \x1f and \x7f, except \t, \n and \r;
//   - C1 controls (U+0080 to U+009F), the Unicode line and paragraph
//     separators and the bidirectional controls as \u0085 and the like;
//   - bytes that are not valid UTF-8 as \xff and the like.
//
// Valid UTF-8 printable text, in any script, is kept as it is, and so is a
// backslash: the result is for reading, not for parsing back.
func Escape(s string) string {
	i := unsafeAt(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeAt returns the index of the first character Escape changes, or -1.
func unsafeAt(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			return i
		}
		i += size
	}
	return -1
}

// unsafeRune reports whether a character beyond ASCII is a control that
// Escape shows: C1 controls, U+2028 and U+2029 (which some programs take
// for line breaks), and the bidirectional controls that can make text read
// otherwise than it is ("Trojan Source", CVE-2021-42574).
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	case r == 0x061c || r == 0x200e || r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Package mailgen generates deterministic test messages: Traps, a set of
// RFC 5322 messages full of the byte sequences a POP3 client and a mail
// store get wrong, and Realistic, plausible mail for a demo mailbox.
//
// Generated messages use LF line endings, as files in a Maildir do; a POP3
// server turns them into CRLF on the wire. Canonical gives the bytes a
// client must deliver for a message.
//
// Message i of a given seed does not depend on how many messages are asked
// for: Traps(5, s)[i] == Traps(50, s)[i].
package mailgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// IDHeader is the header field every generated message starts with; its
// value is "<seed>-<i>" (Traps) or "realistic-<seed>-<i>" (Realistic).
const IDHeader = "X-Mailgen-Id"

// Canonical returns the form of msg a POP3 client must deliver: CRLF line
// endings become LF, and a final LF is added if the last line has none (a
// POP3 server always terminates the last line before the final "."). An
// empty msg stays empty. Bare CRs and all other bytes are kept.
func Canonical(msg []byte) []byte {
	out := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

// ID returns the value of the X-Mailgen-Id header of msg (which may have
// CRLF or LF line endings and, when delivered, extra header fields such as
// Received: above it), or "" if there is none.
func ID(msg []byte) string {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return "" // end of the header
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(name), IDHeader) {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}

// newRand gives message i of a seed its own stream, so that message i is
// the same whatever the number of messages generated.
func newRand(seed uint64, stream string, i int) *rand.Rand {
	h := uint64(14695981039346656037) // FNV-1a of the stream name
	for _, c := range []byte(stream) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h^uint64(i)*0x9E3779B97F4A7C15))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

var words = strings.Fields(`the of and to in is that for it as was with be by on not this are or
from at which but have an they you were there been one all we their has would when if so no
will can more out up about into them some could time only new like other then than its also
two after first may any these mailbox server client retrieve message delivery protocol
pipeline latency quota folder header body attachment network session cache lock fsync
maildir mbox procmail daemon timer cron queue retry backoff`)

var utf8Words = strings.Fields(`Grüße naïve façade smørrebrød Ünïcödé 日本語 中文字符 Привет
Ελληνικά עברית 😀 🚀 résumé jalapeño straße Ærøskøbing ¿qué? déjà-vu`)

// paragraph returns about n bytes of words in lines of at most width bytes.
func paragraph(r *rand.Rand, n int, utf8 bool, width int) []string {
	var lines []string
	var line []string
	cur, total := 0, 0
	for total < n {
		w := pick(r, words)
		if utf8 && r.IntN(6) == 0 {
			w = pick(r, utf8Words)
		}
		if cur+len(w)+1 > width && len(line) > 0 {
			lines = append(lines, strings.Join(line, " "))
			line, cur = nil, 0
		}
		line = append(line, w)
		cur += len(w) + 1
		total += len(w) + 1
	}
	if len(line) > 0 {
		lines = append(lines, strings.Join(line, " "))
	}
	return lines
}

func base64Lines(data []byte) []string {
	s := base64.StdEncoding.EncodeToString(data)
	var out []string
	for len(s) > 76 {
		out = append(out, s[:76])
		s = s[76:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// header is an ordered list of header lines (continuation lines included).
type header []string

func (h *header) add(name, value string) { *h = append(*h, name+": "+value) }

// assemble joins header and body lines with LF; the body ends with an LF
// unless noFinalNewline.
func assemble(h header, body []string, noFinalNewline bool) []byte {
	var b bytes.Buffer
	for _, l := range h {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	for i, l := range body {
		b.WriteString(l)
		if i < len(body)-1 || !noFinalNewline {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

var zones = []*time.Location{
	time.UTC,
	time.FixedZone("", -7*3600),
	time.FixedZone("", -5*3600),
	time.FixedZone("", 1*3600),
	time.FixedZone("", 2*3600),
	time.FixedZone("", 5*3600+1800),
	time.FixedZone("", 9*3600),
}

// rfc5322Date formats t like "Tue, 05 Mar 2024 14:07:09 +0100".
func rfc5322Date(t time.Time) string { return t.Format(time.RFC1123Z) }

func messageID(r *rand.Rand, domain string) string {
	return fmt.Sprintf("<%08x.%06x@%s>", r.Uint32(), r.Uint32()&0xffffff, domain)
}

package mailgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The kinds of trap Traps puts into message bodies.
const (
	trapDots         = 1 << iota // lines ".", "..", ".x", "...": POP3 dot-stuffing
	trapFrom                     // "From ", ">From ", ">>From " lines: mbox quoting
	trapUTF8                     // 8-bit UTF-8 body
	trapLatin1                   // raw 8-bit bytes that are not UTF-8 (ISO-8859-1)
	trapLongLine                 // lines of 998+ characters, some 20000+
	trapTrailingWS               // lines ending in spaces and tabs
	trapNoFinalLF                // the last line has no newline
	trapEmptyBody                // nothing after the blank line
	trapAttachment               // multipart with a base64 attachment
	trapNoReturnPath             // header without Return-Path
	numTraps         = iota
)

// fixedTraps are the kinds of messages 0..len-1: every kind occurs among the
// first ten messages, whatever the seed.
var fixedTraps = []int{
	trapDots,
	trapFrom,
	trapUTF8,
	trapLatin1,
	trapLongLine,
	trapTrailingWS,
	trapNoFinalLF | trapNoReturnPath,
	trapEmptyBody,
	trapAttachment,
	trapDots | trapFrom | trapUTF8 | trapNoFinalLF,
}

// Traps returns n RFC 5322 messages with LF line endings whose bodies,
// across the set, contain everything that is easy to get wrong when
// transporting and storing mail: lines "." / ".." / ".x" / "." alone,
// "From " / ">From " / ">>From " lines (often after an empty line), 8-bit
// UTF-8 and raw Latin-1 bytes, lines of 998 and of 20000+ characters,
// trailing whitespace, a last line without newline, an empty body and base64
// attachments. Every kind occurs among the first ten messages; the rest mix
// them at random. The headers are realistic (Return-Path on most but not
// all, Received, Date, From, To, Subject, Message-ID, MIME-Version,
// Content-Type), and each message starts with "X-Mailgen-Id: <seed>-<i>"
// (i counts from 0). The same seed always gives the same bytes.
func Traps(n int, seed uint64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = trapMessage(seed, i)
	}
	return out
}

var trapBase = time.Date(2024, time.March, 4, 9, 30, 0, 0, time.UTC)

var (
	firstNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Oscar", "Peggy", "Trent", "Victor", "Walter"}
	lastNames  = []string{"Smith", "Jones", "Okafor", "Nguyen", "Schmidt", "Rossi", "Tanaka", "Kowalski", "Silva", "Dubois", "Larsen", "Haddad"}
	domains    = []string{"example.com", "example.net", "example.org", "mail.example", "lists.example.org", "corp.example.com"}
)

func trapMessage(seed uint64, i int) []byte {
	r := newRand(seed, "traps", i)
	kinds := 0
	if i < len(fixedTraps) {
		kinds = fixedTraps[i]
	} else {
		for k := 0; k < numTraps; k++ {
			bit := 1 << k
			switch bit {
			case trapEmptyBody:
				if r.IntN(25) == 0 {
					kinds |= bit
				}
			case trapNoReturnPath:
				if r.IntN(5) == 0 {
					kinds |= bit
				}
			default:
				if r.IntN(4) == 0 {
					kinds |= bit
				}
			}
		}
		if kinds&trapEmptyBody != 0 {
			kinds &= trapEmptyBody | trapNoReturnPath
		}
	}
	if kinds&trapUTF8 != 0 && kinds&trapLatin1 != 0 {
		kinds &^= trapLatin1 // one charset per text part
	}

	first, last := pick(r, firstNames), pick(r, lastNames)
	fromDomain := pick(r, domains)
	fromAddr := strings.ToLower(first+"."+last) + "@" + fromDomain
	date := trapBase.Add(time.Duration(i)*37*time.Minute + time.Duration(r.IntN(3600))*time.Second).In(pick(r, zones))

	var h header
	h.add(IDHeader, fmt.Sprintf("%d-%d", seed, i))
	if kinds&trapNoReturnPath == 0 {
		h.add("Return-Path", "<"+fromAddr+">")
	}
	mx := r.IntN(9) + 1
	h = append(h, // a folded field
		fmt.Sprintf("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])", mx, fromDomain, mx, fromDomain, r.IntN(254)+1),
		fmt.Sprintf("\tby pop.example.org (Postfix) with ESMTPS id %010X", r.Uint64()>>24),
		"\tfor <user@example.org>; "+rfc5322Date(date.Add(time.Duration(r.IntN(90))*time.Second)))
	h.add("Date", rfc5322Date(date))
	h.add("From", fmt.Sprintf("%s %s <%s>", first, last, fromAddr))
	h.add("To", "user@example.org")
	h.add("Subject", fmt.Sprintf("mailgen trap %d: %s %s", i, trapNames(kinds), strings.Join(paragraph(r, 20, false, 200), " ")))
	h.add("Message-ID", messageID(r, "mailgen.example"))
	h.add("MIME-Version", "1.0")

	if kinds&trapEmptyBody != 0 {
		h.add("Content-Type", "text/plain; charset=us-ascii")
		h.add("Content-Transfer-Encoding", "7bit")
		return assemble(h, nil, false)
	}

	text := trapText(r, kinds)
	charset, cte := "us-ascii", "7bit"
	switch {
	case kinds&trapUTF8 != 0:
		charset, cte = "utf-8", "8bit"
	case kinds&trapLatin1 != 0:
		charset, cte = "iso-8859-1", "8bit"
	}
	if kinds&trapAttachment == 0 {
		h.add("Content-Type", "text/plain; charset="+charset)
		h.add("Content-Transfer-Encoding", cte)
		return assemble(h, text, kinds&trapNoFinalLF != 0)
	}

	boundary := fmt.Sprintf("=_mailgen_%d_%d_%08x", seed, i, r.Uint32())
	h.add("Content-Type", "multipart/mixed;\n\tboundary=\""+boundary+"\"")
	body := []string{"This is a multi-part message in MIME format.", "", "--" + boundary,
		"Content-Type: text/plain; charset=" + charset, "Content-Transfer-Encoding: " + cte, ""}
	body = append(body, text...)
	name := pick(r, []string{"report.pdf", "photo.jpg", "data.bin", "minutes.odt"})
	body = append(body, "", "--"+boundary,
		"Content-Type: application/octet-stream; name=\""+name+"\"",
		"Content-Transfer-Encoding: base64",
		"Content-Disposition: attachment; filename=\""+name+"\"", "")
	body = append(body, base64Lines(randBytes(r, 512+r.IntN(12*1024)))...)
	body = append(body, "--"+boundary+"--")
	if kinds&trapNoFinalLF != 0 {
		body = append(body, "epilogue without a final newline")
	}
	return assemble(h, body, kinds&trapNoFinalLF != 0)
}

func trapNames(kinds int) string {
	names := []string{"dots", "from", "utf8", "latin1", "longline", "trailingws", "nofinallf", "emptybody", "attachment", "noreturnpath"}
	var out []string
	for k, n := range names {
		if kinds&(1<<k) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "[plain]"
	}
	return "[" + strings.Join(out, ",") + "]"
}

// dotLines and fromLines are the trap lines; each list is inserted whole
// (dots in a few places) so every variant occurs.
var dotLines = []string{".", "..", ".x", "...", ". a dot and a space", ".hidden line starting with a dot", "..double dot prefix"}

var fromLines = []string{"From the desk of the sender: this line must be quoted in an mbox",
	">From a line quoted once already", ">>From a line quoted twice already", "From ",
	"From: looks like a header but is body text", " From with a leading space", ">From "}

var latin1Lines = []string{
	"Gr\xfc\xdfe aus K\xf6ln, sch\xf6ne Gr\xfc\xdfe an die Stra\xdfe",
	"Caf\xe9 cr\xe8me br\xfbl\xe9e \xe0 la fran\xe7aise, \xa9 2024 \xb1 \xbd",
	"\xc6r\xf8sk\xf8bing \xe5 \xd8resund \xbfqu\xe9? \xa1s\xed!",
}

func trapText(r *rand.Rand, kinds int) []string {
	// Blocks of lines, so that inserting a trap never splits another one
	// (an empty line and the "From " line after it stay together).
	var blocks [][]string
	for _, l := range paragraph(r, 300+r.IntN(1500), kinds&trapUTF8 != 0, 72) {
		blocks = append(blocks, []string{l})
	}
	insert := func(block ...string) {
		k := r.IntN(len(blocks) + 1)
		blocks = append(blocks[:k], append([][]string{block}, blocks[k:]...)...)
	}
	if kinds&trapDots != 0 {
		insert(dotLines...)
		insert("", ".") // "." alone after an empty line
		insert(".", "")
		blocks = append(blocks, []string{"the last line of the text is a lone dot:", "."})
	}
	if kinds&trapFrom != 0 {
		for k, l := range fromLines {
			if k == 0 || r.IntN(2) == 0 {
				insert("", l) // the classic case: right after an empty line
			} else {
				insert(l)
			}
		}
		blocks = append([][]string{{"From the very first line of the body"}}, blocks...)
	}
	if kinds&trapUTF8 != 0 {
		insert("UTF-8: Grüße, naïve façade, 日本語テキスト, Привет мир, 😀🚀, ∑ ≠ ∞")
	}
	if kinds&trapLatin1 != 0 {
		for _, l := range latin1Lines {
			insert(l)
		}
	}
	if kinds&trapLongLine != 0 {
		insert(longLine(r, 998)) // the longest line RFC 5322 allows
		insert(longLine(r, pick(r, []int{999, 1000, 2048, 5000})))
		insert(longLine(r, pick(r, []int{20000, 20001, 24000, 65536})))
	}
	if kinds&trapTrailingWS != 0 {
		insert("trailing spaces   ")
		insert("trailing tab\t")
		insert("trailing mix \t \t")
		insert("   ") // whitespace only
	}
	if kinds&trapNoFinalLF != 0 {
		blocks = append(blocks, []string{pick(r, []string{"no newline at the end", ".", ".no newline after a dot line", "From no newline"})})
	}
	var lines []string
	for _, b := range blocks {
		lines = append(lines, b...)
	}
	return lines
}

// longLine returns a line of exactly n bytes: words, so a re-wrapping
// client is caught, with an unbroken run at the end.
func longLine(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n-20 {
		b.WriteString(pick(r, words))
		b.WriteByte(' ')
	}
	for b.Len() < n {
		b.WriteByte('x')
	}
	return b.String()[:n]
}

package mailgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var seeds = []uint64{0, 1, 2, 42, 1 << 63, 0xdeadbeef}

// features classifies a message independently of the generator's own
// bookkeeping, so the coverage test checks what is really in the bytes.
func features(msg []byte) map[string]bool {
	f := map[string]bool{}
	head, body, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		f["no-body-separator"] = true
	}
	if len(body) == 0 {
		f["empty-body"] = true
	}
	if !bytes.HasSuffix(msg, []byte("\n")) {
		f["no-final-newline"] = true
	}
	if bytes.Contains(head, []byte("\nReturn-Path: ")) {
		f["return-path"] = true
	}
	lines := strings.Split(string(body), "\n")
	for k, l := range lines {
		prevEmpty := k > 0 && lines[k-1] == ""
		switch {
		case l == ".":
			f["dot-alone"] = true
		case l == "..":
			f["dot-dot"] = true
		case strings.HasPrefix(l, ".") && len(l) > 1 && l[1] != '.':
			f["dot-x"] = true
		}
		switch {
		case strings.HasPrefix(l, "From "):
			f["from"] = true
			if prevEmpty {
				f["from-after-empty"] = true
			}
		case strings.HasPrefix(l, ">From "):
			f[">from"] = true
		case strings.HasPrefix(l, ">>From "):
			f[">>from"] = true
		}
		if len(l) >= 998 {
			f["long-998"] = true
		}
		if len(l) >= 20000 {
			f["long-20000"] = true
		}
		if strings.HasSuffix(l, " ") || strings.HasSuffix(l, "\t") {
			f["trailing-ws"] = true
		}
	}
	has8bit := bytes.ContainsFunc(body, func(r rune) bool { return r >= 0x80 })
	if has8bit && utf8.Valid(body) {
		f["utf8"] = true
	}
	if has8bit && !utf8.Valid(body) {
		f["raw-8bit"] = true
	}
	if bytes.Contains(msg, []byte("Content-Transfer-Encoding: base64")) {
		f["base64-attachment"] = true
	}
	return f
}

var wantTraps = []string{"dot-alone", "dot-dot", "dot-x", "from", "from-after-empty", ">from", ">>from",
	"long-998", "long-20000", "trailing-ws", "no-final-newline", "empty-body", "utf8", "raw-8bit",
	"base64-attachment", "return-path"}

func TestTrapsCoverage(t *testing.T) {
	for _, seed := range seeds {
		seen := map[string]int{}
		msgs := Traps(20, seed)
		if len(msgs) != 20 {
			t.Fatalf("Traps(20) returned %d messages", len(msgs))
		}
		for _, m := range msgs {
			for k := range features(m) {
				seen[k]++
			}
		}
		for _, k := range wantTraps {
			if seen[k] == 0 {
				t.Errorf("seed %d: no message with %s", seed, k)
			}
		}
		if seen["return-path"] == len(msgs) {
			t.Errorf("seed %d: every message has Return-Path; some should not", seed)
		}
		if seen["no-body-separator"] > 0 {
			t.Errorf("seed %d: %d messages without a blank line after the header", seed, seen["no-body-separator"])
		}
	}
}

func TestTrapsMostHaveReturnPath(t *testing.T) {
	msgs := Traps(200, 3)
	n := 0
	for _, m := range msgs {
		if features(m)["return-path"] {
			n++
		}
	}
	if n < 120 || n == len(msgs) {
		t.Errorf("%d of %d messages have Return-Path; want most but not all", n, len(msgs))
	}
}

func TestDeterminism(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, seed := range seeds {
		a, b := Traps(40, seed), Traps(40, seed)
		short := Traps(7, seed)
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("seed %d: Traps message %d differs between calls", seed, i)
			}
			if i < len(short) && !bytes.Equal(a[i], short[i]) {
				t.Fatalf("seed %d: Traps message %d depends on n", seed, i)
			}
		}
		ra, rb := RealisticAt(30, seed, now), RealisticAt(30, seed, now)
		for i := range ra {
			if !bytes.Equal(ra[i], rb[i]) {
				t.Fatalf("seed %d: RealisticAt message %d differs between calls", seed, i)
			}
		}
	}
	x, y := Traps(20, 1), Traps(20, 2)
	same := 0
	for i := range x {
		if bytes.Equal(x[i], y[i]) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d messages identical for seeds 1 and 2", same)
	}
}

func TestIDs(t *testing.T) {
	for _, seed := range seeds {
		for i, m := range Traps(25, seed) {
			want := fmt.Sprintf("%d-%d", seed, i)
			if !bytes.HasPrefix(m, []byte(IDHeader+": "+want+"\n")) {
				t.Fatalf("seed %d message %d does not start with %s: %q", seed, i, want, m[:min(60, len(m))])
			}
			if got := ID(m); got != want {
				t.Fatalf("ID = %q, want %q", got, want)
			}
			// as delivered: CRLF, a Received: on top
			d := append([]byte("Received: from pop by popfetch\r\n"), bytes.ReplaceAll(m, []byte("\n"), []byte("\r\n"))...)
			if got := ID(d); got != want {
				t.Fatalf("ID(delivered) = %q, want %q", got, want)
			}
		}
		for i, m := range RealisticAt(15, seed, time.Now()) {
			if got, want := ID(m), fmt.Sprintf("realistic-%d-%d", seed, i); got != want {
				t.Fatalf("ID = %q, want %q", got, want)
			}
		}
	}
	if got := ID([]byte("Subject: x\n\nX-Mailgen-Id: 1-2\n")); got != "" {
		t.Errorf("ID found %q in the body", got)
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a\n", "a\n"},
		{"a", "a\n"},
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\r\nb", "a\nb\n"},
		{"bare\rcr\r\n", "bare\rcr\n"},
		{"ends in cr\r", "ends in cr\r\n"},
		{"mixed\r\nlf\nend", "mixed\nlf\nend\n"},
		{"h: v\n\n", "h: v\n\n"},
		{"\r\n\r\n", "\n\n"},
		{"nul\x00byte\r\n", "nul\x00byte\n"},
	} {
		in := []byte(tc.in)
		if got := string(Canonical(in)); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if string(in) != tc.in {
			t.Errorf("Canonical modified its argument %q", tc.in)
		}
	}
	// idempotent on generated messages, and LF-only messages only gain a final LF
	for _, m := range Traps(20, 5) {
		c := Canonical(m)
		if !bytes.Equal(Canonical(c), c) {
			t.Fatal("Canonical is not idempotent")
		}
		if bytes.Contains(m, []byte("\r")) {
			t.Fatalf("message %s has a CR; Traps should use LF line endings", ID(m))
		}
		if !bytes.HasPrefix(c, m) || len(c)-len(m) > 1 {
			t.Fatalf("Canonical changed more than the final newline of %s", ID(m))
		}
	}
}

// checkWellFormed parses msg with net/mail and walks its MIME structure.
func checkWellFormed(t *testing.T, msg []byte) *mail.Message {
	t.Helper()
	id := ID(msg)
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("%s: net/mail: %v", id, err)
	}
	head, _, _ := bytes.Cut(msg, []byte("\n\n"))
	for _, l := range strings.Split(string(head), "\n") {
		if len(l) > 998 {
			t.Errorf("%s: header line of %d bytes", id, len(l))
		}
		if l != "" && l[0] != ' ' && l[0] != '\t' && !strings.Contains(l, ":") {
			t.Errorf("%s: malformed header line %q", id, l)
		}
	}
	h := m.Header
	if _, err := h.Date(); err != nil {
		t.Errorf("%s: Date: %v", id, err)
	}
	for _, f := range []string{"From", "To"} {
		if as, err := h.AddressList(f); err != nil || len(as) != 1 {
			t.Errorf("%s: %s %q: %v %v", id, f, h.Get(f), as, err)
		}
	}
	if mid := h.Get("Message-Id"); !strings.HasPrefix(mid, "<") || !strings.HasSuffix(mid, ">") || !strings.Contains(mid, "@") {
		t.Errorf("%s: Message-ID %q", id, mid)
	}
	if rp := h.Get("Return-Path"); rp != "" {
		if _, err := mail.ParseAddress(rp); err != nil {
			t.Errorf("%s: Return-Path %q: %v", id, rp, err)
		}
	}
	if h.Get("Subject") == "" || h.Get("Mime-Version") != "1.0" {
		t.Errorf("%s: Subject %q, MIME-Version %q", id, h.Get("Subject"), h.Get("Mime-Version"))
	}
	if _, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil {
		t.Errorf("%s: Subject: %v", id, err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("%s: Content-Type %q: %v", id, h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(m.Body, params["boundary"])
		parts := 0
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: multipart: %v", id, err)
			}
			parts++
			data, err := io.ReadAll(p)
			if err != nil {
				t.Fatalf("%s: part: %v", id, err)
			}
			switch p.Header.Get("Content-Transfer-Encoding") {
			case "base64":
				if _, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(data))); err != nil {
					t.Errorf("%s: base64 part: %v", id, err)
				}
			case "quoted-printable":
				if _, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data))); err != nil {
					t.Errorf("%s: quoted-printable part: %v", id, err)
				}
			}
		}
		if parts < 2 {
			t.Errorf("%s: multipart with %d parts", id, parts)
		}
	}
	return m
}

func TestTrapsWellFormed(t *testing.T) {
	for _, seed := range seeds {
		for _, msg := range Traps(60, seed) {
			checkWellFormed(t, msg)
		}
	}
}

func TestRealistic(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	msgs := RealisticAt(36, 9, now)
	if len(msgs) != 36 {
		t.Fatalf("got %d messages", len(msgs))
	}
	var prev time.Time
	seen := map[string]bool{}
	subjects := map[string]bool{}
	senders := map[string]bool{}
	dec := new(mime.WordDecoder)
	for _, msg := range msgs {
		m := checkWellFormed(t, msg)
		h := m.Header
		d, _ := h.Date()
		if d.After(now) || d.Before(now.Add(-15*24*time.Hour)) {
			t.Errorf("%s: date %v not in the last days before %v", ID(msg), d, now)
		}
		if d.Before(prev) {
			t.Errorf("%s: dates not ascending (%v after %v)", ID(msg), d, prev)
		}
		prev = d
		if h.Get("Return-Path") == "" {
			t.Errorf("%s: no Return-Path", ID(msg))
		}
		subj, _ := dec.DecodeHeader(h.Get("Subject"))
		subjects[subj] = true
		from, _ := h.AddressList("From")
		senders[from[0].Address] = true
		if strings.Contains(h.Get("Subject"), "=?UTF-8?b?") || strings.Contains(h.Get("Subject"), "=?UTF-8?B?") {
			if subj == h.Get("Subject") || !hasNonASCII(subj) {
				t.Errorf("%s: encoded subject %q decodes to %q", ID(msg), h.Get("Subject"), subj)
			}
			seen["encoded-subject"] = true
		}
		if hasNonASCII(from[0].Name) && strings.Contains(h.Get("From"), "=?") {
			seen["encoded-sender"] = true
		}
		s := string(msg)
		for k, marker := range map[string]string{
			"newsletter": "List-Unsubscribe:", "invite": "text/calendar", "receipt": "Your receipt from",
			"list": "List-Id:", "attachment": "Content-Disposition: attachment",
		} {
			if strings.Contains(s, marker) {
				seen[k] = true
			}
		}
	}
	for _, k := range []string{"newsletter", "invite", "receipt", "list", "attachment", "encoded-subject", "encoded-sender"} {
		if !seen[k] {
			t.Errorf("no %s among the realistic messages", k)
		}
	}
	if len(subjects) < 20 || len(senders) < 8 {
		t.Errorf("not varied: %d subjects, %d senders", len(subjects), len(senders))
	}
	// Realistic: relative to now
	r := Realistic(5, 1)
	if d, err := checkWellFormed(t, r[4]).Header.Date(); err != nil || time.Since(d) > 20*24*time.Hour || time.Until(d) > 0 {
		t.Errorf("Realistic's newest message is dated %v", d)
	}
	if len(Realistic(0, 1)) != 0 || len(Traps(0, 1)) != 0 {
		t.Error("n = 0 should give no messages")
	}
}

func hasNonASCII(s string) bool {
	for _, c := range s {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

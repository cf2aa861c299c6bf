package termsafe

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain text, 100% ASCII", "plain text, 100% ASCII"},
		{"Élodie 📬 Грüße 日本", "Élodie 📬 Грüße 日本"},
		{"a\\x1b stays", "a\\x1b stays"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"\x00\x01\x1f\x7f", `\x00\x01\x1f\x7f`},
		{"csi \u009b2J nel \u0085", `csi \u009b2J nel \u0085`},
		{"line\u2028sep\u2029", `line\u2028sep\u2029`},
		{"admin\u202egnp.exe", `admin\u202egnp.exe`},
		{"\u2066\u2069\u200e\u200f\u061c", `\u2066\u2069\u200e\u200f\u061c`},
		{"caf\xe9 \xff\xfe", `caf\xe9 \xff\xfe`},
		{"\xc2", `\xc2`},       // a cut sequence
		{"\xc2\x9b", `\u009b`}, // C1 CSI, well-formed
		{"ok\uFFFD", "ok\uFFFD"},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEscape: whatever goes in, what comes out is valid UTF-8 without a
// control character or a bidirectional control, and safe text is kept.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"\x1b]0;t\x07", "caf\xe9", "\u202e", "ok", "\xc2\x9b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q: holds %U", s, out, r)
			}
		}
		if unsafeAt(s) < 0 && out != s {
			t.Fatalf("Escape(%q) = %q: changed safe text", s, out)
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", out)
		}
	})
}

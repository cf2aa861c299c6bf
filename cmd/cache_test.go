package cmd

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// cacheRows returns the UID and state columns of cache list's table.
func cacheRows(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	rows := map[string]string{}
	if len(lines) < 2 {
		return rows
	}
	if !regexp.MustCompile(`^UID\s+FIRST SEEN \(UTC\)\s+STATE$`).MatchString(lines[1]) {
		t.Fatalf("no table header:\n%s", out)
	}
	row := regexp.MustCompile(`^(\S+)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\S+)$`)
	for _, l := range lines[2:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bad row %q", l)
		}
		rows[m[1]] = m[2]
	}
	return rows
}

func TestCacheListForgetRoundTrip(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "keep = true")
	u1 := a.mb.Add(plainMessage(1))
	u2 := a.mb.Add(plainMessage(2))
	u3 := a.mb.Add(plainMessage(3))

	out, _ := e.mustRun(0, "cache", "list", "personal")
	if want := "personal (" + e.key(a) + "): " + e.cachePath(a) + ": 0 UIDs\n"; out != want {
		t.Errorf("empty cache:\n%s\nwant:\n%s", out, want)
	}
	e.mustRun(0, "fetch")
	out, _ = e.mustRun(0, "cache", "list", "personal")
	if want := "personal (" + e.key(a) + "): " + e.cachePath(a) + ": 3 UIDs\n"; !strings.HasPrefix(out, want) {
		t.Errorf("header:\n%s\nwant:\n%s", out, want)
	}
	rows := cacheRows(t, out)
	if len(rows) != 3 || rows[u1] != "retrieved" || rows[u2] != "retrieved" || rows[u3] != "retrieved" {
		t.Fatalf("rows %v", rows)
	}
	before, _ := os.ReadFile(e.cachePath(a))

	// an unknown UID: nothing is forgotten, exit 64
	out, errs := e.mustRun(exitUsage, "cache", "forget", "personal", u2, "no-such-uid")
	if out != "" || !strings.Contains(errs, "popfetch: personal: error: not in the cache: no-such-uid; nothing forgotten\n") ||
		!strings.Contains(errs, "popfetch: hint: `popfetch -c "+e.config+" cache list personal` shows the UIDs remembered") {
		t.Errorf("stdout %q\nstderr %q", out, errs)
	}
	if after, _ := os.ReadFile(e.cachePath(a)); string(after) != string(before) {
		t.Errorf("the cache changed after a refused forget")
	}

	// a fetch running holds the lock: 75
	unlock := e.lock(a)
	_, errs = e.mustRun(exitTempFail, "cache", "forget", "personal", u2)
	if !strings.Contains(errs, "another popfetch is fetching this account") {
		t.Errorf("stderr %q", errs)
	}
	unlock()

	out, _ = e.mustRun(0, "cache", "forget", "personal", u2)
	if !strings.HasPrefix(out, "personal: forgot 1 UID;") {
		t.Errorf("forget: %q", out)
	}
	out, _ = e.mustRun(0, "cache", "list", "personal")
	if rows := cacheRows(t, out); len(rows) != 2 || rows[u2] != "" {
		t.Errorf("after forget: %v", rows)
	}

	// the forgotten message is new again, and only it
	out, _ = e.mustRun(0, "check", "--json")
	if got := decodeCheck(t, out); got.Accounts[0].New != 1 {
		t.Errorf("check after forget: %s", out)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 4 {
		t.Fatalf("%d messages delivered, want 3 + the forgotten one again", n)
	}
	e.mustRun(1, "check")

	// no UID: all of them
	out, _ = e.mustRun(0, "cache", "forget", "personal")
	if !strings.HasPrefix(out, "personal: forgot 3 UIDs;") {
		t.Errorf("forget all: %q", out)
	}
	out, _ = e.mustRun(0, "cache", "list", "personal")
	if !strings.HasSuffix(out, ": 0 UIDs\n") {
		t.Errorf("after forget all: %q", out)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 7 {
		t.Errorf("%d messages delivered, want 7", n)
	}
}

// UIDs that break RFC 1939's rules are listed escaped, and forget takes
// them as listed.
func TestCacheHostileUIDs(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "keep = true")
	a.mb.AddWithUID("a b%\x1b[2J", plainMessage(1))
	a.mb.AddWithUID("plain", plainMessage(2))
	e.mustRun(0, "fetch")
	out, _ := e.mustRun(0, "cache", "list", "personal")
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape character reached the terminal: %q", out)
	}
	rows := cacheRows(t, out)
	if rows["a%20b%25%1B[2J"] != "retrieved" || rows["plain"] != "retrieved" {
		t.Fatalf("rows %q", rows)
	}
	out, _ = e.mustRun(0, "cache", "forget", "personal", "a%20b%25%1b[2J")
	if !strings.HasPrefix(out, "personal: forgot 1 UID;") {
		t.Errorf("forget: %q", out)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 3 {
		t.Errorf("%d delivered, want 3", n)
	}
}

func TestCacheUsage(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	for _, args := range [][]string{
		{"cache", "list"}, {"cache", "list", "personal", "extra"}, {"cache", "forget"},
		{"cache", "list", "nobody"}, {"cache", "forget", "nobody"},
	} {
		if code, _, errs := e.run(args...); code != exitUsage || errs == "" {
			t.Errorf("popfetch %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
		}
	}
}

func TestUIDEscaping(t *testing.T) {
	for _, c := range []struct{ raw, shown string }{
		{"abc", "abc"},
		{"", "%"},
		{"a b", "a%20b"},
		{"100%", "100%25"},
		{"\x00\xff\x7f", "%00%FF%7F"},
	} {
		if got := escapeUID(c.raw); got != c.shown {
			t.Errorf("escapeUID(%q) = %q, want %q", c.raw, got, c.shown)
		}
		if got := unescapeUID(c.shown); got != c.raw {
			t.Errorf("unescapeUID(%q) = %q, want %q", c.shown, got, c.raw)
		}
	}
	// not an escape: taken as it is
	for _, s := range []string{"50%", "%zz", "a%4"} {
		if got := unescapeUID(s); got != s {
			t.Errorf("unescapeUID(%q) = %q", s, got)
		}
	}
}

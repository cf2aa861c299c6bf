package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/cmd"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// TestUTF8Server: a server of RFC 6856 that, like Courier, wraps messages
// with 8-bit header fields for clients that did not send UTF8. popfetch
// sends UTF8 before logging in (-vv shows it) and delivers every message
// as stored; serverinfo lists UTF8.
func TestUTF8Server(t *testing.T) {
	e := newFaultEnv(t, faultOpts{n: 20})
	e.srv.UTF8 = true
	for i, m := range []string{
		"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\nFrom: J\xc3\xbcrgen <j@example.de>\n\nHallo\n",
		"From: =?utf-8?q?Ren=C3=A9?= <r@example.fr>\nSubject: d\xc3\xa9j\xc3\xa0 vu\n\ncaf\xc3\xa9 \xff\n",
		"Subject: latin-1 \xe9t\xe9\n\n.\n..\n",
	} {
		msg := []byte(mailgen.IDHeader + ": utf8-" + string(rune('a'+i)) + "\n" + m)
		e.mb.Add(msg)
		e.want = append(e.want, msg)
	}
	e.start()
	r := e.fetch("-vv")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "C: UTF8") || !strings.Contains(r.stderr, "S: +OK UTF8 enabled") {
		t.Errorf("-vv does not show UTF8:\n%s", r.stderr)
	}
	if i, j := strings.Index(r.stderr, "C: UTF8"), strings.Index(r.stderr, "C: AUTH"); i < 0 || j < 0 || i > j {
		t.Errorf("UTF8 must come before authentication (RFC 6856 §2):\n%s", r.stderr)
	}
	checkDelivered(t, maildirMessages(t, filepath.Join(e.dir, "Maildir")), e.want)
	if n := e.mb.Len(); n != 0 {
		t.Fatalf("%d messages left on the server", n)
	}

	var out, errb bytes.Buffer
	code := cmd.Main(context.Background(), []string{"popfetch", "-c", e.cfg, "serverinfo", "alice"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "UTF8") {
		t.Fatalf("serverinfo: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

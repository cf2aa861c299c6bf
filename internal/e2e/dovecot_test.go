package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// account returns a configuration with one account "d" for the server.
func account(t *testing.T, srv *dovecottest.Server, dir, user, tlsMode, addr, extra string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ca := ""
	if tlsMode != "none" {
		ca = fmt.Sprintf("tls_ca_file = %q", srv.CAFile())
	}
	return writeConfig(t, dir, fmt.Sprintf(`
[defaults]
state_dir = %q
timeout = "20s"

[[account]]
name = "d"
host = %q
port = %s
tls = %q
%s
user = %q
password = "secret"
%s

[account.deliver]
maildir = %q
`, filepath.Join(dir, "state"), host, port, tlsMode, ca, user, extra, filepath.Join(dir, "Maildir")))
}

// TestDovecotDeleteMode fetches 500 messages full of traps over implicit
// TLS and over STLS, byte-exact, and leaves the server empty.
func TestDovecotDeleteMode(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("alice", "secret"), dovecottest.WithUser("bob", "secret"))
	for _, tc := range []struct {
		user, mode, addr string
	}{
		{"alice", "implicit", srv.TLSAddr()},
		{"bob", "starttls", srv.PlainAddr()},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			msgs := mailgen.Traps(500, 7)
			srv.Populate(tc.user, msgs)
			dir := t.TempDir()
			cfg := account(t, srv, dir, tc.user, tc.mode, tc.addr, "")
			mustRun(t, 0, "-c", cfg, "fetch")
			checkDelivered(t, maildirMessages(t, filepath.Join(dir, "Maildir")), msgs)
			if n := srv.Count(tc.user); n != 0 {
				t.Fatalf("server still holds %d messages", n)
			}
		})
	}
}

// TestDovecotKeepMode: the second run retrieves nothing, and a message
// added afterwards is the only one retrieved next.
func TestDovecotKeepMode(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("carol", "secret"))
	msgs := mailgen.Traps(40, 11)
	srv.Populate("carol", msgs)
	dir := t.TempDir()
	cfg := account(t, srv, dir, "carol", "implicit", srv.TLSAddr(), "keep = true")
	md := filepath.Join(dir, "Maildir")

	mustRun(t, 0, "-c", cfg)
	checkDelivered(t, maildirMessages(t, md), msgs)
	if n := srv.Count("carol"); n != 40 {
		t.Fatalf("keep mode: server holds %d, want 40", n)
	}
	r := mustRun(t, 0, "-c", cfg, "-v", "fetch")
	if !strings.Contains(r.stderr, ": 0 new, 0 fetched") {
		t.Errorf("second run: want 0 fetched, got %q", r.stderr)
	}
	checkDelivered(t, maildirMessages(t, md), msgs)

	late := mailgen.Traps(41, 12)[40:]
	srv.Populate("carol", late)
	r = mustRun(t, 0, "-c", cfg, "-v", "fetch")
	if !strings.Contains(r.stderr, ": 1 new, 1 fetched") {
		t.Errorf("third run: want 1 fetched, got %q", r.stderr)
	}
	checkDelivered(t, maildirMessages(t, md), append(msgs, late...))
}

// TestDovecotCutBeforeQuit: messages delivered in a session that was cut
// before QUIT are deleted on the next run, not delivered twice.
func TestDovecotCutBeforeQuit(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("dave", "secret"))
	msgs := mailgen.Traps(60, 13)
	srv.Populate("dave", msgs)
	dir := t.TempDir()
	proxy := startCutBeforeQuit(t, srv.PlainAddr())
	cfg := account(t, srv, dir, "dave", "none", proxy.Addr(), "")
	md := filepath.Join(dir, "Maildir")

	r := popfetch(t, nil, "-c", cfg, "fetch")
	if r.code != 69 {
		t.Fatalf("cut session: exit %d, want 69\n%s", r.code, r.stderr)
	}
	checkDelivered(t, maildirMessages(t, md), msgs)
	if n := srv.Count("dave"); n != 60 {
		t.Fatalf("server holds %d after a session without QUIT, want 60", n)
	}

	proxy.pass.Store(true) // the same mailbox, now reached whole
	mustRun(t, 0, "-c", cfg, "fetch")
	if n := srv.Count("dave"); n != 0 {
		t.Fatalf("recovery run left %d on the server", n)
	}
	checkDelivered(t, maildirMessages(t, md), msgs)
}

// TestDovecotWrongPassword exits 77.
func TestDovecotWrongPassword(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("erin", "other"))
	dir := t.TempDir()
	cfg := account(t, srv, dir, "erin", "implicit", srv.TLSAddr(), "")
	r := popfetch(t, nil, "-c", cfg)
	if r.code != 77 {
		t.Fatalf("exit %d, want 77\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "secret") {
		t.Fatal("the password appears in the output")
	}
}

// TestDovecotSelectionFlags: fetch's selection flags against a real
// Dovecot: --keep, --limit, --max-size (reported once), --all, --no-keep.
func TestDovecotSelectionFlags(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("sel", "secret"))
	msgs := mailgen.Traps(5, 21)
	var big bytes.Buffer
	writeBigMessage(&big, 200<<10)
	msgs = append(msgs, big.Bytes())
	srv.Populate("sel", msgs)
	dir := t.TempDir()
	cfg := account(t, srv, dir, "sel", "implicit", srv.TLSAddr(), "")
	md := filepath.Join(dir, "Maildir")
	count := func() int { return len(maildirMessages(t, md)) }

	mustRun(t, 0, "-c", cfg, "fetch", "--keep", "--limit", "2")
	if count() != 2 || srv.Count("sel") != 6 {
		t.Fatalf("--keep --limit 2: %d delivered, %d on the server", count(), srv.Count("sel"))
	}
	r := mustRun(t, 0, "-c", cfg, "fetch", "--keep", "--max-size", "50KB")
	if count() != 5 || !strings.Contains(r.stderr, "larger than max_size") {
		t.Fatalf("--max-size 50KB: %d delivered, stderr %q", count(), r.stderr)
	}
	r = mustRun(t, 0, "-c", cfg, "fetch", "--keep", "--max-size", "50KB")
	if count() != 5 || r.stderr != "" {
		t.Fatalf("second --max-size run: %d delivered, stderr %q (want the skip reported once)", count(), r.stderr)
	}
	mustRun(t, 0, "-c", cfg, "fetch", "--keep", "--all")
	if count() != 11 {
		t.Fatalf("--all: %d delivered, want 5 + 6", count())
	}
	mustRun(t, 0, "-c", cfg, "fetch", "--no-keep")
	if count() != 11 || srv.Count("sel") != 0 {
		t.Fatalf("--no-keep: %d delivered, %d on the server; want the retrieved ones deleted unseen", count(), srv.Count("sel"))
	}
	if r := popfetch(t, nil, "-c", cfg, "fetch", "--keep", "--no-keep"); r.code != 64 {
		t.Fatalf("--keep --no-keep: exit %d, want 64", r.code)
	}
}

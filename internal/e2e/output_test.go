package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// pop3testAccount starts an in-process server with n messages for two
// accounts and returns a configuration that pins its certificate.
func pop3testAccount(t *testing.T, n int) (cfg string, dir string) {
	t.Helper()
	srv := pop3test.NewServer()
	for _, user := range []string{"alice", "bob"} {
		mb := srv.AddUser(user, "secret")
		for _, m := range mailgen.Traps(n, 3) {
			mb.Add(m)
		}
	}
	if err := srv.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(srv.Certificate().Raw)
	host, port, _ := strings.Cut(srv.Addr(), ":")
	dir = t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "[defaults]\nstate_dir = %q\n", filepath.Join(dir, "state"))
	for _, user := range []string{"alice", "bob"} {
		fmt.Fprintf(&b, `
[[account]]
name = %q
host = %q
port = %s
tls_fingerprint = "sha256:%s"
user = %q
password = "secret"

[account.deliver]
maildir = %q
`, user, host, port, hex.EncodeToString(sum[:]), user, filepath.Join(dir, user))
	}
	return writeConfig(t, dir, b.String()), dir
}

// TestProgressOnTerminal runs the binary in a pseudo-terminal: each
// account gets a progress bar with its name, messages and bytes.
func TestProgressOnTerminal(t *testing.T) {
	cfg, _ := pop3testAccount(t, 40)
	cmd := exec.Command(popfetchBin, "-c", cfg, "fetch")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	io.Copy(&out, f) // ends with EIO when the child exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("popfetch: %v\n%s", err, out.String())
	}
	f.Close()
	s := out.String()
	for _, want := range []string{"alice", "bob", "40/40 msgs", "[====", "KiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
}

// TestSilentWithoutTerminal: under cron (no terminal) a successful run
// prints nothing at all.
func TestSilentWithoutTerminal(t *testing.T) {
	cfg, dir := pop3testAccount(t, 25)
	r := popfetch(t, nil, "-c", cfg)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and nothing", r.code, r.stdout, r.stderr)
	}
	checkDelivered(t, maildirMessages(t, filepath.Join(dir, "alice")), mailgen.Traps(25, 3))
	checkDelivered(t, maildirMessages(t, filepath.Join(dir, "bob")), mailgen.Traps(25, 3))
}

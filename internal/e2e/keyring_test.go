package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// TestKeyringUnderCronStartsNothing runs the real binary as cron does —
// no D-Bus session in its environment, no bus socket in its runtime
// directory — for an account whose password can only come from the OS
// keyring. godbus, under go-keyring, would autolaunch a dbus-daemon with
// dbus-launch, and the bus would then start a gnome-keyring-daemon: two
// processes that outlive popfetch, every run (issue 12). popfetch must
// start nothing and fail at once with exit 78, saying why.
//
// Every process started on popfetch's behalf inherits its environment,
// so a marker variable finds them whatever else runs on the machine: the
// number of dbus-daemon and gnome-keyring-daemon processes carrying it
// must be 0 after the run, as before it.
func TestKeyringUnderCronStartsNothing(t *testing.T) {
	// With these missing the old bug could not show: the test would prove
	// nothing (scripts/test-deps.sh installs them).
	for _, tool := range []string{"dbus-launch", "dbus-daemon", "gnome-keyring-daemon"} {
		needTool(t, tool)
	}
	srv := pop3test.NewServer()
	srv.AddUser("cron", "pw").Add([]byte("Subject: x\n\nbody\n"))
	if err := srv.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Addr())
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`[[account]]
name = "cron"
host = %q
port = %s
user = "cron"
tls_fingerprint = %q
state_dir = %q

[account.deliver]
maildir = %q
`, host, port, ptPin(srv), filepath.Join(dir, "state"), filepath.Join(dir, "Maildir")))

	mark := make([]byte, 8)
	rand.Read(mark)
	marker := "POPFETCH_TEST_MARK=" + hex.EncodeToString(mark)
	runtime := filepath.Join(dir, "run")
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	before := markedDaemons(t, marker)
	cmd := exec.Command(popfetchBin, "-c", cfg, "fetch")
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "HOME":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+dir, "XDG_RUNTIME_DIR="+runtime, marker)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 78 {
		t.Errorf("exit %v, want 78\n%s", err, stderr.String())
	}
	after := markedDaemons(t, marker)
	t.Cleanup(func() {
		for _, p := range after {
			if proc, err := os.FindProcess(p.pid); err == nil {
				proc.Kill()
			}
		}
	})
	if len(before) != 0 || len(after) != 0 {
		t.Errorf("dbus-daemon and gnome-keyring-daemon started for popfetch: %d before the run, %d after: %v", len(before), len(after), after)
	}
	want := "popfetch: cron: error: no password for cron@" + host + ":" + port + ": no D-Bus session (cron?): the keyring cannot be reached; use password_command"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr:\n%s\nwant it to start with\n%s", stderr.String(), want)
	}
}

// markedProc is a process found by markedDaemons.
type markedProc struct {
	pid  int
	name string
}

// markedDaemons returns the dbus-daemon and gnome-keyring-daemon
// processes whose environment holds marker.
func markedDaemons(t *testing.T, marker string) []markedProc {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("no /proc to look for processes in: %v", err)
	}
	var out []markedProc
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), []byte("\x00"+marker+"\x00")) {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		name := strings.TrimSpace(string(comm))
		if strings.HasPrefix(name, "dbus-daemon") || strings.HasPrefix(name, "gnome-keyring") || strings.HasPrefix(name, "dbus-launch") {
			out = append(out, markedProc{pid, name})
		}
	}
	return out
}

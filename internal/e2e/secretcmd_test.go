package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A password_command that never ends, with a child in the background that
// holds its output pipe, cannot hold popfetch: SIGINT (then SIGINT again,
// as an impatient user would) ends the run at once, the command and every
// process it started are killed, and nothing reached the server. Before,
// the child survived both signals and popfetch waited on its pipe forever.
func TestSecretCommandInterrupted(t *testing.T) {
	d := newDaemonServer(t)
	d.srv.AddUser("alice", "secret")
	pids := filepath.Join(d.dir, "pids")
	command := fmt.Sprintf(`sleep 1000 & echo $! >>%s; echo $$ >>%s; sleep 1000; echo never`, pids, pids)
	cfg := writeConfig(t, d.dir, fmt.Sprintf("[[account]]\nname = \"a\"\nhost = %q\nport = %s\ntls_fingerprint = %q\n"+
		"user = \"alice\"\npassword_command = %q\nstate_dir = %q\n[account.deliver]\nmaildir = %q\n",
		d.host, d.port, d.pin, command, filepath.Join(d.dir, "state"), filepath.Join(d.dir, "Maildir")))
	run := startDaemon(t, "-c", cfg, "fetch")
	var started []int
	waitFor(t, "the password command to start", func() bool {
		started = pidsIn(pids)
		return len(started) == 2
	})
	t.Cleanup(func() {
		// should popfetch have left them, they would hold its stderr
		for _, pid := range started {
			if !gone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	run.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond)
	code := run.stop(t, syscall.SIGINT)
	if code != 0 {
		t.Errorf("exit %d, want 0 (a stop before anything began)\n%s", code, run.stderr)
	}
	for _, pid := range started {
		waitFor(t, fmt.Sprintf("process %d to end", pid), func() bool { return gone(pid) })
	}
	if n := d.srv.Sessions(); n != 0 {
		t.Errorf("%d connections made", n)
	}
}

// pidsIn reads the process ids in file, one a line.
func pidsIn(file string) []int {
	b, _ := os.ReadFile(file)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// gone reports whether pid has exited (a zombie no one reaped counts).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A secret command runs before any network I/O: one that fails leaves the
// server untouched — not even a connection — for fetch and check, for a
// password and for a token.
func TestSecretCommandRunsBeforeConnecting(t *testing.T) {
	for _, key := range []string{"password_command", "oauth_token_command"} {
		t.Run(key, func(t *testing.T) {
			e := newCLIEnv(t)
			a := e.addWithPassword("personal", "pw", "", key+` = "echo no secret today >&2; exit 3"`)
			a.mb.Add(testMessage(1))
			for _, cmd := range []string{"fetch", "check"} {
				_, errs := e.mustRun(exitConfig, cmd)
				if !strings.Contains(errs, "popfetch: personal: error: "+key+` "echo no secret today >&2; exit 3" failed: exit status 3`) {
					t.Errorf("%s said:\n%s", cmd, errs)
				}
			}
			if n := e.srv.Sessions(); n != 0 {
				t.Errorf("%d connections were made before the secret was known", n)
			}
		})
	}
}

// processGone reports whether pid has exited (or is a zombie no one
// reaped yet).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...: comm may hold anything but ends at the last ')'
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// readPIDs reads the process ids a command wrote, one a line.
func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	b, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", path, b)
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitGone fails the test unless every pid exits soon: they were sent
// SIGKILL, which takes effect at once but is seen a little later.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d outlived popfetch", pid)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// hangingCommand is a secret command that never ends, with a child in the
// background that holds the output pipe; both write their pid to file.
func hangingCommand(file string) string {
	return fmt.Sprintf(`sleep 1000 & echo $! >>%s; echo $$ >>%s; sleep 1000; echo never`, file, file)
}

// A command that hangs is killed after the account's timeout, with every
// process it started, even one that holds its output pipe open.
func TestSecretCommandTimeout(t *testing.T) {
	e := newCLIEnv(t)
	pids := filepath.Join(e.dir, "pids")
	a := e.addWithPassword("personal", "pw", "", fmt.Sprintf("timeout = \"1s\"\npassword_command = %q", hangingCommand(pids)))
	a.mb.Add(testMessage(1))
	_, errs := e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "did not finish within 1s (the account's timeout): it was killed, with every process it started") {
		t.Errorf("fetch said:\n%s", errs)
	}
	started := readPIDs(t, pids)
	if len(started) != 2 {
		t.Fatalf("the command started %v", started)
	}
	waitGone(t, started)
	if n := e.srv.Sessions(); n != 0 {
		t.Errorf("%d connections", n)
	}
}

// A command's output is capped: a password is a line, not a stream.
func TestSecretCommandOutputCapped(t *testing.T) {
	for _, command := range []string{"yes", "head -c 100000 /dev/zero"} {
		e := newCLIEnv(t)
		e.addWithPassword("personal", "pw", "", fmt.Sprintf("password_command = %q", command))
		_, errs := e.mustRun(exitConfig, "fetch")
		if !strings.Contains(errs, fmt.Sprintf("password_command %q printed more than 64 KiB", command)) {
			t.Errorf("%s: fetch said:\n%s", command, errs)
		}
	}
}

// The command's first line is the secret, whatever follows it.
func TestSecretCommandFirstLine(t *testing.T) {
	e := newCLIEnv(t)
	a := e.addWithPassword("personal", "s3cret pass", "", `password_command = "printf 's3cret pass\\r\\nsecond line\\n'"`)
	a.mb.Add(testMessage(1))
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 1 {
		t.Errorf("%d delivered", n)
	}
}

package cmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// childTestEnv marks the child process of rerunTest and names the test it
// is to run.
const childTestEnv = "POPFETCH_TEST_CHILD"

// withSecretService makes the calling test run against a real Secret
// Service: gnome-keyring-daemon, unlocked, with an empty keyring in a
// temporary directory, on a private D-Bus session bus. The test binary
// runs the test again in a child process under
//
//	dbus-run-session -- sh -c 'printf pw | gnome-keyring-daemon --unlock --components=secrets && exec "$@"'
//
// and the parent reports how it went. It returns true in the child, where
// the test goes on, and false in the parent, where the test must return.
// The user's own keyring and session bus are never touched. Missing tools
// fail the test: CI installs them (.ci/run), so these tests never skip.
func withSecretService(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childTestEnv) == t.Name() {
		waitForSecretService(t)
		return true
	}
	var missing []string
	for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s not found: the keyring tests need a real Secret Service; "+
			"install it with: apt-get install gnome-keyring dbus dbus-x11 (as .ci/run does)", strings.Join(missing, " and "))
	}
	dir := t.TempDir()
	runtime := filepath.Join(dir, "run")
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	script := `printf %s "$POPFETCH_TEST_KEYRING_PW" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"`
	rerunTest(t, []string{
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR=" + runtime,
		"POPFETCH_TEST_KEYRING_PW=test-keyring-password",
	}, "dbus-run-session", "--", "sh", "-c", script, "sh")
	return false
}

// withBrokenKeyring runs the calling test again in a child process whose
// session bus address leads nowhere, so the OS keyring cannot be used.
// It returns true in the child and false in the parent.
func withBrokenKeyring(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childTestEnv) == t.Name() {
		return true
	}
	dir := t.TempDir()
	rerunTest(t, []string{
		"HOME=" + dir,
		"XDG_RUNTIME_DIR=" + dir,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "no-bus"),
	})
	return false
}

// rerunTest runs the test binary again, with only the calling test, under
// the wrapper command (if any), with env added to the environment (less
// any session bus address of ours), and fails unless the test passed there.
func rerunTest(t *testing.T, env []string, wrapper ...string) {
	t.Helper()
	args := append(wrapper, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd := exec.Command(args[0], args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(kv, childTestEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = append(cmd.Env, childTestEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("child process %q:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("the test failed in its child process: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the child process did not run %s", t.Name())
	}
}

// waitForSecretService waits until the Secret Service answers.
func waitForSecretService(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := keyring.Get(keyringService, "probe@popfetch.test")
		if errors.Is(err, keyring.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Secret Service does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPasswordKeyring: password set, a fetch that logs in with the stored
// password, password delete, and a fetch that finds no password — with a
// real Secret Service.
func TestPasswordKeyring(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "personal", user: "alice"}, "s3cret pass")
	a.mb.Add(testMessage(1))
	key := e.key(a) // alice@127.0.0.1:PORT

	withStdin(t, "s3cret pass\r\nthe next line is not read\n", func() {
		_, errs := e.mustRun(0, "password", "set", "personal")
		if !strings.Contains(errs, `key "`+key+`"`) || strings.Contains(errs, "s3cret") {
			t.Errorf("password set said:\n%s", errs)
		}
	})
	if pw, err := keyring.Get("popfetch", key); err != nil || pw != "s3cret pass" {
		t.Fatalf("keyring holds %q, %v", pw, err)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}

	_, errs := e.mustRun(0, "password", "delete", "personal")
	if !strings.Contains(errs, "deleted") {
		t.Errorf("password delete said:\n%s", errs)
	}
	if _, err := keyring.Get("popfetch", key); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	_, errs = e.mustRun(0, "password", "delete", "personal")
	if !strings.Contains(errs, "no password stored") {
		t.Errorf("a second delete said:\n%s", errs)
	}

	a.mb.Add(testMessage(2))
	_, errs = e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "no password for "+key) || !strings.Contains(errs, "popfetch password set personal") {
		t.Errorf("fetch without a password said:\n%s", errs)
	}
	if n := e.delivered(a); n != 1 {
		t.Errorf("%d messages delivered, want still 1", n)
	}

	// USER@HOST names an entry directly, configured or not.
	withStdin(t, "other\n", func() { e.mustRun(0, "password", "set", "bob@pop.example.org") })
	if pw, _ := keyring.Get("popfetch", "bob@pop.example.org"); pw != "other" {
		t.Errorf("keyring holds %q for bob@pop.example.org", pw)
	}
	e.mustRun(0, "password", "delete", "bob@pop.example.org")
}

// TestPasswordKeyringComesAfterConfig: a stored password does not win over
// password_command, and password set says so.
func TestPasswordKeyringComesAfterConfig(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "work", user: "carol", extra: `password_command = "echo from-command"`}, "from-command")
	a.mb.Add(testMessage(1))
	var errs string
	withStdin(t, "from-keyring", func() { _, errs = e.mustRun(0, "password", "set", "work") })
	if !strings.Contains(errs, "warning: password_command is set and comes first") {
		t.Errorf("password set said:\n%s", errs)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
}

// TestPasswordKeyringUnavailable: with no Secret Service, password set and
// delete fail clearly with exit 78, and fetch says the keyring could not
// be read.
func TestPasswordKeyringUnavailable(t *testing.T) {
	if !withBrokenKeyring(t) {
		return
	}
	e := newCLIEnv(t)
	e.addAccount(&cliAccount{name: "home", user: "dave"}, "pw")
	withStdin(t, "pw\n", func() {
		_, errs := e.mustRun(exitConfig, "password", "set", "home")
		if !strings.Contains(errs, "popfetch: error: the OS keyring is not available") {
			t.Errorf("password set said:\n%s", errs)
		}
	})
	_, errs := e.mustRun(exitConfig, "password", "delete", "home")
	if !strings.Contains(errs, "the OS keyring is not available") {
		t.Errorf("password delete said:\n%s", errs)
	}
	_, errs = e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "the OS keyring could not be read") {
		t.Errorf("fetch said:\n%s", errs)
	}
}

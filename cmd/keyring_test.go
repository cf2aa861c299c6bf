package cmd

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
// fail the test: make test installs them (scripts/test-deps.sh), so these
// tests never skip.
func withSecretService(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childTestEnv) == t.Name() {
		waitForSecretService(t)
		return true
	}
	// A real Secret Service: gnome-keyring on a private bus.
	needTool(t, "dbus-run-session")
	needTool(t, "gnome-keyring-daemon")
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

// withoutSessionBus runs the calling test again in a child process as
// under cron: no DBUS_SESSION_BUS_ADDRESS, and no bus socket in its
// XDG_RUNTIME_DIR — or, with gone, an address whose socket is not there
// (a session that has ended). It returns true in the child and false in
// the parent.
func withoutSessionBus(t *testing.T, gone bool) bool {
	t.Helper()
	if os.Getenv(childTestEnv) == t.Name() {
		return true
	}
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "XDG_RUNTIME_DIR=" + dir}
	if gone {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(dir, "no-bus"))
	}
	rerunTest(t, env)
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
	// The password_command that the message for cron suggests finds it.
	if out, err := exec.Command(needTool(t, "secret-tool"), "lookup", "service", keyringService, "username", key).Output(); err != nil || string(out) != "s3cret pass" {
		t.Errorf("secret-tool lookup service popfetch username %s: %q, %v", key, out, err)
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
	if !strings.Contains(errs, "no password for "+key) || !strings.Contains(errs, "popfetch -c "+e.config+" password set personal") {
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

// TestKeyringWithoutSessionBus: under cron (no session bus) or after the
// session ended, a fetch that needs the keyring stops at once with exit 78
// and says what to use instead; password set and delete fail the same
// way. Nothing is started to reach a keyring (internal/e2e counts the
// processes of the real binary).
func TestKeyringWithoutSessionBus(t *testing.T) {
	for _, gone := range []bool{false, true} {
		t.Run(map[bool]string{false: "cron", true: "gone"}[gone], func(t *testing.T) {
			if !withoutSessionBus(t, gone) {
				return
			}
			e := newCLIEnv(t)
			a := e.addAccount(&cliAccount{name: "home", user: "dave"}, "pw")
			a.mb.Add(testMessage(1))
			withStdin(t, "pw\n", func() {
				_, errs := e.mustRun(exitConfig, "password", "set", "home")
				if !strings.Contains(errs, "popfetch: error: the OS keyring is not available: no D-Bus session (cron?): the keyring cannot be reached") {
					t.Errorf("password set said:\n%s", errs)
				}
			})
			_, errs := e.mustRun(exitConfig, "password", "delete", "home")
			if !strings.Contains(errs, "no D-Bus session (cron?)") {
				t.Errorf("password delete said:\n%s", errs)
			}
			_, errs = e.mustRun(exitConfig, "fetch")
			want := "popfetch: home: error: no password for " + e.key(a) + ": no D-Bus session (cron?): the keyring cannot be reached"
			if !strings.HasPrefix(errs, want) ||
				!strings.Contains(errs, "; use password_command (e.g. `secret-tool lookup service popfetch username "+e.key(a)+"`") {
				t.Errorf("fetch said:\n%s\nwant it to start with\n%s", errs, want)
			}
			if n := e.delivered(a); n != 0 {
				t.Errorf("%d delivered", n)
			}
		})
	}
}

// TestPasswordKeyringAdoptsOldName: a password stored by an older
// popfetch under USER@HOST is found for the mailbox now named
// USER@HOST:PORT; password set stores under the new name, and password
// delete removes both.
func TestPasswordKeyringAdoptsOldName(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "old", user: "frank"}, "old-pw")
	a.mb.Add(testMessage(1))
	legacy := "frank@127.0.0.1"
	if legacy == e.key(a) {
		t.Fatalf("the test server's port is the standard one")
	}
	if err := keyring.Set(keyringService, legacy, "old-pw"); err != nil {
		t.Fatal(err)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered(a); n != 1 {
		t.Fatalf("%d delivered with the password under %s, want 1", n, legacy)
	}

	withStdin(t, "old-pw\n", func() { e.mustRun(0, "password", "set", "old") })
	if pw, err := keyring.Get(keyringService, e.key(a)); err != nil || pw != "old-pw" {
		t.Errorf("password set stored %q, %v under %s", pw, err, e.key(a))
	}
	_, errs := e.mustRun(0, "password", "delete", "old")
	for _, k := range []string{e.key(a), legacy} {
		if _, err := keyring.Get(keyringService, k); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("after password delete, %s: %v", k, err)
		}
		if !strings.Contains(errs, `key "`+k+`"`) {
			t.Errorf("password delete did not say it deleted %s:\n%s", k, errs)
		}
	}
}

// TestOneOffPasswordHint: a one-off fetch with no password anywhere says
// how to store one; that command, run as printed, stores it under the
// mailbox's identity, and the same fetch then logs in with it.
func TestOneOffPasswordHint(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newCLIEnv(t)
	e.srv.AddUser("solo", "stored pw").Add(testMessage(1))
	host, port, _ := net.SplitHostPort(e.srv.Addr())
	t.Setenv("XDG_STATE_HOME", e.dir+"/state")
	fetch := []string{"fetch", "--host", host, "--port", port, "--user", "solo", "--tls-ca-file", e.ca, "--maildir", e.dir + "/M"}
	_, errs := mustMain(t, exitConfig, fetch...)
	args := hintCommand(t, errs, "no password for solo@"+host+":"+port)
	if want := []string{"password", "set", "--host", host, "--port", port, "--user", "solo"}; !slices.Equal(args, want) {
		t.Errorf("hint %q, want %q", args, want)
	}
	withStdin(t, "stored pw\n", func() { mustMain(t, 0, args...) })
	mustMain(t, 0, fetch...)
}

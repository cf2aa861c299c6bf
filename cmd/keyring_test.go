package cmd

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/popfetch/popfetch/pop3/pop3test"
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

// kEnv is a pop3test server with implicit TLS, trusted through
// tls_ca_file, and a configuration of accounts on it. Commands run in
// process through Main.
type kEnv struct {
	t      *testing.T
	pop    *pop3test.Server
	dir    string
	config string
	accts  []string
}

// host is the mailbox identity's host part: the server's address with
// its port, which is not the standard one (CONTRACT §2).
func (e *kEnv) host() string { return e.pop.Addr() }

func newKEnv(t *testing.T, mechanisms ...string) *kEnv {
	t.Helper()
	e := &kEnv{t: t, pop: pop3test.NewServer(), dir: t.TempDir()}
	e.pop.Mechanisms = mechanisms
	if err := e.pop.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pop.Close)
	e.config = filepath.Join(e.dir, "config.toml")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.pop.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(e.dir, "ca.pem"), cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// add adds an account with extra TOML lines, delivering to its own
// Maildir, and rewrites the configuration.
func (e *kEnv) add(name, user, extra string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(e.pop.Addr())
	e.accts = append(e.accts, fmt.Sprintf("[[account]]\nname = %q\nhost = %q\nport = %s\nuser = %q\n%s\n\n[account.deliver]\nmaildir = %q\n",
		name, host, port, user, extra, e.maildir(name)))
	body := fmt.Sprintf("[defaults]\nstate_dir = %q\ntimeout = \"10s\"\ntls_ca_file = %q\n\n%s",
		filepath.Join(e.dir, "state"), filepath.Join(e.dir, "ca.pem"), strings.Join(e.accts, "\n"))
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *kEnv) maildir(name string) string { return filepath.Join(e.dir, "Maildir-"+name) }

// delivered counts the messages in an account's Maildir.
func (e *kEnv) delivered(name string) int {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.maildir(name), "new"))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	return len(ents)
}

// run runs popfetch -c CONFIG args... in process.
func (e *kEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"popfetch", "-c", e.config}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs a command that must exit with want, and returns its
// standard error.
func (e *kEnv) mustRun(want int, args ...string) string {
	e.t.Helper()
	code, out, errs := e.run(args...)
	if code != want {
		e.t.Fatalf("popfetch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return errs
}

// withStdin makes os.Stdin read data (from a file: not a terminal) while
// f runs, as `printf data | popfetch ...` would.
func withStdin(t *testing.T, data string, f func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	saved := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = saved }()
	f()
}

func testMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\nSubject: message %d\n\nbody %d\n", i, i))
}

// TestPasswordKeyring: password set, a fetch that logs in with the stored
// password, password delete, and a fetch that finds no password — with a
// real Secret Service.
func TestPasswordKeyring(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newKEnv(t)
	mb := e.pop.AddUser("alice", "s3cret pass")
	mb.Add(testMessage(1))
	e.add("personal", "alice", "")
	key := "alice@" + e.host()

	withStdin(t, "s3cret pass\r\nthe next line is not read\n", func() {
		errs := e.mustRun(0, "password", "set", "personal")
		if !strings.Contains(errs, `key "`+key+`"`) || strings.Contains(errs, "s3cret") {
			t.Errorf("password set said:\n%s", errs)
		}
	})
	if pw, err := keyring.Get("popfetch", key); err != nil || pw != "s3cret pass" {
		t.Fatalf("keyring holds %q, %v", pw, err)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered("personal"); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}

	errs := e.mustRun(0, "password", "delete", "personal")
	if !strings.Contains(errs, "deleted") {
		t.Errorf("password delete said:\n%s", errs)
	}
	if _, err := keyring.Get("popfetch", key); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	errs = e.mustRun(0, "password", "delete", "personal")
	if !strings.Contains(errs, "no password stored") {
		t.Errorf("a second delete said:\n%s", errs)
	}

	mb.Add(testMessage(2))
	errs = e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "no password for "+key) || !strings.Contains(errs, "popfetch password set personal") {
		t.Errorf("fetch without a password said:\n%s", errs)
	}
	if n := e.delivered("personal"); n != 1 {
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
	e := newKEnv(t)
	e.pop.AddUser("carol", "from-command").Add(testMessage(1))
	e.add("work", "carol", `password_command = "echo from-command"`)
	var errs string
	withStdin(t, "from-keyring", func() { errs = e.mustRun(0, "password", "set", "work") })
	if !strings.Contains(errs, "warning: password_command is set and comes first") {
		t.Errorf("password set said:\n%s", errs)
	}
	e.mustRun(0, "fetch")
	if n := e.delivered("work"); n != 1 {
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
	e := newKEnv(t)
	e.pop.AddUser("dave", "pw")
	e.add("home", "dave", "")
	withStdin(t, "pw\n", func() {
		errs := e.mustRun(exitConfig, "password", "set", "home")
		if !strings.Contains(errs, "popfetch: error: the OS keyring is not available") {
			t.Errorf("password set said:\n%s", errs)
		}
	})
	errs := e.mustRun(exitConfig, "password", "delete", "home")
	if !strings.Contains(errs, "the OS keyring is not available") {
		t.Errorf("password delete said:\n%s", errs)
	}
	errs = e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "the OS keyring could not be read") {
		t.Errorf("fetch said:\n%s", errs)
	}
}

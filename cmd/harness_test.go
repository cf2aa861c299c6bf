package cmd

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/internal/testtool"
	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// cliEnv is the one harness of cmd's tests: a pop3test server on loopback
// (implicit TLS unless plainServer), a temporary directory, a
// configuration file naming accounts on the server, and popfetch run in
// process through Main with captured output, as gitea's cmd tests do.
// Tests that need the real binary (a terminal, a signal) are in
// internal/e2e.
type cliEnv struct {
	t      *testing.T
	srv    *pop3test.Server
	dir    string
	config string // the configuration file, -c of every run
	state  string // the state_dir of every account
	ca     string // the server's certificate as a PEM CA file
	accts  []*cliAccount
}

// cliAccount is an account of a cliEnv: a user on the test server and the
// settings written for it into the configuration.
type cliAccount struct {
	name string
	user string // "" at addAccount: "u-" + name
	// password is what the configuration gives ("" none: the keyring or
	// nothing).
	password string
	tls      string // "" leaves the default (implicit)
	noCA     bool   // no tls_ca_file: the server's certificate is not trusted
	extra    string // more TOML lines for the account
	deliver  string // the lines of [account.deliver]; "": maildir = e.maildir(a)
	mb       *pop3test.Mailbox
}

// envOption adjusts the server of newCLIEnv before it starts.
type envOption func(*envSetup)

type envSetup struct {
	plain bool
	setup []func(*pop3test.Server)
}

// plainServer starts the server without TLS (offering STLS unless told
// not to), for tls = "starttls" or "none".
func plainServer() envOption { return func(s *envSetup) { s.plain = true } }

// serverSetup sets up the server (faults, mechanisms) before it starts.
func serverSetup(f func(*pop3test.Server)) envOption {
	return func(s *envSetup) { s.setup = append(s.setup, f) }
}

func newCLIEnv(t *testing.T, opts ...envOption) *cliEnv {
	t.Helper()
	var o envSetup
	for _, opt := range opts {
		opt(&o)
	}
	e := &cliEnv{t: t, srv: pop3test.NewServer(), dir: t.TempDir()}
	for _, f := range o.setup {
		f(e.srv)
	}
	e.state = filepath.Join(e.dir, "state")
	e.config = filepath.Join(e.dir, "config.toml")
	e.ca = filepath.Join(e.dir, "ca.pem")
	start := e.srv.StartTLS
	if o.plain {
		start = e.srv.Start
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Close)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})
	if err := os.WriteFile(e.ca, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// add adds a user on the server and an account for it whose configured
// password is the server's.
func (e *cliEnv) add(name, extra string) *cliAccount {
	return e.addWithPassword(name, "secret-"+name, "secret-"+name, extra)
}

// addWithPassword is add with the server's password and the configured
// one ("" none) given.
func (e *cliEnv) addWithPassword(name, password, configured, extra string) *cliAccount {
	return e.addAccount(&cliAccount{name: name, password: configured, extra: extra}, password)
}

// addAccount adds a's user on the server with serverPassword, and a to
// the configuration.
func (e *cliEnv) addAccount(a *cliAccount, serverPassword string) *cliAccount {
	if a.user == "" {
		a.user = "u-" + a.name
	}
	a.mb = e.srv.AddUser(a.user, serverPassword)
	e.accts = append(e.accts, a)
	e.writeConfig()
	return a
}

// writeConfig writes the configuration of the accounts.
func (e *cliEnv) writeConfig() {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(e.srv.Addr())
	var b strings.Builder
	fmt.Fprintf(&b, "[defaults]\nstate_dir = %q\ntimeout = \"10s\"\n", e.state)
	for _, a := range e.accts {
		fmt.Fprintf(&b, "\n[[account]]\nname = %q\nhost = %q\nport = %s\nuser = %q\n", a.name, host, port, a.user)
		if a.tls != "" {
			fmt.Fprintf(&b, "tls = %q\n", a.tls)
		}
		if a.password != "" {
			fmt.Fprintf(&b, "password = %q\n", a.password)
		}
		if !a.noCA {
			fmt.Fprintf(&b, "tls_ca_file = %q\n", e.ca)
		}
		if a.extra != "" {
			fmt.Fprintf(&b, "%s\n", a.extra)
		}
		deliver := a.deliver
		if deliver == "" {
			deliver = fmt.Sprintf("maildir = %q", e.maildir(a))
		}
		fmt.Fprintf(&b, "\n[account.deliver]\n%s\n", deliver)
	}
	e.setConfig(b.String())
}

// setConfig writes text as the configuration file, 0600.
func (e *cliEnv) setConfig(text string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *cliEnv) maildir(a *cliAccount) string { return filepath.Join(e.dir, "Maildir-"+a.name) }

// account returns a as the configuration loads it.
func (e *cliEnv) account(a *cliAccount) *config.Account {
	host, portStr, _ := net.SplitHostPort(e.srv.Addr())
	port, _ := strconv.Atoi(portStr)
	acct := config.NewAccount(config.Env{})
	acct.Name, acct.Host, acct.Port, acct.User = a.name, host, port, a.user
	if a.tls != "" {
		acct.TLS = config.TLSMode(a.tls)
	}
	return acct
}

// key is the account's mailbox identity: USER@127.0.0.1:PORT, as the
// server's port is not a standard one.
func (e *cliEnv) key(a *cliAccount) string { return e.account(a).Key() }

func (e *cliEnv) cachePath(a *cliAccount) string {
	return filepath.Join(e.state, uidcache.FileName(e.key(a)))
}

// delivered returns the number of messages in the account's Maildir.
func (e *cliEnv) delivered(a *cliAccount) int {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.maildir(a), "new"))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	return len(ents)
}

// run runs popfetch -c CONFIG args... and returns its exit code and output.
func (e *cliEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	return runMain(e.t, append([]string{"-c", e.config}, args...)...)
}

// mustRun runs a command that must exit with want.
func (e *cliEnv) mustRun(want int, args ...string) (stdout, stderr string) {
	e.t.Helper()
	code, out, errs := e.run(args...)
	if code != want {
		e.t.Fatalf("popfetch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// runMain runs popfetch args... in process, with a deadline so that a hang
// fails the test instead of stalling the suite.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = Main(ctx, append([]string{"popfetch"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// lock holds the account's lock as a running fetch would, until the test
// ends or the returned function is called.
func (e *cliEnv) lock(a *cliAccount) func() {
	e.t.Helper()
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		e.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(e.state, uidcache.EscapeKey(e.key(a))+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return func() { f.Close() }
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

// needTool is testtool.Need: the program, or a failed test under make
// test, a skipped one elsewhere.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Need(t, name)
}

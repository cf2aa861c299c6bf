// Package dovecottest starts a real, private Dovecot POP3 server on loopback
// for Go tests.
//
// Each Server gets its own temporary directory holding a private CA and a
// server certificate signed by it, dovecot.conf, the passwd-file with the
// users, their Maildirs, dovecot's sockets, state and log. Two listeners are
// opened on free loopback ports: a plain POP3 port that offers STLS and an
// implicit-TLS (pop3s) port. USER/PASS, APOP and SASL PLAIN, LOGIN and
// CRAM-MD5 all work, on both ports. WithLMTP adds an LMTP listener
// (dovecot-lmtpd) with Sieve (dovecot-sieve) that delivers into the same
// Maildirs. Nothing outside the directory is touched and no other dovecot
// instance is affected.
//
//	srv := dovecottest.Start(t, dovecottest.WithUser("alice", "secret"))
//	srv.Populate("alice", msgs)
//	// connect to srv.TLSAddr() trusting srv.CAFile() ...
//
// The dovecot binary (Debian: dovecot-core and dovecot-pop3d, version 2.3)
// must be installed; without it Start fails the test rather than skipping
// it, unless POPFETCH_SKIP_DOVECOT=1 is set. Set DOVECOT_BINARY to use a
// binary that is not on PATH or in /usr/sbin.
//
// UIDLs are dovecot's %08Xu%08Xv (UID and UIDVALIDITY in hex): stable across
// sessions, new for each message added, all changed by ResetUIDs. Failed
// logins are answered after about 0.5 s (dovecot's failure timer) without
// the growing per-IP penalty a production dovecot applies.
//
// It works as root (dovecot then runs its mail processes as the "dovecot"
// system user and its login processes as "dovenull", and the Maildir files
// are chowned accordingly) and as an ordinary user (everything runs as that
// user).
//
// Methods that take no testing.TB report errors with the TB given to Start,
// so call them from that test's goroutine (not from a subtest or another
// goroutine). They are safe for concurrent use otherwise.
package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SkipEnv is the environment variable that turns a missing dovecot binary
// into a skipped test instead of a failed one.
const SkipEnv = "POPFETCH_SKIP_DOVECOT"

const startTimeout = 10 * time.Second

// Option configures a Server.
type Option func(*options)

type options struct {
	users      [][2]string
	mechanisms []string
	verbose    bool
	extra      []string
	lmtp       bool
}

// WithUser creates a user before the server starts (AddUser works later too).
func WithUser(name, password string) Option {
	return func(o *options) { o.users = append(o.users, [2]string{name, password}) }
}

// WithMechanisms replaces auth_mechanisms (default "plain login cram-md5
// apop"). USER/PASS keeps working whatever the list; without "apop" the
// greeting carries no APOP timestamp.
func WithMechanisms(mechs ...string) Option {
	return func(o *options) { o.mechanisms = append([]string(nil), mechs...) }
}

// WithVerbose turns on dovecot's auth_debug, mail_debug and verbose_ssl.
func WithVerbose() Option {
	return func(o *options) { o.verbose = true }
}

// WithLMTP also serves LMTP (RFC 2033; Debian: dovecot-lmtpd) on a
// loopback port (LMTPAddr) and a unix socket (LMTPSocket), delivering into
// the users' Maildirs, where POP3 finds the messages. Each user's Sieve
// script (SetSieve; Debian: dovecot-sieve) runs on delivery. Dovecot adds
// one field to each message delivered: "Return-Path: <sender>" at the
// top, from MAIL FROM.
func WithLMTP() Option {
	return func(o *options) { o.lmtp = true }
}

// WithConfig appends raw lines to dovecot.conf after the generated settings,
// e.g. `login_greeting = hello` or a `protocol pop3 { ... }` block.
func WithConfig(lines ...string) Option {
	return func(o *options) { o.extra = append(o.extra, lines...) }
}

// Server is a running private dovecot.
type Server struct {
	t        testing.TB
	dir      string
	id       identity
	plain    string
	tls      string
	lmtp     string // host:port, "" without WithLMTP
	conf     string
	certs    *certs
	greeting string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the master process has exited
	waitErr error
	stderr  lockedBuffer
	stop    sync.Once

	mu     sync.Mutex
	users  map[string]string
	seq    int
	lastTS time.Time
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9_@-][A-Za-z0-9._@-]*$`)

// Start starts a private dovecot and registers its shutdown with t.Cleanup.
// It fails the test (t.Fatal) if that is impossible.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{mechanisms: []string{"plain", "login", "cram-md5", "apop"}}
	for _, f := range opts {
		f(&o)
	}
	bin, err := findDovecot()
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("dovecottest: %v (skipping because %s=1)", err, SkipEnv)
		}
		t.Fatalf("dovecottest: %v\n\tinstall it (Debian/Ubuntu: apt-get install dovecot-core dovecot-pop3d), "+
			"set DOVECOT_BINARY, or set %s=1 to skip the tests that need it", err, SkipEnv)
	}
	if err := checkVersion(bin); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	id, err := lookupIdentity()
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}

	dir, err := makeDir(id)
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("dovecottest: removing %s: %v", dir, err)
		}
	})
	s := &Server{t: t, dir: dir, id: id, users: map[string]string{}}
	if err := s.prepare(); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	for _, u := range o.users {
		s.AddUser(u[0], u[1])
	}

	// Runs before the directory is removed (cleanups run last-in first-out).
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("dovecottest: dovecot log (%s):\n%s", dir, s.Log())
		}
	})

	// A free port found by listening on :0 may be taken by someone else
	// before dovecot binds it; try again with new ports in that case.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		plainPort, tlsPort, lmtpPort := ports[0], ports[1], 0
		s.plain = net.JoinHostPort("127.0.0.1", strconv.Itoa(plainPort))
		s.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		if o.lmtp {
			lmtpPort = ports[2]
			s.lmtp = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtpPort))
		}
		conf := renderConf(confParams{
			dir: dir, instance: filepath.Base(dir),
			plainPort: plainPort, tlsPort: tlsPort, lmtpPort: lmtpPort, id: id,
			mechanisms: o.mechanisms, verbose: o.verbose, extra: o.extra,
		})
		s.conf = filepath.Join(dir, "dovecot.conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		err = s.run(bin)
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(s.Log(), "Address already in use") {
			continue
		}
		t.Fatalf("dovecottest: %v (are dovecot-core and dovecot-pop3d installed?)\n--- dovecot.conf ---\n%s--- dovecot log ---\n%s", err, conf, s.Log())
	}
	return s
}

// findDovecot looks for the dovecot binary: $DOVECOT_BINARY, PATH, then the
// sbin directories an unprivileged user usually lacks in PATH.
func findDovecot() (string, error) {
	if p := os.Getenv("DOVECOT_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DOVECOT_BINARY: %v", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot", "/sbin/dovecot"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("the dovecot binary was not found (looked in PATH, /usr/sbin, /usr/local/sbin)")
}

var (
	versionMu  sync.Mutex
	versionErr = map[string]error{}
)

// checkVersion refuses anything but dovecot 2.3: 2.4 renamed most of the
// settings this package writes. The answer is cached per binary.
func checkVersion(bin string) error {
	versionMu.Lock()
	defer versionMu.Unlock()
	if err, ok := versionErr[bin]; ok {
		return err
	}
	var err error
	out, xerr := exec.Command(bin, "--version").Output()
	if xerr != nil {
		err = fmt.Errorf("%s --version: %v", bin, xerr)
	} else if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "2.3.") {
		err = fmt.Errorf("%s is version %q; this package writes a dovecot 2.3 configuration (Debian 12's dovecot-core)", bin, v)
	}
	versionErr[bin] = err
	return err
}

// makeDir creates the server's private directory. Unix socket paths are
// limited to ~107 bytes, so it must be short; and as root the dovecot user
// must be able to reach it, so every parent must be world-searchable.
func makeDir(id identity) (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 || (id.root && !searchable(parent)) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dovecottest-")
	if err != nil {
		return "", err
	}
	if id.root {
		// others may search (not list) it: the users file and Maildirs below
		// are read by processes running as dovecot.
		if err := os.Chmod(dir, 0o711); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func searchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		p := filepath.Dir(dir)
		if p == dir {
			return true
		}
		dir = p
	}
}

// freePorts returns n different free loopback ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %v", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// prepare writes the certificates and the empty users file.
func (s *Server) prepare() error {
	c, err := newCerts(filepath.Base(s.dir))
	if err != nil {
		return err
	}
	s.certs = c
	if err := os.Mkdir(filepath.Join(s.dir, "ssl"), 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": c.caPEM, "server.pem": c.certPEM, "server.key": c.keyPEM} {
		mode := os.FileMode(0o644)
		if name == "server.key" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(s.dir, "ssl", name), data, mode); err != nil {
			return err
		}
	}
	for _, d := range []string{"state", "mail", "passwd"} {
		p := filepath.Join(s.dir, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := s.chown(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) chown(path string) error {
	if !s.id.root {
		return nil
	}
	return os.Lchown(path, s.id.uid, s.id.gid)
}

// run starts the master in the foreground and waits until the plain port
// answers with a greeting.
func (s *Server) run(bin string) error {
	s.stderr.Reset()
	s.stop = sync.Once{}
	_ = os.Remove(filepath.Join(s.dir, "dovecot.log"))
	cmd := exec.Command(bin, "-F", "-c", s.conf)
	cmd.Dir = s.dir
	cmd.Stdout = &s.stderr
	cmd.Stderr = &s.stderr
	setProcAttr(cmd)
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the forking thread: keep this
		// goroutine on its thread until the child has exited, so the thread
		// cannot go away (and kill dovecot) while the test still runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting %s: %v", bin, err)
	}
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	if err := s.disablePenalty(deadline); err != nil {
		s.Stop()
		return err
	}
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("dovecot exited during start-up: %v", s.waitErr)
		default:
		}
		g, err := readGreeting(s.plain)
		if err == nil {
			if !strings.HasPrefix(g, "+OK") {
				s.Stop()
				return fmt.Errorf("unexpected greeting %q", g)
			}
			s.greeting = g
			if err := s.listening(); err == nil {
				return nil
			} else {
				lastErr = err
			}
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("dovecot did not answer on %s within %v: %v", s.plain, startTimeout, lastErr)
}

// disablePenalty turns off dovecot's growing per-IP delay after failed
// logins (2, 4, 8 ... 15 s, tracked by anvil): tests of wrong passwords and
// of clients that retry would take minutes. Dovecot 2.3 has no setting for
// it (login_trusted_networks no longer waives it), but the auth process
// silently does without penalties when it cannot find anvil's
// anvil-auth-penalty socket at its start. The master creates all its sockets
// before it starts any process, and auth starts only with the first login
// connection, so the socket file is removed before the first connection.
func (s *Server) disablePenalty(deadline time.Time) error {
	sock := filepath.Join(s.dir, "run", "anvil-auth-penalty")
	for {
		err := os.Remove(sock)
		if err == nil {
			return nil
		}
		if !os.IsNotExist(err) {
			return fmt.Errorf("removing %s: %v", sock, err)
		}
		select {
		case <-s.done:
			return fmt.Errorf("dovecot exited during start-up: %v", s.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot did not create %s within %v", sock, startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listening checks the listeners other than the plain POP3 one.
func (s *Server) listening() error {
	addrs := []string{s.tls}
	if s.lmtp != "" {
		addrs = append(addrs, s.lmtp)
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

func readGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return strings.TrimRight(line, "\r\n"), nil
}

// Stop stops the server at once and waits for its master process. It is
// idempotent and also run by t.Cleanup; tests call it to make the server
// unreachable.
//
// A graceful SIGTERM costs at least a second (dovecot's master sleeps 1 s
// after telling its children to close their listeners), so the whole process
// group of this server - its master and the master's children, nothing
// else - gets SIGKILL instead. Nothing is lost: dovecot writes its UID list
// and indexes before a POP3 command is answered, and the server is thrown
// away anyway.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		select {
		case <-s.done:
			return
		default:
		}
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
		// The children are reparented to init; wait (bounded) until none of
		// them runs any more, so none holds a file when the directory is
		// removed.
		for i := 0; i < 100 && groupAlive(pgid); i++ {
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// PlainAddr is host:port of the plain POP3 listener, which offers STLS.
func (s *Server) PlainAddr() string { return s.plain }

// TLSAddr is host:port of the implicit-TLS (pop3s) listener.
func (s *Server) TLSAddr() string { return s.tls }

// LMTPAddr is host:port of the LMTP listener (WithLMTP), else "".
func (s *Server) LMTPAddr() string { return s.lmtp }

// LMTPSocket is the path of the LMTP unix socket (WithLMTP), else "".
func (s *Server) LMTPSocket() string {
	if s.lmtp == "" {
		return ""
	}
	return filepath.Join(s.dir, "run", "lmtp")
}

// CAFile is the PEM file of the private CA that signed the server certificate.
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ssl", "ca.pem") }

// CertFile is the PEM file of the server certificate (leaf only).
func (s *Server) CertFile() string { return filepath.Join(s.dir, "ssl", "server.pem") }

// CAPool is a pool holding only the private CA.
func (s *Server) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.certs.caPEM)
	return p
}

// ClientTLSConfig returns a client configuration that trusts only the
// private CA, for ServerName "localhost" (the certificate also has an IP SAN
// for 127.0.0.1).
func (s *Server) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// Fingerprint is "sha256:HEX" of the server certificate's DER, the form of
// the tls_fingerprint setting.
func (s *Server) Fingerprint() string {
	sum := sha256.Sum256(s.certs.leafDER)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Greeting is the greeting line the server sent at start-up (with the APOP
// timestamp when apop is enabled; each connection gets its own timestamp).
func (s *Server) Greeting() string { return s.greeting }

// Dir is the server's private directory (removed when the test ends).
func (s *Server) Dir() string { return s.dir }

// ConfFile is the path of the generated dovecot.conf.
func (s *Server) ConfFile() string { return s.conf }

// Log returns dovecot's log file plus anything the master printed on its
// standard error, for failure diagnostics.
func (s *Server) Log() string {
	var b strings.Builder
	if data, err := os.ReadFile(filepath.Join(s.dir, "dovecot.log")); err == nil {
		b.Write(data)
	}
	if e := s.stderr.String(); e != "" {
		b.WriteString("--- dovecot stderr ---\n")
		b.WriteString(e)
	}
	return b.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

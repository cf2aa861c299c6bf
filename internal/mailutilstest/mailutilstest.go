// Package mailutilstest starts a real, private GNU mailutils pop3d on
// loopback for Go tests, configured so that retrieval is a commitment:
// "expire 0; delete-expired yes", so every message retrieved by RETR or TOP
// in a session that ends with QUIT is removed, DELE or not (CAPA lists
// EXPIRE0). A client that QUITs after retrieving a message it could not
// deliver loses it here; one that hangs up instead loses nothing (RFC 1939
// §6: no UPDATE state).
//
//	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
//	uids := srv.Populate("alice", msgs)
//	// log in to srv.Addr() (plain POP3) as srv.Login("alice") ...
//
// Each Server has its own temporary directory holding pop3d.conf, a
// virtual-domain password file (users log in as NAME@localhost, see Login;
// USER/PASS only), their Maildirs, the lock directory and the pid file. No
// site configuration is read, no system service or file outside the
// directory is touched, and no other pop3d is affected. The server runs in
// the foreground in daemon mode, forking a process per session, in a
// process group of its own that Stop kills whole.
//
// The pop3d binary (Debian: mailutils-pop3d; scripts/test-deps.sh installs
// it) must be installed; without it Start fails the test. Set
// POP3D_BINARY to use another. openssl hashes the passwords (crypt(3)
// SHA-512, as the password file wants).
//
// Messages are stored in Maildirs with an X-UIDL header field that
// Populate adds at the end of each header: pop3d takes it as the message's
// UID (else it would add one itself, changing the files on first open),
// so the bytes stored are the bytes served, before and after any session.
// Messages returns them.
//
// It works as root (the users' mail then belongs to root) and as an
// ordinary user. Methods report errors with the TB given to Start, so call
// them from that test's goroutine; they are safe for concurrent use
// otherwise.
package mailutilstest

import (
	"bufio"
	"bytes"
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

// Domain is the virtual mail domain of every user: the login name of user
// NAME is NAME@Domain.
const Domain = "localhost"

const startTimeout = 10 * time.Second

// Option configures a Server.
type Option func(*options)

type options struct {
	users [][2]string
	extra []string
}

// WithUser creates a user with an empty Maildir before the server starts.
func WithUser(name, password string) Option {
	return func(o *options) { o.users = append(o.users, [2]string{name, password}) }
}

// WithConfig appends raw statements to pop3d.conf after the generated
// ones, e.g. "login-delay 60;". A statement given twice takes its last
// value.
func WithConfig(lines ...string) Option {
	return func(o *options) { o.extra = append(o.extra, lines...) }
}

// Server is a running private pop3d.
type Server struct {
	t    testing.TB
	dir  string
	addr string
	conf string
	uid  int
	gid  int

	cmd     *exec.Cmd
	done    chan struct{} // closed when the master process has exited
	waitErr error
	out     lockedBuffer
	stop    sync.Once

	mu    sync.Mutex
	users map[string]bool
	seq   int
	last  time.Time
}

var userRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9._-]*$`)

// Start starts a private pop3d and registers its shutdown with t.Cleanup.
// It fails the test (t.Fatal) if that is impossible.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	bin, err := findPop3d()
	if err != nil {
		t.Fatalf("mailutilstest: %v\n\tinstall it (Debian/Ubuntu: apt-get install mailutils-pop3d; "+
			"make test does it through scripts/test-deps.sh) or set POP3D_BINARY", err)
	}
	dir, err := os.MkdirTemp("", "mailutilstest-")
	if err != nil {
		t.Fatalf("mailutilstest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("mailutilstest: removing %s: %v", dir, err)
		}
	})
	s := &Server{t: t, dir: dir, uid: os.Getuid(), gid: os.Getgid(), users: map[string]bool{}}
	for _, d := range []string{"passwd", "home", "locks"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("mailutilstest: %v", err)
		}
	}
	for _, u := range o.users {
		s.addUser(u[0], u[1])
	}
	// Runs before the directory is removed (cleanups run last-in first-out).
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("mailutilstest: pop3d log (%s):\n%s", dir, s.Log())
		}
	})

	// A free port found by listening on :0 may be taken by someone else
	// before pop3d binds it; try again with a new port then.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("mailutilstest: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.conf = filepath.Join(dir, "pop3d.conf")
		conf := s.render(port, o.extra)
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatalf("mailutilstest: %v", err)
		}
		err = s.run(bin)
		if err == nil {
			return s
		}
		if attempt < 3 && strings.Contains(s.out.String(), "in use") {
			continue
		}
		t.Fatalf("mailutilstest: %v\n--- pop3d.conf ---\n%s--- pop3d log ---\n%s", err, conf, s.Log())
	}
}

// render returns pop3d.conf. Logging goes to standard error (captured,
// see Log), not to syslog; every path is inside the server's directory.
func (s *Server) render(port int, extra []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# mailutilstest: a private GNU mailutils pop3d
logging { syslog no; severity info; }
tcp-wrappers { enable no; }
auth { authorization virtdomain; authentication generic; }
virtdomain { passwd-dir %q; }
mandatory-locking { enable yes; lock-directory %q; }
# retrieval is a commitment: what RETR or TOP sent in a session that ends
# with QUIT is removed (CAPA: EXPIRE0)
expire 0;
delete-expired yes;
mode daemon;
foreground yes;
max-children 64;
timeout 600;
pidfile %q;
server 127.0.0.1:%d { }
`, filepath.Join(s.dir, "passwd"), filepath.Join(s.dir, "locks"), filepath.Join(s.dir, "pop3d.pid"), port)
	for _, l := range extra {
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

// findPop3d looks for the pop3d binary: $POP3D_BINARY, then /usr/sbin
// (Debian's mailutils-pop3d). PATH is not searched: other POP3 servers
// install a pop3d too.
func findPop3d() (string, error) {
	if p := os.Getenv("POP3D_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("POP3D_BINARY: %v", err)
		}
		return p, nil
	}
	const p = "/usr/sbin/pop3d"
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("GNU mailutils' pop3d was not found at %s", p)
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU Mailutils")) {
		return "", fmt.Errorf("%s is not GNU mailutils' pop3d (%v): %.80q", p, err, out)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run starts pop3d and waits until it answers with a greeting.
func (s *Server) run(bin string) error {
	s.out.Reset()
	s.stop = sync.Once{}
	cmd := exec.Command(bin, "--config-file="+s.conf)
	cmd.Dir = s.dir
	cmd.Stdout = &s.out
	cmd.Stderr = &s.out
	setProcAttr(cmd)
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the forking thread: keep
		// this goroutine on its thread until the child has exited.
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

	var lastErr error
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("pop3d exited during start-up: %v", s.waitErr)
		default:
		}
		g, err := greeting(s.addr)
		if err == nil {
			if !strings.HasPrefix(g, "+OK") {
				s.Stop()
				return fmt.Errorf("unexpected greeting %q", g)
			}
			return nil
		}
		lastErr = err
	}
	s.Stop()
	return fmt.Errorf("pop3d did not answer on %s within %v: %v", s.addr, startTimeout, lastErr)
}

func greeting(addr string) (string, error) {
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

// Stop stops the server at once: its whole process group (the master and
// the sessions it forked, nothing else) gets SIGKILL. pop3d writes a
// mailbox before it answers QUIT, so nothing a session committed is lost.
// It is idempotent and also run by t.Cleanup; tests call it to make the
// server unreachable.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
		// The sessions are reparented to init: wait (bounded) until none
		// runs, so none holds a file when the directory is removed.
		for i := 0; i < 500 && groupAlive(pgid); i++ {
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// Addr is host:port of the plain POP3 listener (no TLS).
func (s *Server) Addr() string { return s.addr }

// Login is the name user logs in with: user@Domain.
func (s *Server) Login(user string) string { return user + "@" + Domain }

// Dir is the server's private directory (removed when the test ends).
func (s *Server) Dir() string { return s.dir }

// ConfFile is the path of the generated pop3d.conf.
func (s *Server) ConfFile() string { return s.conf }

// Log returns what pop3d logged (one line per login and per session end,
// with the session's exit code), for failure diagnostics.
func (s *Server) Log() string { return s.out.String() }

// addUser creates user with an empty Maildir and adds it to the password
// file, whose line is NAME:CRYPT:UID:GID:GECOS:HOME:SHELL (passwd(5));
// pop3d reads the Maildir HOME/INBOX and runs the session as UID.
func (s *Server) addUser(name, password string) {
	s.t.Helper()
	if !userRE.MatchString(name) {
		s.t.Fatalf("mailutilstest: bad user name %q (use a-z, 0-9, . _ -, not starting with a dot)", name)
	}
	if strings.ContainsAny(password, "\n") {
		s.t.Fatalf("mailutilstest: a password cannot hold a newline")
	}
	hash, err := cryptSHA512(password)
	if err != nil {
		s.t.Fatalf("mailutilstest: %v", err)
	}
	home := filepath.Join(s.dir, "home", name)
	for _, d := range []string{home, filepath.Join(home, "INBOX"), filepath.Join(home, "INBOX", "cur"),
		filepath.Join(home, "INBOX", "new"), filepath.Join(home, "INBOX", "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			s.t.Fatalf("mailutilstest: %v", err)
		}
	}
	pw := filepath.Join(s.dir, "passwd", Domain)
	f, err := os.OpenFile(pw, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = fmt.Fprintf(f, "%s:%s:%d:%d:mailutilstest user:%s:/bin/false\n", name, hash, s.uid, s.gid, home)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		s.t.Fatalf("mailutilstest: %v", err)
	}
	s.mu.Lock()
	s.users[name] = true
	s.mu.Unlock()
}

// cryptSHA512 returns password hashed for crypt(3) ("$6$..."), by openssl.
func cryptSHA512(password string) (string, error) {
	cmd := exec.Command("openssl", "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hashing a password with openssl passwd -6: %v %s", err, stderr.Bytes())
	}
	h := strings.TrimSpace(string(out))
	if !strings.HasPrefix(h, "$6$") {
		return "", fmt.Errorf("openssl passwd -6 printed %q", h)
	}
	return h, nil
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

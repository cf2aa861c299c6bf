// Package couriertest starts a real, private Courier POP3 server
// (courierpop3login and courierpop3d under couriertcpd, as Debian's
// courier-pop runs them) on loopback for Go tests.
//
//	srv := couriertest.Start(t, couriertest.WithUser("alice", "secret"))
//	srv.Populate("alice", msgs)
//	// log in to srv.PlainAddr() (plain, STLS offered) or srv.TLSAddr()
//	// (implicit TLS, trusting srv.CAFile()) as alice ...
//
// Courier is configured as Debian ships it (MIME_UNICODE_MESSAGE_TYPE
// "message/global"): a message with 8-bit bytes in its header, UTF-8 or
// not, is sent wrapped in a MIME message of Courier's ("Cannot display
// Unicode content") to a session that did not send UTF8 (RFC 6856), and as
// stored to one that did. CAPA lists "UTF8 USER".
//
// # Authentication without a system service
//
// Courier's login process asks courier-authdaemon, over a socket whose
// path is compiled into libcourierauth (/run/courier/authdaemon/socket);
// authdaemond reads /etc/courier/authdaemonrc and authuserdb reads
// /etc/courier/userdb.dat, paths compiled in too. None of them can be
// moved by a setting. So each Server runs in a mount namespace of its own
// (unshare(1)) in which its private directory's etc/ is mounted on
// /etc/courier and its run/ on /run: its own authdaemond (authuserdb only,
// on a private userdb) listens on its own socket, and no configuration
// outside the directory is read, no file outside it written. Other Courier
// servers and the system's own /etc/courier and /run are not affected; the
// mounts vanish with the server's processes.
//
// # Files and processes
//
// The private directory holds etc/ (authdaemonrc, the userdb and its .dat
// files, made by makeuserdb), run/, ssl/ (a private CA and the server's
// certificate, for couriertls), the users' Maildirs (home/NAME/Maildir)
// and start.sh, the script run in the namespace. Two couriertcpd listen on
// free loopback ports: PlainAddr, which offers STLS, and TLSAddr, implicit
// TLS through couriertls. Stop kills every process of the namespace,
// which are the server's and no other; they also get SIGKILL if the test
// binary dies without running its cleanups. Everything they log
// (authdaemond, couriertls, each session's LOGIN and LOGOUT lines) goes
// to the file server.log: Log, and the test's log when it fails.
//
// # What must be installed
//
// courier-base (couriertcpd, couriertls), courier-authlib and
// courier-authlib-userdb (authdaemond, authuserdb, makeuserdb, userdbpw)
// and util-linux (unshare, setpriv); scripts/test-deps.sh installs them.
// courier-pop itself conflicts with every other Debian POP3 server
// (dovecot-pop3d, mailutils-pop3d: "Provides/Conflicts: pop3-server"),
// which the other tests need, so test-deps.sh unpacks its package into a
// cache directory instead of installing it (see CourierPop3Dir). Without
// these Start fails the test.
//
// It needs root, for the mount namespace and because Courier switches
// users (to the "courier" system user to start couriertls after STLS, to
// the mail user after login); every user maps to uid 0, so the Maildirs
// belong to root, and the private directory is searchable (mode 0711) for
// the "courier" user to reach the certificate. As an ordinary user Start skips the test: an
// unprivileged user namespace would do for the mounts, but it forbids
// the setgroups(2) of Courier's login.
//
// Methods report errors with the TB given to Start, so call them from that
// test's goroutine; they are safe for concurrent use otherwise.
package couriertest

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
	"os/user"
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

// CourierPop3DirEnv names the environment variable that overrides where
// courierpop3login and courierpop3d are looked for (see CourierPop3Dir).
const CourierPop3DirEnv = "COURIER_POP3_DIR"

const startTimeout = 15 * time.Second

// Programs of the installed packages (see the package doc).
const (
	couriertcpd  = "/usr/sbin/couriertcpd"
	couriertls   = "/usr/bin/couriertls"
	authdaemond  = "/usr/lib/courier/courier-authlib/authdaemond"
	authuserdb   = "/usr/lib/courier-authlib/libauthuserdb.so.0"
	makeuserdb   = "/usr/sbin/makeuserdb"
	userdbpwProg = "/usr/sbin/userdbpw"
	etcCourier   = "/etc/courier"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	users [][2]string
	sasl  []string
	env   []string
}

// WithUser creates a user with an empty Maildir before the server starts.
func WithUser(name, password string) Option {
	return func(o *options) { o.users = append(o.users, [2]string{name, password}) }
}

// WithSASL offers SASL mechanisms (POP3AUTH and POP3AUTH_TLS, e.g. "PLAIN",
// "LOGIN") besides USER/PASS. Without it only USER/PASS is offered, as in
// Debian's default configuration.
func WithSASL(mechs ...string) Option {
	return func(o *options) { o.sasl = append(o.sasl, mechs...) }
}

// WithEnv adds NAME=VALUE settings to the environment of the login and
// mail processes, after (so overriding) the defaults, e.g.
// "MIME_UNICODE_MESSAGE_TYPE=message/rfc822".
func WithEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

// Server is a running private Courier POP3 server.
type Server struct {
	t     testing.TB
	dir   string
	plain string
	tls   string
	certs *certs

	cmd     *exec.Cmd
	done    chan struct{} // closed when the namespace's first process has exited
	waitErr error
	ns      string // the mount namespace of every process of the server
	stop    sync.Once

	mu    sync.Mutex
	users map[string]bool
	seq   int
	last  time.Time
}

var userRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9._-]*$`)

// Start starts a private Courier POP3 server and registers its shutdown
// with t.Cleanup. It fails the test (t.Fatal) if that is impossible.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if os.Geteuid() != 0 {
		// A user namespace would give the mounts, but Courier's login
		// process calls setgroups(2), which an unprivileged user
		// namespace forbids: every login would fail.
		t.Skip("couriertest: a private Courier needs root (mount namespace; Courier switches users); CI runs as root")
	}
	libexec, err := findPrograms()
	if err != nil {
		t.Fatalf("couriertest: %v\n\trun scripts/test-deps.sh (make test does), which installs courier-base, "+
			"courier-authlib-userdb and util-linux and unpacks courier-pop", err)
	}
	dir, err := os.MkdirTemp("", "couriertest-")
	if err != nil {
		t.Fatalf("couriertest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("couriertest: removing %s: %v", dir, err)
		}
	})
	s := &Server{t: t, dir: dir, users: map[string]bool{}}
	if err := s.prepare(o.users); err != nil {
		t.Fatalf("couriertest: %v", err)
	}
	// Runs before the directory is removed (cleanups run last-in first-out).
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("couriertest: Courier's log (%s):\n%s", dir, s.Log())
		}
	})

	// A free port found by listening on :0 may be taken by someone else
	// before couriertcpd binds it; try again with new ports then.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatalf("couriertest: %v", err)
		}
		s.plain = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		script := s.script(libexec, ports[0], ports[1])
		if err := os.WriteFile(filepath.Join(dir, "start.sh"), []byte(script), 0o600); err != nil {
			t.Fatalf("couriertest: %v", err)
		}
		err = s.run(environment(dir, o))
		if err == nil {
			return s
		}
		if attempt < 3 && strings.Contains(s.Log(), "in use") {
			continue
		}
		t.Fatalf("couriertest: %v\n--- start.sh ---\n%s--- log ---\n%s", err, script, s.Log())
	}
}

// CourierPop3Dir returns the directory that holds courierpop3login and
// courierpop3d: $COURIER_POP3_DIR if set; else /usr/lib/courier/courier
// when courier-pop is installed; else where scripts/test-deps.sh unpacks
// the courier-pop package, usr/lib/courier/courier under
// $XDG_CACHE_HOME/popfetch-test/courier-pop (~/.cache when XDG_CACHE_HOME
// is not set).
func CourierPop3Dir() string {
	if d := os.Getenv(CourierPop3DirEnv); d != "" {
		return d
	}
	const installed = "/usr/lib/courier/courier"
	if _, err := os.Stat(filepath.Join(installed, "courierpop3login")); err == nil {
		return installed
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return installed
	}
	return filepath.Join(cache, "popfetch-test", "courier-pop", "usr", "lib", "courier", "courier")
}

// findPrograms checks that everything Start runs is there and returns the
// directory of courierpop3login and courierpop3d.
func findPrograms() (string, error) {
	libexec := CourierPop3Dir()
	var missing []string
	for _, p := range []string{
		filepath.Join(libexec, "courierpop3login"), filepath.Join(libexec, "courierpop3d"),
		couriertcpd, couriertls, authdaemond, authuserdb, makeuserdb, userdbpwProg, etcCourier,
	} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, p := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("not found: %s", strings.Join(missing, ", "))
	}
	return libexec, nil
}

// prepare makes the directory tree, the certificates, the users and their
// Maildirs, authdaemonrc and the userdb.
func (s *Server) prepare(users [][2]string) error {
	for _, d := range []string{"etc", "run", "run/courier", "run/courier/authdaemon", "ssl", "home"} {
		if err := os.Mkdir(filepath.Join(s.dir, d), 0o700); err != nil {
			return err
		}
	}
	c, err := newCerts()
	if err != nil {
		return err
	}
	s.certs = c
	// couriertls wants the key and the certificate in one file
	pem := filepath.Join(s.dir, "ssl", "server.pem")
	if err := errors.Join(
		os.WriteFile(s.CAFile(), c.caPEM, 0o600),
		os.WriteFile(pem, append(append([]byte{}, c.keyPEM...), c.certPEM...), 0o600),
		shareWithCourier(s.dir, pem),
	); err != nil {
		return err
	}
	// authdaemonrc is read by authdaemond as /etc/courier/authdaemonrc.
	rc := "# couriertest: a private authdaemond, userdb only\n" +
		"authmodulelist=\"authuserdb\"\n" +
		"daemons=2\n" +
		"authdaemonvar=/run/courier/authdaemon\n" +
		"DEBUG_LOGIN=0\n" +
		"DEFAULTOPTIONS=\"\"\n"
	if err := os.WriteFile(filepath.Join(s.dir, "etc", "authdaemonrc"), []byte(rc), 0o600); err != nil {
		return err
	}
	var userdb strings.Builder
	for _, u := range users {
		line, err := s.addUser(u[0], u[1])
		if err != nil {
			return err
		}
		userdb.WriteString(line)
	}
	db := filepath.Join(s.dir, "etc", "userdb")
	if err := os.WriteFile(db, []byte(userdb.String()), 0o600); err != nil {
		return err
	}
	// makeuserdb writes userdb.dat and userdbshadow.dat (the hashes) next
	// to it; authuserdb reads them as /etc/courier/userdb*.dat.
	if out, err := exec.Command(makeuserdb, "-f", db).CombinedOutput(); err != nil {
		return fmt.Errorf("makeuserdb: %v\n%s", err, out)
	}
	return nil
}

// shareWithCourier lets the system user "courier" read pem:
// courierpop3login starts couriertls for STLS as that user (its
// compiled-in MAILUSER), as Debian's /etc/courier/pop3d.pem, root:courier
// 0640, expects. The directories on the way become searchable (not
// readable) by others.
func shareWithCourier(dir, pem string) error {
	u, err := user.Lookup("courier")
	if err != nil {
		return fmt.Errorf("the system user courier, which Courier's login process becomes to start couriertls, "+
			"is missing (courier-authlib's installation creates it): %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return errors.Join(
		os.Chmod(dir, 0o711),
		os.Chmod(filepath.Dir(pem), 0o711),
		os.Chown(pem, uid, gid),
		os.Chmod(pem, 0o400),
	)
}

// addUser makes user's Maildir and returns their userdb line. Every user
// is uid 0: the tests run as root.
func (s *Server) addUser(name, password string) (string, error) {
	if !userRE.MatchString(name) {
		return "", fmt.Errorf("bad user name %q (use a-z, 0-9, . _ -, not starting with a dot)", name)
	}
	if strings.ContainsAny(password, "\r\n") {
		return "", fmt.Errorf("a password cannot hold a line break")
	}
	if s.users[name] {
		return "", fmt.Errorf("user %q given twice", name)
	}
	crypted, err := userdbpw("-md5", password)
	if err != nil {
		return "", err
	}
	hmac, err := userdbpw("-hmac-md5", password)
	if err != nil {
		return "", err
	}
	home := filepath.Join(s.dir, "home", name)
	md := filepath.Join(home, "Maildir")
	for _, d := range []string{home, md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", err
		}
	}
	s.users[name] = true
	// userdb(8): NAME<TAB>field=value|...
	return fmt.Sprintf("%s\tuid=0|gid=0|home=%s|mail=%s|systempw=%s|hmac-md5pw=%s\n", name, home, md, crypted, hmac), nil
}

// userdbpw hashes password with Courier's own tool, as userdbpw(8)
// tells an administrator to: flag "-md5" for systempw (crypt(3) MD5),
// "-hmac-md5" for hmac-md5pw (what CRAM-MD5 checks against).
func userdbpw(flag, password string) (string, error) {
	cmd := exec.Command(userdbpwProg, flag)
	cmd.Stdin = strings.NewReader(password + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	h := strings.TrimSpace(string(out))
	if err == nil && (h == "" || strings.ContainsAny(h, "|\t\n")) {
		err = fmt.Errorf("it printed %q", out)
	}
	if err != nil {
		return "", fmt.Errorf("userdbpw %s: %v %s", flag, err, stderr.Bytes())
	}
	return h, nil
}

// environment is the whole environment of the server's processes: nothing
// of the test's own. The settings are those of Debian's /etc/courier/pop3d
// and pop3d-ssl, with the paths of this server.
func environment(dir string, o options) []string {
	sasl := strings.Join(o.sasl, " ")
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"MIME_UNICODE_MESSAGE_TYPE=message/global",
		"POP3AUTH=" + sasl,
		"POP3AUTH_TLS=" + sasl,
		"POP3_PROXY=0",
		"POP3_STARTTLS=YES",
		"POP3_TLS_REQUIRED=0",
		"COURIERTLS=" + couriertls,
		"TLS_CERTFILE=" + filepath.Join(dir, "ssl", "server.pem"),
		"TLS_VERIFYPEER=NONE",
	}
	return append(env, o.env...)
}

// script is start.sh, run by sh in the new mount namespace: it mounts the
// private etc/ and run/, starts authdaemond and the implicit-TLS
// couriertcpd in the background (each killed when the script's process
// dies: setpriv --pdeathsig), and becomes the plain couriertcpd.
func (s *Server) script(libexec string, plainPort, tlsPort int) string {
	q := func(p string) string { return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'" }
	login := q(filepath.Join(libexec, "courierpop3login"))
	pop3d := q(filepath.Join(libexec, "courierpop3d"))
	tcpd := couriertcpd + " -address=127.0.0.1 -maxprocs=64 -maxperip=64 -nodnslookup -noidentlookup"
	return fmt.Sprintf(`# couriertest: run by unshare in a private mount namespace
set -e
# bind SRC DST: mount SRC on DST in this namespace only. Where / is not a
# mount point (a chroot), unshare keeps the propagation of the mounts it
# copied: a mount that would show in the system's namespace too is undone.
bind() {
	mount --bind "$1" "$2"
	if awk -v m="$2" '$5 == m && / shared:/ { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		umount "$2"
		echo "couriertest: $2 would be mounted outside this namespace too (/ is not a mount point, and the mount holding it is shared); make the chroot's root a mount point (mount --bind DIR DIR)" >&2
		exit 1
	fi
}
bind %s %s
bind %s /run
setpriv --pdeathsig KILL -- %s &
POP3_TLS=1 POP3_STARTTLS=NO setpriv --pdeathsig KILL -- %s %d %s -server -tcpd %s %s Maildir &
exec %s %d %s %s Maildir
`, q(filepath.Join(s.dir, "etc")), etcCourier, q(filepath.Join(s.dir, "run")), authdaemond,
		tcpd, tlsPort, couriertls, login, pop3d,
		tcpd, plainPort, login, pop3d)
}

// rootIsMount reports whether / is a mount point, as it is but in a
// chroot.
func rootIsMount() bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			return true
		}
	}
	return false
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// run starts the namespace and waits until authdaemond's socket is there
// and both listeners answer with a greeting.
func (s *Server) run(env []string) error {
	s.stop = sync.Once{}
	log, err := os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return err
	}
	defer log.Close() // the server has its own copy
	propagation := "private"
	if !rootIsMount() {
		// unshare cannot make the mounts of / private where / is not a
		// mount point (EINVAL: a chroot); start.sh's bind checks instead
		propagation = "unchanged"
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", propagation, "/bin/sh", filepath.Join(s.dir, "start.sh"))
	cmd.Dir = s.dir
	cmd.Env = env
	cmd.Stdout = log
	cmd.Stderr = log
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
		return fmt.Errorf("starting unshare: %v", err)
	}
	s.cmd, s.done = cmd, done

	sock := filepath.Join(s.dir, "run", "courier", "authdaemon", "socket")
	var lastErr error
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("the server exited during start-up: %v", s.waitErr)
		default:
		}
		if _, err := os.Stat(sock); err != nil {
			lastErr = fmt.Errorf("authdaemond has no socket yet: %v", err)
			continue
		}
		g, err := greeting(s.plain, nil)
		if err == nil {
			g, err = greeting(s.tls, s.ClientTLSConfig())
		}
		if err == nil && !strings.HasPrefix(g, "+OK") {
			s.Stop()
			return fmt.Errorf("unexpected greeting %q", g)
		}
		if err == nil {
			return s.findNamespace()
		}
		lastErr = err
	}
	s.Stop()
	return fmt.Errorf("the server did not answer on %s and %s within %v: %v", s.plain, s.tls, startTimeout, lastErr)
}

// findNamespace notes the server's mount namespace, by which Stop and
// Count find its processes.
func (s *Server) findNamespace() error {
	ns, err := mountNS(s.cmd.Process.Pid)
	if err == nil {
		var own string
		if own, err = mountNS(os.Getpid()); err == nil && own == ns {
			err = fmt.Errorf("it is this process's own (%s)", ns)
		}
	}
	if err != nil {
		s.Stop()
		return fmt.Errorf("the server's mount namespace: %v", err)
	}
	s.ns = ns
	return nil
}

// greeting connects to addr (over TLS if cfg is not nil), reads the
// greeting and says QUIT.
func greeting(addr string, cfg *tls.Config) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if cfg != nil {
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		c = tc
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return strings.TrimRight(line, "\r\n"), nil
}

// Stop stops the server at once: every process in its mount namespace
// (the listeners, authdaemond and the sessions, nothing else) gets
// SIGKILL. A session that has answered QUIT may not have removed its
// deleted messages yet (courierpop3d answers first): call Count first to
// be sure. It is idempotent and also run by t.Cleanup; tests call it to
// make the server unreachable.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		if s.ns == "" {
			return // stopped during start-up: the rest die with it (pdeathsig)
		}
		// Until none is left (bounded), so none holds a file when the
		// directory is removed: a session may fork as it is killed.
		for i := 0; i < 500; i++ {
			ps := procsIn(s.ns)
			if len(ps) == 0 {
				return
			}
			for _, p := range ps {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// PlainAddr is host:port of the plain POP3 listener, which offers STLS.
func (s *Server) PlainAddr() string { return s.plain }

// TLSAddr is host:port of the implicit-TLS (pop3s) listener.
func (s *Server) TLSAddr() string { return s.tls }

// CAFile is the PEM file of the private CA that signed the server's
// certificate (for DNS:localhost, IP:127.0.0.1, IP:::1).
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ssl", "ca.pem") }

// ClientTLSConfig trusts the private CA only.
func (s *Server) ClientTLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.certs.caPEM)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// Fingerprint is "sha256:HEX" of the server certificate (DER), as
// tls_fingerprint takes it.
func (s *Server) Fingerprint() string {
	sum := sha256.Sum256(s.certs.leafDER)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Dir is the server's private directory (removed when the test ends).
func (s *Server) Dir() string { return s.dir }

// Log returns what the server logged: authdaemond, couriertls, and a
// LOGIN and a LOGOUT line per session (with what it retrieved), for
// failure diagnostics.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

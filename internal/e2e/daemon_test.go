package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// daemonServer is a pop3test server and a configuration writer for it.
type daemonServer struct {
	srv  *pop3test.Server
	pin  string
	dir  string
	cfg  string
	host string
	port string
}

func newDaemonServer(t *testing.T) *daemonServer {
	t.Helper()
	d := &daemonServer{srv: pop3test.NewServer(), dir: t.TempDir()}
	if err := d.srv.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.srv.Close)
	sum := sha256.Sum256(d.srv.Certificate().Raw)
	d.pin = "sha256:" + hex.EncodeToString(sum[:])
	d.host, d.port, _ = strings.Cut(d.srv.Addr(), ":")
	d.cfg = filepath.Join(d.dir, "config.toml")
	return d
}

// write writes a configuration with an account per user.
func (d *daemonServer) write(t *testing.T, users ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[defaults]\nstate_dir = %q\ntimeout = \"10s\"\n", filepath.Join(d.dir, "state"))
	for _, u := range users {
		fmt.Fprintf(&b, "\n[[account]]\nname = %q\nhost = %q\nport = %s\ntls_fingerprint = %q\nuser = %q\npassword = \"secret\"\n[account.deliver]\nmaildir = %q\n",
			u, d.host, d.port, d.pin, u, filepath.Join(d.dir, u))
	}
	if err := os.WriteFile(d.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// daemon is a running popfetch daemon.
type daemon struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(popfetchBin, args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	return d
}

// stop sends sig and waits for the exit status.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		d.done <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not exit after %v\n%s", sig, d.stderr)
	}
	return -1
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countNew(dir string) int {
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	return len(ents)
}

// TestDaemonPollsAndReloads: the daemon fetches at once and again at each
// interval; SIGHUP picks up an added account, and a broken configuration
// is reported and the old one kept; SIGTERM ends it with exit 0.
func TestDaemonPollsAndReloads(t *testing.T) {
	d := newDaemonServer(t)
	alice := d.srv.AddUser("alice", "secret")
	bob := d.srv.AddUser("bob", "secret")
	for _, m := range mailgen.Traps(20, 1) {
		alice.Add(m)
		bob.Add(m)
	}
	d.write(t, "alice")
	dm := startDaemon(t, "-c", d.cfg, "daemon", "--interval", "1s")
	waitFor(t, "alice's first 20", func() bool { return countNew(filepath.Join(d.dir, "alice")) == 20 })

	late := mailgen.Traps(25, 1)[20:]
	for _, m := range late {
		alice.Add(m)
	}
	waitFor(t, "alice's next 5", func() bool { return countNew(filepath.Join(d.dir, "alice")) == 25 })

	os.WriteFile(d.cfg, []byte("[[account]]\nname = \"broken\"\nhots = 1\n"), 0o600)
	dm.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the broken configuration to be reported", func() bool {
		return strings.Contains(dm.stderr.String(), "keeping the old one")
	})
	alice.Add(mailgen.Traps(26, 1)[25])
	waitFor(t, "alice's mail with the old configuration", func() bool { return countNew(filepath.Join(d.dir, "alice")) == 26 })

	d.write(t, "alice", "bob")
	dm.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "bob's 20 after SIGHUP", func() bool { return countNew(filepath.Join(d.dir, "bob")) == 20 })

	if code := dm.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM, want 0\n%s", code, dm.stderr)
	}
	checkDelivered(t, maildirMessages(t, filepath.Join(d.dir, "alice")), mailgen.Traps(26, 1))
	checkDelivered(t, maildirMessages(t, filepath.Join(d.dir, "bob")), mailgen.Traps(20, 1))
	if alice.Len() != 0 || bob.Len() != 0 {
		t.Fatalf("server holds %d and %d", alice.Len(), bob.Len())
	}
}

// TestDaemonSignalsAtRandom: SIGTERM or SIGINT at random moments of a
// fetch ends the daemon with exit 0, with every message delivered whole or
// still on the server, never neither, never half. A message may be both
// (CONTRACT §5: a stop with RETRs in flight ends the session without QUIT):
// the next run then deletes it unseen, so it is delivered exactly once.
func TestDaemonSignalsAtRandom(t *testing.T) {
	const n = 300
	msgs := mailgen.Traps(n, 5)
	rng := rand.New(rand.NewPCG(5, 5))
	for round := 0; round < 8; round++ {
		d := newDaemonServer(t)
		mb := d.srv.AddUser("carol", "secret")
		for _, m := range msgs {
			mb.Add(m)
		}
		d.write(t, "carol")
		md := filepath.Join(d.dir, "carol")
		dm := startDaemon(t, "-c", d.cfg, "daemon", "--interval", "1h")
		// once it connects its signal handlers are in place
		waitFor(t, "the daemon to connect", func() bool { return d.srv.Sessions() > 0 })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		sig := syscall.SIGTERM
		if round%2 == 1 {
			sig = syscall.SIGINT
		}
		if code := dm.stop(t, sig); code != 0 {
			t.Fatalf("round %d: exit %d after %v, want 0\n%s", round, code, sig, dm.stderr)
		}
		delivered := maildirMessages(t, md)
		if tmp, _ := os.ReadDir(filepath.Join(md, "tmp")); len(tmp) != 0 {
			t.Fatalf("round %d: %d files left in tmp/", round, len(tmp))
		}
		onServer := map[string]bool{}
		for _, m := range mb.Messages() {
			onServer[mailgen.ID(m.Data)] = true
		}
		got := map[string]bool{}
		for _, m := range delivered {
			got[mailgen.ID(stripReceived(t, m))] = true
		}
		for _, m := range msgs {
			if id := mailgen.ID(m); !got[id] && !onServer[id] {
				t.Fatalf("round %d: message %s neither delivered nor on the server", round, id)
			}
		}
		t.Logf("round %d: %v after the daemon delivered %d of %d", round, sig, len(delivered), n)
		mustRun(t, 0, "-c", d.cfg)
		checkDelivered(t, maildirMessages(t, md), msgs)
	}
}

// TestDaemonLogAndPollNow: the daemon's lines start with the time, -v says
// when it starts, and SIGUSR1 polls at once however long the interval; with
// standard error the journal's ($JOURNAL_STREAM), the lines have no time of
// their own (issue 12, point 15).
func TestDaemonLogAndPollNow(t *testing.T) {
	d := newDaemonServer(t)
	mb := d.srv.AddUser("alice", "secret")
	msgs := mailgen.Traps(6, 3)
	for _, m := range msgs[:3] {
		mb.Add(m)
	}
	d.write(t, "alice")
	md := filepath.Join(d.dir, "alice")
	dm := startDaemon(t, "-c", d.cfg, "daemon", "-v", "--interval", "1h")
	waitFor(t, "the first poll", func() bool { return countNew(md) == 3 })
	for _, m := range msgs[3:] {
		mb.Add(m)
	}
	dm.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "the poll of SIGUSR1", func() bool { return countNew(md) == 6 })
	if code := dm.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d\n%s", code, dm.stderr)
	}
	out := dm.stderr.String()
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d popfetch: `)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !stamped.MatchString(l) {
			t.Errorf("a line without the time: %q", l)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("popfetch: daemon started (pid %d): alice, every 1h0m0s; SIGHUP re-reads %s, SIGUSR1 polls now\n", dm.cmd.Process.Pid, d.cfg),
		"popfetch: SIGUSR1: polling every account now\n",
		"popfetch: alice: 3 new, 3 fetched",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}

	// The journal's stream: systemd says which it is in JOURNAL_STREAM.
	journal, err := os.Create(filepath.Join(d.dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(journal.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(popfetchBin, "-c", d.cfg, "daemon", "-v", "--interval", "1h")
	cmd.Stderr = journal
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sessions := d.srv.Sessions()
	waitFor(t, "the journal daemon's first poll", func() bool { return d.srv.Sessions() > sessions })
	waitFor(t, "its summary", func() bool {
		b, _ := os.ReadFile(journal.Name())
		return strings.Contains(string(b), "popfetch: alice: 0 new")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon: %v", err)
	}
	b, _ := os.ReadFile(journal.Name())
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "popfetch: ") {
			t.Errorf("a line with the time, for the journal: %q", l)
		}
	}
}

// Package smtpsink runs Postfix's smtp-sink, a small SMTP and LMTP test
// server, as a plain program on a private loopback port (or socket) for Go
// tests, and reads back what it received.
//
//	sink := smtpsink.Start(t)                    // SMTP on 127.0.0.1:port
//	sink := smtpsink.Start(t, smtpsink.LMTP())   // LMTP on a unix socket
//	sink := smtpsink.Start(t, smtpsink.Args("-r", "."))  // 4xx after the data
//	// deliver to sink.Addr() ...
//	for _, m := range sink.Messages() { m.Data ... }
//
// Every transaction is dumped to a file of its own (smtp-sink -d), from
// which Messages returns the envelope and the message as received: dots
// unstuffed, CRLF as LF. smtp-sink is no mail system: nothing is queued or
// forwarded, no configuration is read, and it runs only while the test
// does. The binary comes with Debian's postfix package (/usr/sbin/smtp-sink);
// SMTP_SINK names another. It is started by the test, never found running.
package smtpsink

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Option configures a Sink.
type Option func(*options)

type options struct {
	lmtp bool
	args []string
}

// LMTP makes the sink an LMTP server (smtp-sink -L) on a unix socket.
func LMTP() Option { return func(o *options) { o.lmtp = true } }

// Args passes more options to smtp-sink, e.g. "-r", "." (answer the end
// of the data with 450), "-f", "RCPT" (answer RCPT with 500), "-q", "."
// (hang up after the data without an answer), "-8" (no 8BITMIME), "-t",
// "1" (close an idle connection after a second). See smtp-sink(1).
func Args(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// Sink is a running smtp-sink.
type Sink struct {
	t     testing.TB
	dir   string // dumps and the socket
	addr  string // host:port, or the socket path
	lmtp  bool
	cmd   *exec.Cmd
	done  chan struct{}
	out   bytes.Buffer
	mu    sync.Mutex
	stopO sync.Once
}

// Start starts smtp-sink and registers its end with t.Cleanup. It fails
// the test if smtp-sink is missing or does not start.
func Start(t testing.TB, opts ...Option) *Sink {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	bin := os.Getenv("SMTP_SINK")
	if bin == "" {
		bin = "/usr/sbin/smtp-sink"
		if p, err := exec.LookPath("smtp-sink"); err == nil {
			bin = p
		}
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("smtpsink: %v (Debian: apt-get install postfix; scripts/test-deps.sh does)", err)
	}
	// A short directory: a unix socket path has room for ~107 bytes.
	dir, err := os.MkdirTemp("/tmp", "smtpsink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Sink{t: t, dir: dir, lmtp: o.lmtp}
	if err := os.Mkdir(s.dumpDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	args := []string{}
	if os.Geteuid() == 0 {
		// smtp-sink refuses to run as root without -u; nobody must be
		// able to write the dumps and the socket
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("smtpsink: running as root needs the user nobody: %v", err)
		}
		args = append(args, "-u", u.Username)
		for _, d := range []string{dir, s.dumpDir()} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o.lmtp {
		args = append(args, "-L")
	}
	args = append(args, "-d", s.dumpDir()+"/%Y%m%d%H%M%S.")
	args = append(args, o.args...)
	t.Cleanup(s.Stop)
	for attempt := 1; ; attempt++ {
		var where string
		if o.lmtp {
			s.addr = filepath.Join(dir, "lmtp")
			where = "unix:" + s.addr
		} else {
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			where = "inet:" + s.addr
		}
		err := s.run(bin, append(args, where, "16"))
		if err == nil {
			return s
		}
		if attempt < 3 && strings.Contains(s.output(), "in use") {
			continue
		}
		t.Fatalf("smtpsink: %v\n%s", err, s.output())
	}
}

func (s *Sink) dumpDir() string { return filepath.Join(s.dir, "dump") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Sink) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

type lockedWriter struct{ s *Sink }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// run starts smtp-sink and waits until it answers.
func (s *Sink) run(bin string, args []string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lockedWriter{s}, lockedWriter{s}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.stopO = sync.Once{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("smtp-sink exited at start: %v", cmd.ProcessState)
		default:
		}
		network := "tcp"
		if s.lmtp {
			network = "unix"
		}
		if c, err := net.DialTimeout(network, s.addr, time.Second); err == nil {
			// a connection that says nothing counts as a session: hang up
			// at once, before the greeting
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("smtp-sink did not listen on %s within 10s", s.addr)
}

// Addr is where the sink listens: host:port, or for LMTP "unix:/path".
func (s *Sink) Addr() string {
	if s.lmtp {
		return "unix:" + s.addr
	}
	return s.addr
}

// Stop kills smtp-sink and waits for it. It is idempotent.
func (s *Sink) Stop() {
	s.stopO.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
}

// Message is one transaction as smtp-sink dumped it.
type Message struct {
	MailArgs string   // the MAIL FROM arguments, e.g. "<a@example.org> BODY=8BITMIME"
	Rcpts    []string // the RCPT TO arguments
	Data     []byte   // the message as received, LF line endings
	File     string
}

// Messages reads the dumps of the transactions completed so far (the
// end of the data received: smtp-sink dumps a transaction whatever it
// answered), in the order of their files' modification times.
func (s *Sink) Messages() []Message {
	s.t.Helper()
	ents, err := os.ReadDir(s.dumpDir())
	if err != nil {
		s.t.Fatal(err)
	}
	type file struct {
		path string
		mt   time.Time
	}
	var files []file
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			s.t.Fatal(err)
		}
		files = append(files, file{filepath.Join(s.dumpDir(), e.Name()), info.ModTime()})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].mt.Before(files[j].mt) })
	var out []Message
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			s.t.Fatal(err)
		}
		m, err := parseDump(b)
		if err != nil {
			s.t.Fatalf("smtpsink: %s: %v", f.path, err)
		}
		m.File = f.path
		out = append(out, m)
	}
	return out
}

// parseDump splits a dump: smtp-sink's X- lines, its three-line
// Received field, the message, and the empty line it adds at the end.
func parseDump(b []byte) (Message, error) {
	var m Message
	rest := b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return m, fmt.Errorf("no Received field")
		}
		line := string(rest[:i])
		rest = rest[i+1:]
		switch {
		case strings.HasPrefix(line, "X-Mail-Args: "):
			m.MailArgs = strings.TrimPrefix(line, "X-Mail-Args: ")
		case strings.HasPrefix(line, "X-Rcpt-Args: "):
			m.Rcpts = append(m.Rcpts, strings.TrimPrefix(line, "X-Rcpt-Args: "))
		case strings.HasPrefix(line, "Received: "):
			// and two continuation lines
			for k := 0; k < 2; k++ {
				j := bytes.IndexByte(rest, '\n')
				if j < 0 || (rest[0] != '\t' && rest[0] != ' ') {
					return m, fmt.Errorf("a short Received field")
				}
				rest = rest[j+1:]
			}
			if !bytes.HasSuffix(rest, []byte("\n")) {
				return m, fmt.Errorf("no final empty line")
			}
			m.Data = rest[:len(rest)-1]
			return m, nil
		}
	}
}

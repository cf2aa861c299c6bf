package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// term is a program running on a pseudo-terminal, as a person would run
// it: its standard input, output and error are the terminal, and its
// output is collected as it comes.
type term struct {
	t    *testing.T
	f    *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{} // closed when the output ends
	exit chan error
}

// termPatience bounds every wait for a terminal's output, so that a
// program that never prints what is expected fails the test instead of
// hanging it. It is not a measure of speed: the tests assert none.
const termPatience = 60 * time.Second

// startTerm starts name with args on a new 80x24 terminal, with env added
// to the test's environment.
func startTerm(t *testing.T, env []string, name string, args ...string) *term {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "TERM=xterm"), env...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatalf("starting %s on a terminal: %v", name, err)
	}
	s := &term{t: t, f: f, cmd: cmd, done: make(chan struct{}), exit: make(chan error, 1)}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { s.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return s
}

// output returns what the terminal showed so far.
func (s *term) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits until the output matches re, and returns the output.
func (s *term) expect(re string) string {
	s.t.Helper()
	pat := regexp.MustCompile(re)
	deadline := time.Now().Add(termPatience)
	for {
		out := s.output()
		if pat.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the terminal never showed %q; it shows:\n%s", re, out)
		}
		select {
		case <-s.done:
			if out := s.output(); !pat.MatchString(out) {
				s.t.Fatalf("the program ended without showing %q; it showed:\n%s", re, out)
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// send types text.
func (s *term) send(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.f, text); err != nil {
		s.t.Fatalf("typing %q: %v", text, err)
	}
}

// wait waits for the program to end and returns its exit code and all it
// showed.
func (s *term) wait() (int, string) {
	s.t.Helper()
	var err error
	select {
	case err = <-s.exit:
	case <-time.After(termPatience):
		s.t.Fatalf("the program did not end; it shows:\n%s", s.output())
	}
	// The output ends once the terminal has no writer left.
	select {
	case <-s.done:
	case <-time.After(time.Second):
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, s.output()
	case errors.As(err, &ee):
		return ee.ExitCode(), s.output()
	}
	s.t.Fatalf("waiting for the program: %v", err)
	return 0, ""
}

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/internal/testtool"
)

// popfetchBin is the binary under test, built by TestMain with buildTags.
var popfetchBin string

func TestMain(m *testing.M) {
	if os.Getenv(bigServerEnv) != "" {
		serveBigMessage()
	}
	if os.Getenv(keptServerEnv) != "" {
		serveKept()
	}
	dir, err := os.MkdirTemp("", "popfetch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	popfetchBin = filepath.Join(dir, "popfetch")
	build := exec.Command("go", "build", "-tags", buildTags, "-o", popfetchBin, "github.com/popfetch/popfetch")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building popfetch:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// popfetch runs the binary with args and returns its exit code and output.
func popfetch(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(popfetchBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running popfetch: %v", err)
	}
	return r
}

// mustRun runs popfetch and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := popfetch(t, nil, args...)
	if r.code != want {
		t.Fatalf("popfetch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// writeConfig writes a 0600 configuration file.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// maildirMessages returns the messages in a Maildir's new/ and cur/.
func maildirMessages(t *testing.T, dir string) [][]byte {
	t.Helper()
	var msgs [][]byte
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, b)
		}
	}
	return msgs
}

// stripReceived removes the Received: field popfetch prepends (the first
// field, with its continuation lines).
func stripReceived(t *testing.T, msg []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(msg, []byte("Received: from ")) {
		t.Fatalf("message does not start with popfetch's Received: %q", msg[:min(len(msg), 80)])
	}
	rest := msg
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			t.Fatal("message has only a Received field")
		}
		rest = rest[i+1:]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			return rest
		}
	}
}

// checkDelivered verifies that got holds each of want exactly once, byte
// for byte in canonical form, after popfetch's Received field is removed.
func checkDelivered(t *testing.T, got, want [][]byte) {
	t.Helper()
	wantByID := map[string][]byte{}
	for _, m := range want {
		wantByID[mailgen.ID(m)] = mailgen.Canonical(m)
	}
	seen := map[string]int{}
	for _, g := range got {
		g = stripReceived(t, g)
		id := mailgen.ID(g)
		seen[id]++
		w, ok := wantByID[id]
		if !ok {
			t.Errorf("delivered a message that was not sent: id %q", id)
			continue
		}
		if !bytes.Equal(g, w) {
			t.Errorf("message %s differs: got %d bytes, want %d; first difference at byte %d", id, len(g), len(w), firstDiff(g, w))
		}
	}
	var missing, dups []string
	for id := range wantByID {
		switch seen[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dups = append(dups, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(dups)
	if len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("%d messages missing %v, %d delivered more than once %v", len(missing), head(missing), len(dups), head(dups))
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// cutBeforeQuit is a TCP proxy that forwards a plaintext POP3 session and
// drops both connections when the client sends QUIT, so the server never
// commits the deletions and the client never gets an answer.
// Once pass is set, it forwards everything: the same address (and so the
// same mailbox identity, CONTRACT §2) reaches the server whole.
type cutBeforeQuit struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	pass   atomic.Bool
}

func startCutBeforeQuit(t *testing.T, target string) *cutBeforeQuit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutBeforeQuit{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutBeforeQuit) Addr() string { return p.ln.Addr().String() }

func (p *cutBeforeQuit) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { // server to client
			defer p.wg.Done()
			io.Copy(c, s)
			c.Close()
		}()
		go func() { // client to server, until QUIT
			defer p.wg.Done()
			defer s.Close()
			defer c.Close()
			buf := make([]byte, 32<<10)
			var tail []byte
			for {
				n, err := c.Read(buf)
				if n > 0 {
					chunk := buf[:n]
					tail = append(tail[max(0, len(tail)-8):], chunk...)
					if i := bytes.Index(tail, []byte("QUIT\r\n")); i >= 0 && !p.pass.Load() {
						// forward what came before QUIT, then cut
						if j := bytes.Index(chunk, []byte("QUIT")); j > 0 {
							s.Write(chunk[:j])
						}
						return
					}
					if _, err := s.Write(chunk); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// needTool is testtool.Need: the program, or a failed test under make
// test, a skipped one elsewhere.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Need(t, name)
}

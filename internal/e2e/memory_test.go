package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// bigServerEnv makes the test binary serve one big message instead of
// running tests (see serveBigMessage): the server must live in a process
// of its own, because a child's peak RSS counts the memory of the process
// that started it, and a test holding 400 MB of message would drown the
// figure being measured.
const bigServerEnv = "POPFETCH_E2E_BIG_MESSAGE"

// writeBigMessage writes a message of about size bytes whose body has
// long lines, dot-led lines and From lines.
func writeBigMessage(w io.Writer, size int) {
	var block bytes.Buffer
	block.WriteString(strings.Repeat("x", 5000) + "\n")
	block.WriteString(".dot-led line\n..\n.\nFrom a line\n")
	for block.Len() < 64<<10 {
		block.WriteString("body text of a large attachment, base64-like ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n")
	}
	head := "Subject: big\nX-Mailgen-Id: big\n\n"
	io.WriteString(w, head)
	for n := len(head); n < size; n += block.Len() {
		w.Write(block.Bytes())
	}
}

// serveBigMessage runs in the helper process: it serves a message of the
// size in $POPFETCH_E2E_BIG_MESSAGE, prints "ADDR PIN", and serves until
// its stdin is closed.
func serveBigMessage() {
	size, _ := strconv.Atoi(os.Getenv(bigServerEnv))
	var msg bytes.Buffer
	writeBigMessage(&msg, size)
	srv := pop3test.NewServer()
	srv.AddUser("big", "secret").Add(msg.Bytes())
	if err := srv.StartTLS(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(srv.Certificate().Raw)
	fmt.Println(srv.Addr(), hex.EncodeToString(sum[:]))
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// fetchPeakRSS fetches one message of the given size with the real binary
// from a server in another process and returns popfetch's peak RSS in
// KiB, after checking the delivered message byte for byte.
func fetchPeakRSS(t *testing.T, size int) int64 {
	t.Helper()
	host, port, pin := startHelper(t, fmt.Sprintf("%s=%d", bigServerEnv, size))
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`[[account]]
name = "big"
host = %q
port = %s
tls_fingerprint = "sha256:%s"
user = "big"
password = "secret"
state_dir = %q
[account.deliver]
maildir = %q
`, host, port, pin, filepath.Join(dir, "state"), filepath.Join(dir, "md")))
	cmd := exec.Command(popfetchBin, "-c", cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("popfetch: %v\n%s", err, out)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "md", "new"))
	if len(ents) != 1 {
		t.Fatalf("%d messages delivered", len(ents))
	}
	got := hashDelivered(t, filepath.Join(dir, "md", "new", ents[0].Name()))
	want := sha256.New()
	writeBigMessage(want, size)
	if !bytes.Equal(got, want.Sum(nil)) {
		t.Fatalf("the %d-byte message was not delivered byte for byte", size)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

// hashDelivered returns the SHA-256 of a delivered file without
// popfetch's Received field, reading it as a stream.
func hashDelivered(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	first := true
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal("message ends in its Received field")
		}
		if first && !strings.HasPrefix(line, "Received: ") {
			t.Fatalf("first line %q is not popfetch's Received field", line)
		}
		first = false
		if b, _ := br.Peek(1); len(b) == 1 && b[0] != ' ' && b[0] != '\t' {
			break
		}
	}
	h := sha256.New()
	io.Copy(h, br)
	return h.Sum(nil)
}

// TestMemoryFlatWithMessageSize: popfetch's peak memory does not grow
// with the size of the message (CONTRACT §7): a 200 MiB message costs no
// more than a 2 MiB one, give or take a few MiB of runtime noise.
func TestMemoryFlatWithMessageSize(t *testing.T) {
	small := fetchPeakRSS(t, 2<<20)
	big := fetchPeakRSS(t, 200<<20)
	t.Logf("peak RSS: %d KiB for 2 MiB, %d KiB for 200 MiB", small, big)
	if big > small+8<<10 {
		t.Fatalf("peak RSS grew from %d KiB to %d KiB with the message size", small, big)
	}
}

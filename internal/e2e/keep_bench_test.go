package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// keptServerEnv makes the test binary serve a mailbox of kept messages
// instead of running tests (see serveKept): the server lives in a process
// of its own, so that what is measured of popfetch is popfetch's alone.
const keptServerEnv = "POPFETCH_E2E_KEPT"

// serveKept runs in the helper process. $POPFETCH_E2E_KEPT is "N DIR": it
// serves N small messages to user "kept" over implicit TLS, writes into
// the state directory DIR the UID cache of a run that retrieved them all
// in keep mode, prints "ADDR PIN", and serves until its stdin is closed.
func serveKept() {
	var n int
	var dir string
	fmt.Sscan(os.Getenv(keptServerEnv), &n, &dir)
	srv := pop3test.NewServer()
	mb := srv.AddUser("kept", "secret")
	body := []byte("Subject: kept\n\nx\n")
	for i := 0; i < n; i++ {
		mb.Add(body)
	}
	if err := srv.StartTLS(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	_, port, _ := net.SplitHostPort(srv.Addr())
	c, err := uidcache.Open(dir, "kept@127.0.0.1:"+port)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	seen := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for _, m := range mb.Messages() {
		c.Put(m.UID, uidcache.Entry{Seen: seen, State: uidcache.Retrieved})
	}
	if err := c.Save(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(srv.Certificate().Raw)
	fmt.Println(srv.Addr(), hex.EncodeToString(sum[:]))
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// startHelper starts this test binary again as a server, with env (one
// of keptServerEnv and bigServerEnv) set, and returns the address and
// certificate pin it prints. The helper ends with the test.
func startHelper(tb testing.TB, env string) (host, port, pin string) {
	tb.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	helper.Env = append(os.Environ(), env)
	stdin, _ := helper.StdinPipe()
	stdout, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		helper.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 {
		tb.Fatalf("helper server: %q %v", line, err)
	}
	host, port, _ = strings.Cut(f[0], ":")
	return host, port, f[1]
}

// releaseBin is popfetch built as `make build` builds it (static, without
// symbols): memory figures depend on how the binary is built.
var releaseBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "popfetch-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "popfetch")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/popfetch/popfetch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building popfetch: %v\n%s", err, out)
	}
	return bin, nil
})

// measure runs a command from a small Python process, as the rig's
// measure.py does, and returns its wall time, CPU time and peak RSS. A
// child's peak RSS counts the memory of the process that started it
// (Linux keeps the larger, across exec), so the command cannot be
// started from this test binary, which is larger than popfetch.
const measure = `
import json, os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, st, ru = os.wait4(pid, 0)
print(json.dumps({"wall": time.monotonic() - t0, "cpu": ru.ru_utime + ru.ru_stime,
                  "maxrss_kb": ru.ru_maxrss, "rc": os.waitstatus_to_exitcode(st)}))
`

// benchKeepBinary is a cron tick of a kept mailbox of n messages with
// nothing new, run by the real binary: it lists them all, finds each in
// its cache, and ends the session with QUIT, writing nothing.
func benchKeepBinary(b *testing.B, n int) {
	bin, err := releaseBin()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	state := filepath.Join(dir, "state")
	host, port, pin := startHelper(b, fmt.Sprintf("%s=%d %s", keptServerEnv, n, state))
	cfg := filepath.Join(dir, "config.toml")
	err = os.WriteFile(cfg, []byte(fmt.Sprintf(`[[account]]
name = "kept"
host = %q
port = %s
tls_fingerprint = "sha256:%s"
user = "kept"
password = "secret"
keep = true
state_dir = %q
[account.deliver]
maildir = %q
`, host, port, pin, state, filepath.Join(dir, "md"))), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	var wall, cpu time.Duration
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command("python3", "-c", measure, bin, "-c", cfg, "-q", "fetch").Output()
		var m struct {
			Wall, CPU float64
			MaxRSS    int64 `json:"maxrss_kb"`
			RC        int
		}
		if err != nil || json.Unmarshal(out, &m) != nil || m.RC != 0 {
			b.Fatalf("popfetch: %v %s", err, out)
		}
		wall += time.Duration(m.Wall * float64(time.Second))
		cpu += time.Duration(m.CPU * float64(time.Second))
		peak = max(peak, m.MaxRSS)
	}
	b.StopTimer()
	if _, err := os.Stat(filepath.Join(dir, "md")); err == nil {
		b.Fatal("a run with nothing new made the Maildir")
	}
	// ns/op is popfetch's own wall time, without the launcher's
	b.ReportMetric(float64(wall.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
}

// BenchmarkKeepBinary50k: the rig's scenario k (nothing new among 50 000
// kept) in process-level figures: CONTRACT §7 wants at most 16 MiB.
func BenchmarkKeepBinary50k(b *testing.B) { benchKeepBinary(b, 50_000) }

// BenchmarkKeepBinary500k: ten times as many; time and memory should be
// about ten times those of BenchmarkKeepBinary50k less the fixed costs
// (the process, TLS).
func BenchmarkKeepBinary500k(b *testing.B) { benchKeepBinary(b, 500_000) }

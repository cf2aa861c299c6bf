package e2e

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// silentServer accepts connections, counts them, and never says a word.
type silentServer struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
	done     chan struct{}
}

func startSilentServer(t *testing.T) *silentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// TestAccountLock: while one popfetch fetches an account (here it waits
// for a server that never greets it), a second run of the same account
// exits 75 at once, without connecting. Once the first is killed, its
// lock is gone with it and the next run fetches.
func TestAccountLock(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("locky", "secret"))
	msgs := mailgen.Traps(5, 51)
	srv.Populate("locky", msgs)
	silent := startSilentServer(t)
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	// Both servers are 127.0.0.1: one account (locky@127.0.0.1), one lock.
	stalled := writeAccount(t, srv, dir, acctSpec{user: "locky", addr: silent.ln.Addr().String(), tls: "none", timeout: "120s", deliver: maildirTo(md)})

	first := exec.Command(popfetchBin, "-c", stalled, "fetch")
	var stderr bytes.Buffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = first.Wait(); close(exited) }()
	t.Cleanup(func() {
		first.Process.Kill()
		<-exited
	})
	// It holds the lock before it connects.
	for deadline := time.Now().Add(30 * time.Second); silent.accepted.Load() == 0; time.Sleep(5 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("the first run ended: %v\n%s", waitErr, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run never connected")
		}
	}

	r := popfetch(t, nil, "-c", stalled, "fetch")
	if r.code != 75 {
		t.Fatalf("second run: exit %d, want 75\n%s", r.code, r.stderr)
	}
	if n := silent.accepted.Load(); n != 1 {
		t.Errorf("the server saw %d connections; the second run connected", n)
	}
	select {
	case <-exited:
		t.Fatalf("the first run ended before the second returned (%v): the second waited for the lock", waitErr)
	default:
	}

	first.Process.Signal(syscall.SIGKILL)
	<-exited
	direct := writeAccount(t, srv, dir, acctSpec{user: "locky", deliver: maildirTo(md)})
	mustRun(t, 0, "-c", direct, "fetch")
	checkDelivered(t, maildirMessages(t, md), msgs)
}

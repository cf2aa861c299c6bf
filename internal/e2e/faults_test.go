package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/cmd"
	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

// Hostile and broken servers (issue 7). Each test breaks the server in one
// way and checks, for a fetch run in process through cmd.Main (so that
// goroutines and file descriptors can be counted): the exit code and what
// stderr says; what is left on the server; that what was delivered is
// byte-exact, each message at most once, with nothing partial in new/ or
// tmp/; that a rerun with the fault removed leaves every message delivered
// exactly once; and that nothing leaked. The defined behaviours are listed
// in docs/troubleshooting.md.

// faultEnv is a pop3test server with user alice and an account for her
// delivering to a Maildir. Faults are installed by the test and guarded by
// on, which the rerun turns off.
type faultEnv struct {
	t       *testing.T
	srv     *pop3test.Server
	mb      *pop3test.Mailbox
	want    [][]byte // the messages on the server at the start
	dir     string
	cfg     string
	maildir string
	state   string
	on      atomic.Bool
	off     []func() // more to do to remove the fault
}

// faultOpts shape a faultEnv.
type faultOpts struct {
	n       int      // trap messages
	uids    []string // if set, the UIDs of the n messages
	keep    bool
	timeout string // default "10s"
	extra   string // more TOML lines for the account
}

func newFaultEnv(t *testing.T, o faultOpts) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, srv: pop3test.NewServer(), dir: t.TempDir()}
	e.on.Store(true)
	e.mb = e.srv.AddUser("alice", "secret")
	e.want = mailgen.Traps(o.n, 7)
	for i, m := range e.want {
		if o.uids != nil {
			e.mb.AddWithUID(o.uids[i], m)
		} else {
			e.mb.Add(m)
		}
	}
	e.maildir = filepath.Join(e.dir, "Maildir")
	e.state = filepath.Join(e.dir, "state")
	if o.timeout == "" {
		o.timeout = "10s"
	}
	e.cfg = filepath.Join(e.dir, "config.toml")
	body := fmt.Sprintf(`[defaults]
state_dir = %q
timeout = %q

[[account]]
name = "alice"
host = "127.0.0.1"
port = @PORT@
tls_fingerprint = "sha256:%s"
user = "alice"
password = "secret"
keep = %v
%s
[account.deliver]
maildir = %q
`, e.state, o.timeout, e.fingerprint(), o.keep, o.extra, e.maildir)
	if err := os.WriteFile(e.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *faultEnv) fingerprint() string {
	sum := sha256.Sum256(e.srv.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// start starts the server, after the test has set its faults.
func (e *faultEnv) start() {
	e.t.Helper()
	if err := e.srv.StartTLS(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.srv.Close)
	_, port, _ := net.SplitHostPort(e.srv.Addr())
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.cfg, bytes.Replace(b, []byte("@PORT@"), []byte(port), 1), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// fetch runs "popfetch -c CONFIG [GLOBAL...] fetch" in process.
func (e *faultEnv) fetch(global ...string) result {
	var out, errb bytes.Buffer
	argv := append(append([]string{"popfetch", "-c", e.cfg}, global...), "fetch")
	code := cmd.Main(context.Background(), argv, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// idle waits until the server has seen every session end: a client that
// dropped the connection leaves the maildrop locked until then.
func (e *faultEnv) idle() {
	e.t.Helper()
	for end := time.Now().Add(30 * time.Second); e.srv.Active() > 0; {
		if time.Now().After(end) {
			e.t.Fatal("the server's sessions did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeFault turns the fault off.
func (e *faultEnv) removeFault() {
	e.on.Store(false)
	for _, f := range e.off {
		f()
	}
}

// checkExit fails unless r exited with code and stderr holds each of want.
func checkExit(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}

// delivered checks the Maildir: nothing in tmp/, every message in new/
// and cur/ one of want, byte-exact, and at most once unless dups. It
// returns how many times each was delivered, by X-Mailgen-Id.
func (e *faultEnv) delivered(dups bool) map[string]int {
	e.t.Helper()
	t := e.t
	if ents, err := os.ReadDir(filepath.Join(e.maildir, "tmp")); err == nil && len(ents) > 0 {
		t.Fatalf("%d files left in tmp/: a partial message", len(ents))
	}
	wantByID := map[string][]byte{}
	for _, m := range e.want {
		wantByID[mailgen.ID(m)] = mailgen.Canonical(m)
	}
	seen := map[string]int{}
	for _, g := range maildirMessages(t, e.maildir) {
		g = stripReceived(t, g)
		id := mailgen.ID(g)
		w, ok := wantByID[id]
		switch {
		case !ok:
			t.Fatalf("delivered a message that was not sent: id %q, %d bytes", id, len(g))
		case !bytes.Equal(g, w):
			t.Fatalf("message %s damaged: %d bytes, want %d; first difference at byte %d", id, len(g), len(w), firstDiff(g, w))
		}
		if seen[id]++; seen[id] > 1 && !dups {
			t.Fatalf("message %s delivered twice", id)
		}
	}
	return seen
}

// idOf returns the X-Mailgen-Id of message i.
func (e *faultEnv) idOf(i int) string { return mailgen.ID(e.want[i]) }

// rerun removes the fault, fetches again and checks that it succeeds and
// that every message is then delivered exactly once (or at least once,
// with dups) and, in delete mode, gone from the server.
func (e *faultEnv) rerun(keep, dups bool) {
	e.t.Helper()
	e.idle() // and so ordered after the server's last look at a fault
	e.removeFault()
	r := e.fetch()
	checkExit(e.t, r, 0)
	got := e.delivered(dups)
	for i := range e.want {
		if n := got[e.idOf(i)]; n == 0 || (n > 1 && !dups) {
			e.t.Fatalf("after the rerun, message %d delivered %d times", i, n)
		}
	}
	if left := e.mb.Len(); keep && left != len(e.want) || !keep && left != 0 {
		e.t.Fatalf("after the rerun, %d messages on the server", left)
	}
}

// retrs counts the RETR commands the server has received, in all sessions.
func (e *faultEnv) retrs() int {
	n := 0
	for _, l := range e.srv.Received() {
		if strings.HasPrefix(l, "RETR ") {
			n++
		}
	}
	return n
}

var warmOnce sync.Once

// noLeaks returns a function that checks, after the server is closed,
// that the goroutines and file descriptors of the process are back to
// what they were (waiting a while for them to wind down). Lazily started
// runtime parts (network poller, signal loop) are warmed up first.
func noLeaks(t *testing.T) func() {
	t.Helper()
	warmOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR2)
		signal.Stop(c)
		e := newFaultEnv(t, faultOpts{n: 1})
		e.start()
		if r := e.fetch(); r.code != 0 {
			t.Fatalf("warm-up fetch: exit %d: %s", r.code, r.stderr)
		}
		e.srv.Close()
	})
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), fdCount(t)
	return func() {
		t.Helper()
		var g, fd int
		for end := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			g, fd = runtime.NumGoroutine(), fdCount(t)
			if g <= g0 && fd <= fd0 {
				return
			}
			if time.Now().After(end) {
				break
			}
		}
		var dump bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("leak: %d goroutines (was %d), %d file descriptors (was %d)\n%s", g, g0, fd, fd0, dump.String())
	}
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// faultTest runs body with a leak check around it; the server is closed
// before the check.
func faultTest(t *testing.T, o faultOpts, setup func(e *faultEnv), body func(e *faultEnv)) {
	t.Helper()
	leaks := noLeaks(t)
	e := newFaultEnv(t, o)
	if setup != nil {
		setup(e)
	}
	e.start()
	body(e)
	e.srv.Close()
	leaks()
}

// interruptRETR breaks off the answer to RETR n as in says, while the
// fault is on.
func (e *faultEnv) interruptRETR(n int, in pop3test.Interrupt) {
	e.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
		if e.on.Load() && cmd == "RETR" && args[0] == fmt.Sprint(n) {
			return &in
		}
		return nil
	}
}

// TestFaultCutMidRETR: the connection drops in the middle of message 3.
// Exit 69; nothing is deleted (no QUIT); message 3 leaves no trace. What
// came whole before it is delivered and remembered, unless popfetch was
// still sending (a DELE, a RETR) when the server hung up: the failed
// write then ends the session first, and the rest is fetched next time.
// The rerun deletes what was delivered without retrieving it again.
func TestFaultCutMidRETR(t *testing.T) {
	faultTest(t, faultOpts{n: 6}, func(e *faultEnv) {
		e.interruptRETR(3, pop3test.Interrupt{After: 300, Drop: true})
	}, func(e *faultEnv) {
		r := e.fetch()
		checkExit(t, r, 69, "retrieving message")
		cut := strings.Contains(r.stderr, "message 3") && strings.Contains(r.stderr, "cut short")
		broke := strings.Contains(r.stderr, "broken pipe") || strings.Contains(r.stderr, "connection reset")
		if !cut && !broke {
			t.Errorf("stderr says neither that message 3 was cut short nor that the connection broke:\n%s", r.stderr)
		}
		if e.mb.Len() != 6 {
			t.Fatalf("%d on the server, want 6", e.mb.Len())
		}
		got := e.delivered(false)
		if len(got) > 2 || got[e.idOf(2)] != 0 {
			t.Fatalf("delivered %v, want at most messages 1 and 2", got)
		}
		before := e.retrs()
		e.rerun(false, false)
		if n := e.retrs() - before; n != 6-len(got) {
			t.Fatalf("the rerun retrieved %d messages, want %d: the delivered are deleted unseen", n, 6-len(got))
		}
	})
}

// TestFaultQuitUnanswered: the connection drops after the DELEs, before
// QUIT is answered, and the server commits nothing. Exit 69; everything
// is delivered; the rerun deletes it all without retrieving anything.
func TestFaultQuitUnanswered(t *testing.T) {
	faultTest(t, faultOpts{n: 5}, func(e *faultEnv) {
		e.srv.Faults.DropQuit = true
		e.off = append(e.off, func() { e.srv.Faults.DropQuit = false })
	}, func(e *faultEnv) {
		checkExit(t, e.fetch(), 69, "before the server confirmed QUIT")
		if e.mb.Len() != 5 || len(e.delivered(false)) != 5 {
			t.Fatal("want all delivered and all still on the server")
		}
		before := e.retrs()
		e.rerun(false, false)
		if e.retrs() != before {
			t.Fatal("the rerun retrieved messages again")
		}
	})
}

// TestFaultQuitAnswerLost: the server commits the deletions, and the
// connection drops before the answer to QUIT. Exit 69; the rerun finds
// the messages gone and forgets them.
func TestFaultQuitAnswerLost(t *testing.T) {
	faultTest(t, faultOpts{n: 5}, func(e *faultEnv) {
		e.srv.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
			if e.on.Load() && cmd == "QUIT" {
				return &pop3test.Interrupt{Drop: true}
			}
			return nil
		}
	}, func(e *faultEnv) {
		checkExit(t, e.fetch(), 69, "before the server confirmed QUIT")
		if e.mb.Len() != 0 || len(e.delivered(false)) != 5 {
			t.Fatal("want all delivered and deleted")
		}
		e.rerun(false, false)
		c, err := uidcache.Open(e.state, "alice@"+e.srv.Addr())
		if err != nil || c.Len() != 0 {
			t.Fatalf("cache after the rerun: %v, %v", c.UIDs(), err)
		}
	})
}

// TestFaultDeleRefused: the server refuses one DELE. Exit 0 with a
// warning: the message stays on the server, remembered as delivered, and
// the next run deletes it without retrieving it again.
func TestFaultDeleRefused(t *testing.T) {
	faultTest(t, faultOpts{n: 4}, func(e *faultEnv) {
		e.srv.Faults.Respond = func(cmd string, args []string) (string, bool) {
			if e.on.Load() && cmd == "DELE" && args[0] == "2" {
				return "-ERR [SYS/PERM] message is read-only", true
			}
			return "", false
		}
	}, func(e *faultEnv) {
		checkExit(t, e.fetch(), 0, "refused to delete a message")
		if e.mb.Len() != 1 || len(e.delivered(false)) != 4 {
			t.Fatalf("%d on the server, want 1; all delivered", e.mb.Len())
		}
		before := e.retrs()
		e.rerun(false, false)
		if e.retrs() != before {
			t.Fatal("the rerun retrieved the message again")
		}
	})
}

// TestFaultListSizes: LIST sizes smaller and larger than the messages are
// delivered as received (CONTRACT §5); a message running far past its
// LIST size, or without end, is given up with exit 76, nothing deleted.
func TestFaultListSizes(t *testing.T) {
	t.Run("wrong", func(t *testing.T) {
		faultTest(t, faultOpts{n: 10}, func(e *faultEnv) {
			e.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
				switch {
				case !e.on.Load():
					return m.Size()
				case m.Size()%2 == 0:
					return m.Size() / 3
				}
				return m.Size()*5 + 1000
			}
		}, func(e *faultEnv) {
			checkExit(t, e.fetch("-v"), 0, "differs from the server's LIST size")
			if e.mb.Len() != 0 || len(e.delivered(false)) != 10 {
				t.Fatal("want all delivered and deleted")
			}
			e.rerun(false, false)
		})
	})
	t.Run("far too small", func(t *testing.T) {
		faultTest(t, faultOpts{n: 3}, func(e *faultEnv) {
			big := append(mailgen.Traps(4, 7)[3][:0:0], mailgen.Traps(4, 7)[3]...)
			big = append(big, bytes.Repeat([]byte("0123456789abcdef0123456789abcdef\n"), (17<<20)/33)...)
			e.want = append(e.want, big)
			e.mb.Add(big)
			e.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
				if e.on.Load() && m.Size() > 16<<20 {
					return 1000
				}
				return m.Size()
			}
		}, func(e *faultEnv) {
			checkExit(t, e.fetch(), 76, "runs past", "message 4")
			if e.mb.Len() != 4 || len(e.delivered(false)) != 3 {
				t.Fatal("want messages 1-3 delivered, nothing deleted")
			}
			e.rerun(false, false)
		})
	})
	t.Run("endless", func(t *testing.T) {
		faultTest(t, faultOpts{n: 3}, func(e *faultEnv) {
			e.interruptRETR(2, pop3test.Interrupt{After: 500, Flood: []byte("and on and on and on\r\n")})
		}, func(e *faultEnv) {
			checkExit(t, e.fetch(), 76, "runs past", "message 2")
			if e.mb.Len() != 3 || len(e.delivered(false)) != 1 {
				t.Fatal("want message 1 delivered, nothing deleted")
			}
			e.rerun(false, false)
		})
	})
}

// TestFaultSharedUIDs: two messages under one UID. Both are delivered the
// first time, with a warning; in keep mode neither again. After a session
// whose QUIT was not answered, neither is deleted unseen: both are
// delivered again (duplicates, never a loss), the others are not.
func TestFaultSharedUIDs(t *testing.T) {
	uids := []string{"u1", "dup", "u3", "dup", "u5"}
	t.Run("keep", func(t *testing.T) {
		faultTest(t, faultOpts{n: 5, uids: uids, keep: true}, nil, func(e *faultEnv) {
			checkExit(t, e.fetch(), 0, "same UID to several messages")
			if len(e.delivered(false)) != 5 {
				t.Fatal("want all five delivered")
			}
			e.rerun(true, false)
		})
	})
	t.Run("quit lost", func(t *testing.T) {
		faultTest(t, faultOpts{n: 5, uids: uids}, func(e *faultEnv) {
			e.srv.Faults.DropQuit = true
			e.off = append(e.off, func() { e.srv.Faults.DropQuit = false })
		}, func(e *faultEnv) {
			checkExit(t, e.fetch(), 69, "same UID to several messages")
			if len(e.delivered(false)) != 5 || e.mb.Len() != 5 {
				t.Fatal("want all delivered, none deleted")
			}
			e.rerun(false, true)
			got := e.delivered(true)
			for i, want := range []int{1, 2, 1, 2, 1} {
				if got[e.idOf(i)] != want {
					t.Fatalf("message %d delivered %d times, want %d", i+1, got[e.idOf(i)], want)
				}
			}
		})
	})
}

// TestFaultHostileUIDs: UIDs outside RFC 1939's 0x21-0x7E and 70 octets
// are kept as opaque keys: every message is delivered once, remembered,
// and not retrieved again; the cache stays readable.
func TestFaultHostileUIDs(t *testing.T) {
	uids := []string{
		"has space", "tab\there", "caf\xc3\xa9", "\xff\xfe", "nul\x00byte", "cr\rin", strings.Repeat("L", 71),
		strings.Repeat("x", 512), // 513 and more: a protocol error (pop3/bounds_test.go)
		"#comment", "%41", "A", "../../etc/passwd", "-ERR", "+OK", ".", "..", "%",
	}
	faultTest(t, faultOpts{n: len(uids), uids: uids, keep: true}, nil, func(e *faultEnv) {
		checkExit(t, e.fetch(), 0)
		if len(e.delivered(false)) != len(uids) {
			t.Fatal("not all delivered")
		}
		before := e.retrs()
		e.rerun(true, false)
		if e.retrs() != before {
			t.Fatal("the second run retrieved messages again")
		}
		c, err := uidcache.Open(e.state, "alice@"+e.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range uids {
			if _, ok := c.Get(u); !ok {
				t.Errorf("UID %q not remembered", u)
			}
		}
	})
}

// TestFaultBadUIDs: a UIDL line without a UID, or one of a megabyte,
// cannot name a message: exit 76 before anything is retrieved.
func TestFaultBadUIDs(t *testing.T) {
	for _, bad := range []string{"", strings.Repeat("M", 1<<20)} {
		t.Run(fmt.Sprint(len(bad)), func(t *testing.T) {
			faultTest(t, faultOpts{n: 3, uids: []string{"a", bad, "c"}}, func(e *faultEnv) {
				e.off = append(e.off, func() { e.mb.Messages()[1].UID = "b" })
			}, func(e *faultEnv) {
				checkExit(t, e.fetch(), 76, "protocol error")
				if e.mb.Len() != 3 || len(e.delivered(false)) != 0 || e.retrs() != 0 {
					t.Fatal("something was retrieved or deleted")
				}
				e.rerun(false, false)
			})
		})
	}
}

// TestFaultNoUIDL: a server without UIDL. Keep mode is refused with exit
// 69, the server untouched; delete mode retrieves and deletes everything.
func TestFaultNoUIDL(t *testing.T) {
	t.Run("keep", func(t *testing.T) {
		faultTest(t, faultOpts{n: 3, keep: true}, func(e *faultEnv) {
			e.srv.Faults.HideCaps = []string{"UIDL"}
			e.off = append(e.off, func() { e.srv.Faults.HideCaps = nil })
		}, func(e *faultEnv) {
			checkExit(t, e.fetch(), 69, "does not support UIDL", "keep = false")
			if e.mb.Len() != 3 || e.retrs() != 0 {
				t.Fatal("touched the server")
			}
			e.rerun(true, false)
		})
	})
	t.Run("delete", func(t *testing.T) {
		faultTest(t, faultOpts{n: 3}, func(e *faultEnv) {
			e.srv.Faults.HideCaps = []string{"UIDL"}
		}, func(e *faultEnv) {
			checkExit(t, e.fetch(), 0)
			if e.mb.Len() != 0 || len(e.delivered(false)) != 3 {
				t.Fatal("want all delivered and deleted")
			}
			e.rerun(false, false)
		})
	})
}

// TestFaultLongLines: a greeting or a status line of a megabyte is a
// protocol error (76), read with bounded memory.
func TestFaultLongLines(t *testing.T) {
	long := "+OK " + strings.Repeat("x", 1<<20)
	for _, where := range []string{"greeting", "LIST"} {
		t.Run(where, func(t *testing.T) {
			faultTest(t, faultOpts{n: 2}, func(e *faultEnv) {
				if where == "greeting" {
					e.srv.Faults.Greeting = long
					e.off = append(e.off, func() { e.srv.Faults.Greeting = "" })
					return
				}
				e.srv.Faults.Respond = func(cmd string, _ []string) (string, bool) {
					return long, e.on.Load() && cmd == where
				}
			}, func(e *faultEnv) {
				checkExit(t, e.fetch(), 76, "longer than")
				if e.mb.Len() != 2 || e.retrs() != 0 {
					t.Fatal("touched the server")
				}
				e.rerun(false, false)
			})
		})
	}
}

// TestFaultEndless: a listing or a status line that never ends is cut off
// (a million lines, 8 KiB) as a protocol error, nothing deleted.
func TestFaultEndless(t *testing.T) {
	for _, tc := range []struct {
		cmd   string
		after int
		flood string
	}{
		{"UIDL", len("+OK listing follows\r\n"), "1 same-again\r\n"},
		{"LIST", len("+OK listing follows\r\n"), "1 100\r\n"},
		{"CAPA", len("+OK capabilities follow\r\n"), "X"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			faultTest(t, faultOpts{n: 2}, func(e *faultEnv) {
				e.srv.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
					if e.on.Load() && cmd == tc.cmd {
						return &pop3test.Interrupt{After: tc.after, Flood: []byte(tc.flood)}
					}
					return nil
				}
			}, func(e *faultEnv) {
				checkExit(t, e.fetch(), 76, "protocol error")
				if e.mb.Len() != 2 || e.retrs() != 0 {
					t.Fatal("touched the server")
				}
				e.rerun(false, false)
			})
		})
	}
}

// TestFaultStall: a server that stops sending, before a status line or in
// the middle of a message, is given up after the timeout: exit 69, and
// stderr says so. Nothing is deleted.
func TestFaultStall(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		arg  string
		in   pop3test.Interrupt
	}{
		// The server sends the rest after 3s, to a client long gone; the
		// session then ends, and the rerun can lock the maildrop.
		{"before UIDL status", "UIDL", "", pop3test.Interrupt{Stall: 3 * time.Second}},
		{"mid RETR", "RETR", "2", pop3test.Interrupt{After: 400, Stall: 3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faultTest(t, faultOpts{n: 3, timeout: "1s"}, func(e *faultEnv) {
				e.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
					if e.on.Load() && cmd == tc.cmd && (tc.arg == "" || args[0] == tc.arg) {
						return &tc.in
					}
					return nil
				}
			}, func(e *faultEnv) {
				start := time.Now()
				r := e.fetch()
				took := time.Since(start)
				checkExit(t, r, 69, "stalled for 1s", "timeout")
				if took > 10*time.Second {
					t.Fatalf("gave up after %v, with a timeout of 1s", took)
				}
				if e.mb.Len() != 3 {
					t.Fatal("something was deleted")
				}
				e.delivered(false)
				e.rerun(false, false)
			})
		})
	}
}

// TestFaultStallBinary: the real binary, timeout = "2s", a server that
// stops in the middle of a message: it ends, with exit 69 and a timeout
// message, within a generous bound.
func TestFaultStallBinary(t *testing.T) {
	faultTest(t, faultOpts{n: 3, timeout: "2s"}, func(e *faultEnv) {
		e.interruptRETR(2, pop3test.Interrupt{After: 400, Stall: time.Hour})
	}, func(e *faultEnv) {
		start := time.Now()
		r := popfetch(t, nil, "-c", e.cfg, "fetch")
		took := time.Since(start)
		checkExit(t, r, 69, "stalled for 2s", "i/o timeout")
		if took > 20*time.Second {
			t.Fatalf("gave up after %v, with a timeout of 2s", took)
		}
		if e.mb.Len() != 3 {
			t.Fatal("something was deleted")
		}
		if got := e.delivered(false); len(got) != 1 {
			t.Fatalf("delivered %v, want message 1", got)
		}
	})
}

// TestFaultGarbage: something else than +OK or -ERR: exit 76, nothing
// deleted.
func TestFaultGarbage(t *testing.T) {
	for _, where := range []string{"greeting", "AUTH", "UIDL", "RETR", "DELE"} {
		t.Run(where, func(t *testing.T) {
			faultTest(t, faultOpts{n: 3}, func(e *faultEnv) {
				if where == "greeting" {
					e.srv.Faults.Greeting = "* OK IMAP4rev1 ready"
					e.off = append(e.off, func() { e.srv.Faults.Greeting = "" })
					return
				}
				e.srv.Faults.Respond = func(cmd string, args []string) (string, bool) {
					return "OK whatever\x00\xff", e.on.Load() && cmd == where && (where != "RETR" || args[0] == "2")
				}
			}, func(e *faultEnv) {
				checkExit(t, e.fetch(), 76, "protocol error", "expected +OK or -ERR")
				left := e.mb.Len()
				if where == "DELE" {
					// QUIT follows the DELEs without waiting for their
					// answers, so the garbage is read after QUIT went
					// out: the server may have deleted the other two,
					// all delivered. DELE names messages by number; no
					// answer can make it delete another.
					if len(e.delivered(false)) != 3 || (left != 1 && left != 3) {
						t.Fatalf("%d on the server", left)
					}
				} else if left != 3 {
					t.Fatalf("%d on the server, want 3", left)
				}
				e.delivered(false)
				e.rerun(false, false)
			})
		})
	}
}

// TestFaultUnsolicited: responses to commands never sent put every later
// answer against the wrong command. Exit 76, nothing misfiled, and
// nothing deleted when the desync shows before the last message is read.
func TestFaultUnsolicited(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmd     string // after the answer to this command ("" greeting)
		arg     string
		lines   []string
		deleted bool // the desync shows only after QUIT went out
	}{
		{"after greeting", "", "", []string{"+OK"}, false},
		{"after CAPA", "CAPA", "", []string{"+OK"}, false},
		{"after AUTH", "AUTH", "", []string{"+OK"}, false},
		{"after UIDL", "UIDL", "", []string{"+OK", "+OK"}, false},
		{"before RETR", "RETR", "2", []string{"+OK 99 octets"}, false},
		{"-ERR before RETR", "RETR", "2", []string{"-ERR"}, false},
		{"after last DELE", "DELE", "5", []string{"+OK"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faultTest(t, faultOpts{n: 5}, func(e *faultEnv) {
				e.srv.Faults.Unsolicited = func(cmd string, args []string) []string {
					if e.on.Load() && cmd == tc.cmd && (tc.arg == "" || args[0] == tc.arg) {
						return tc.lines
					}
					return nil
				}
			}, func(e *faultEnv) {
				r := e.fetch()
				got := e.delivered(false)
				if tc.deleted {
					// QUIT follows the DELEs without waiting for their
					// answers, so the server has deleted what was
					// delivered, as asked. The extra answer is seen if it
					// has arrived by the time QUIT's is read (76, and the
					// rerun forgets the deleted); else it goes unnoticed
					// (0), harmless: DELE names messages by number.
					if r.code != 0 {
						checkExit(t, r, 76, "protocol error")
					}
					if len(got) != 5 || e.mb.Len() != 0 {
						t.Fatalf("delivered %d, %d on the server", len(got), e.mb.Len())
					}
				} else if checkExit(t, r, 76, "protocol error"); e.mb.Len() != 5 {
					t.Fatalf("%d on the server, want 5: nothing may be deleted after a desync", e.mb.Len())
				}
				e.rerun(false, false)
			})
		})
	}
}

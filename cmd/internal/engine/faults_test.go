package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// Engine behaviours for broken servers (issue 7). The whole fault suite,
// with exit codes and leak checks, is internal/e2e/faults_test.go; these
// pin the engine's own decisions.

// tmpEmpty fails the test if the Maildir's tmp/ holds anything: a message
// cut short must leave nothing behind.
func (f *fixture) tmpEmpty(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.acct.Deliver.Maildir, "tmp"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		t.Fatalf("%d files left in tmp/", len(ents))
	}
}

// deliveredCount returns how many times each test message was delivered,
// by its subject, failing on anything else.
func (f *fixture) deliveredCount(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, m := range f.delivered(t) {
		body := stripReceived(t, m)
		i := strings.Index(body, "Subject: ")
		if i < 0 {
			t.Fatalf("delivered message without subject: %q", body)
		}
		subject := body[i+len("Subject: "):]
		subject = subject[:strings.IndexByte(subject, '\n')]
		n[subject]++
	}
	return n
}

func isProtocolError(err error) bool {
	var pe *pop3.ProtocolError
	return errors.As(err, &pe)
}

// TestOverrunGivesUp: a message that runs far beyond its LIST size, or
// never ends, is given up as a protocol error; what came before it is
// delivered and recorded, nothing is deleted, tmp/ is empty.
func TestOverrunGivesUp(t *testing.T) {
	for _, tc := range []string{"too long", "endless"} {
		t.Run(tc, func(t *testing.T) {
			f := newFixture(t, 3)
			var on atomic.Bool
			on.Store(true)
			big := append([]byte("Subject: big\n\n"), bytes.Repeat([]byte("0123456789abcdef\n"), (overrunSlack+300)/17+1)...)
			if tc == "too long" {
				f.mb.Add(big) // message 4: listed at 100 octets
				f.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
					if on.Load() && bytes.HasPrefix(m.Data, []byte("Subject: big")) {
						return 100
					}
					return m.Size()
				}
			} else {
				f.mb.Add([]byte("Subject: endless\n\nbody\n"))
				f.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
					if on.Load() && cmd == "RETR" && args[0] == "4" {
						return &pop3test.Interrupt{After: 40, Flood: []byte("flood flood flood flood\r\n")}
					}
					return nil
				}
			}
			f.mb.Add(testMessage(4))
			_, err := f.run(t, Options{})
			if !isProtocolError(err) || !strings.Contains(err.Error(), "runs past") {
				t.Fatalf("got %v, want a protocol error about the size", err)
			}
			if f.mb.Len() != 5 {
				t.Fatalf("%d messages on the server, want 5: nothing may be deleted", f.mb.Len())
			}
			f.tmpEmpty(t)
			if got := f.deliveredCount(t); len(got) != 3 {
				t.Fatalf("delivered %v, want the three messages before", got)
			}
			on.Store(false)
			if tc == "endless" {
				// the message now ends; it is small
				if _, err := f.run(t, Options{}); err != nil {
					t.Fatalf("rerun: %v\n%s", err, f.logs)
				}
			} else if _, err := f.run(t, Options{}); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			got := f.deliveredCount(t)
			if len(got) != 5 || f.mb.Len() != 0 {
				t.Fatalf("after the rerun: delivered %v, %d on the server", got, f.mb.Len())
			}
			for s, n := range got {
				if n != 1 {
					t.Errorf("%q delivered %d times", s, n)
				}
			}
		})
	}
}

// TestOverrunWithinBound: LIST sizes that are wrong, smaller or larger,
// but within the bound, are delivered as received and said at -v.
func TestOverrunWithinBound(t *testing.T) {
	f := newFixture(t, 4)
	f.srv.Faults.ListSize = func(m *pop3test.Message) int64 {
		if bytes.Contains(m.Data, []byte("message 1\n")) {
			return 1
		}
		return m.Size() * 3
	}
	res, err := f.run(t, Options{})
	if err != nil || res.Fetched != 4 || f.mb.Len() != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(f.logs.String(), "differs from the server's LIST size") {
		t.Fatalf("no note of the size mismatch:\n%s", f.logs)
	}
}

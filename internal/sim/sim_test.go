package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// toy is a tiny client for the checker's own tests: it retrieves every
// message, writes it to a Maildir, deletes it and QUITs, and does exactly
// one thing wrong, as its fault says. A checker that lets a toy's fault
// through is broken.
type toy struct {
	fault string // "" (none), "skip", "corrupt", "cut", "twice", "quit-after", "nothing", "goroutine", "dele-in-keep"
	hold  chan struct{}
}

func (t *toy) Fetch(ctx context.Context, spec Spec) Outcome {
	if t.fault == "nothing" {
		return Outcome{}
	}
	if t.fault == "goroutine" {
		go func() { <-t.hold }()
	}
	c, err := pop3.Dial(ctx, net.JoinHostPort(spec.Host, strconv.Itoa(spec.Port)), &pop3.Options{Timeout: spec.Timeout})
	if err != nil {
		return Outcome{Err: err}
	}
	defer c.Close()
	if err := c.User(spec.User).Wait(); err != nil {
		return Outcome{Err: err}
	}
	if err := c.Pass(spec.Password).Wait(); err != nil {
		return Outcome{Err: err}
	}
	msgs, err := c.List().Wait()
	if err != nil {
		return Outcome{Err: err}
	}
	fsys := spec.FS
	fsys.Mkdir(spec.Path, 0o700)
	for _, d := range []string{"tmp", "new", "cur"} {
		fsys.Mkdir(filepath.Join(spec.Path, d), 0o700)
	}
	for i, m := range msgs {
		r, err := c.Retr(m.Number).Body()
		if err != nil {
			return Outcome{Err: err}
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return Outcome{Err: err}
		}
		if spec.Config.ReceivedHeader {
			data = append([]byte("Received: from toy\n\tby toy; now\n"), data...)
		}
		copies := 1
		switch {
		case t.fault == "skip" && i == 0, t.fault == "quit-after" && i > 0:
			copies = 0
		case t.fault == "corrupt" && i == 0:
			data[len(data)-2] ^= 0x20
		case t.fault == "cut" && i == 0:
			data = data[:len(data)/2]
		case t.fault == "twice" && i == 0:
			copies = 2
		}
		for k := 0; k < copies; k++ {
			name := filepath.Join(spec.Path, "new", fmt.Sprintf("toy.%d.%d.%d", time.Now().UnixNano(), i, k))
			if err := writeDurably(fsys, name, data); err != nil {
				return Outcome{Err: err}
			}
		}
		if !spec.Config.Keep || t.fault == "dele-in-keep" {
			if err := c.Dele(m.Number).Wait(); err != nil {
				return Outcome{Err: err}
			}
		}
	}
	return Outcome{Err: c.Quit()}
}

// writeDurably writes a new file and makes it and its directory durable.
func writeDurably(fsys vfs.FS, name string, data []byte) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// quittingChecker is a toy whose check sends TOP for every message, then
// QUIT, which on an EXPIRE 0 server removes them.
type quittingChecker struct{ toy }

func (q *quittingChecker) Check(ctx context.Context, spec Spec) Outcome {
	c, err := pop3.Dial(ctx, net.JoinHostPort(spec.Host, strconv.Itoa(spec.Port)), &pop3.Options{Timeout: spec.Timeout})
	if err != nil {
		return Outcome{Err: err}
	}
	defer c.Close()
	c.User(spec.User)
	if err := c.Pass(spec.Password).Wait(); err != nil {
		return Outcome{Err: err}
	}
	msgs, err := c.List().Wait()
	if err != nil {
		return Outcome{Err: err}
	}
	for _, m := range msgs {
		r, err := c.Top(m.Number, 0).Body()
		if err != nil {
			return Outcome{Err: err}
		}
		io.Copy(io.Discard, r)
	}
	return Outcome{Err: c.Quit()}
}

// TestCheckerCatchesCheckQuit: a check that QUITs after TOP on an EXPIRE
// 0 server is caught at the QUIT, and its removals too.
func TestCheckerCatchesCheckQuit(t *testing.T) {
	ep := plain(19, 4)
	ep.Policy.Retention = pop3test.ExpireRetrieved
	ep.Runs[0].Check = true
	k := kinds(runToy(t, ep, &quittingChecker{}))
	if k[QuitAfter] != 4 || k[CheckChanged] != 1 || k[Lost] != 4 {
		t.Fatalf("violations %v", k)
	}
}

// plain is an episode of n messages in a Maildir on an RFC 1939 server,
// with one run and no fault.
func plain(seed uint64, n int) Episode {
	return Episode{Seed: seed, Messages: n, Timeout: time.Second,
		Config: Config{Target: Maildir, ReceivedHeader: true},
		Policy: Policy{Poison: -1, StatusLine: -1}, Runs: []RunFaults{{Session: 1}}}
}

func runToy(t *testing.T, ep Episode, f Fetcher) *Report {
	t.Helper()
	rep, err := Run(context.Background(), ep, f, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// kinds returns how many violations of each kind a report has.
func kinds(rep *Report) map[Kind]int {
	out := map[Kind]int{}
	for _, v := range rep.Violations {
		out[v.Kind]++
	}
	return out
}

// TestToyClean: a client that does its job breaks no invariant.
func TestToyClean(t *testing.T) {
	if rep := runToy(t, plain(7, 12), &toy{}); rep.Failed() || rep.Delivered != 12 {
		t.Fatal(rep)
	}
}

// TestCheckerCatches: each toy's one fault is reported, as the kind it
// is.
func TestCheckerCatches(t *testing.T) {
	for _, tc := range []struct {
		fault string
		keep  bool
		want  Kind
	}{
		{"skip", false, Lost},
		{"corrupt", false, NotSent},
		{"cut", false, CutOff},
		{"twice", false, Duplicate},
		{"nothing", false, Stranded},
		{"nothing", true, Stranded},
		{"", true, Duplicate}, // keep mode, and the toy remembers nothing
		{"dele-in-keep", true, KeepDeleted},
	} {
		ep := plain(11, 12)
		ep.Config.Keep = tc.keep
		rep := runToy(t, ep, &toy{fault: tc.fault})
		if kinds(rep)[tc.want] == 0 {
			t.Errorf("%s: no %s violation:\n%s", tc.fault, tc.want, rep)
		}
	}
}

// TestCheckerCatchesQuitAfter: a client that QUITs after retrieving what
// it did not deliver is caught at the QUIT, and on an EXPIRE 0 server the
// messages are lost.
func TestCheckerCatchesQuitAfter(t *testing.T) {
	for _, ret := range []pop3test.Retention{pop3test.RetainRetrieved, pop3test.ExpireRetrieved, pop3test.HideRetrieved} {
		ep := plain(13, 5)
		ep.Config.Keep = true
		ep.Policy.Retention = ret
		rep := runToy(t, ep, &toy{fault: "quit-after"})
		k := kinds(rep)
		if k[QuitAfter] < 4 {
			t.Errorf("retention %d: %d quit-after-retrieval, want 4 or more:\n%s", ret, k[QuitAfter], rep)
		}
		if lost := ret != pop3test.RetainRetrieved; (k[Lost] == 4) != lost {
			t.Errorf("retention %d: %d lost:\n%s", ret, k[Lost], rep)
		}
	}
}

// TestCheckerCatchesLeak: a goroutine the client leaves running is
// reported.
func TestCheckerCatchesLeak(t *testing.T) {
	defer func(d time.Duration) { leakWait = d }(leakWait)
	leakWait = 100 * time.Millisecond
	f := &toy{fault: "goroutine", hold: make(chan struct{})}
	defer close(f.hold)
	if rep := runToy(t, plain(17, 2), f); kinds(rep)[Leak] == 0 {
		t.Fatalf("no leak found:\n%s", rep)
	}
}

// TestGenerate: a seed decides the whole episode.
func TestGenerate(t *testing.T) {
	kinds := map[string]bool{}
	for seed := uint64(1); seed < 300; seed++ {
		a, b := Generate(seed), Generate(seed)
		if a.String() != b.String() {
			t.Fatalf("seed %d gives two episodes:\n%s\n%s", seed, a, b)
		}
		kinds[a.Config.Target.String()] = true
		for _, r := range a.Runs {
			if r.Net != nil {
				kinds["net"] = true
			}
			if r.StopAt != "" {
				kinds["stop"] = true
			}
			if r.MTA != nil && r.MTA.CutAt > 0 {
				kinds["mta cut"] = true
			}
		}
	}
	if len(kinds) != 8 {
		t.Fatalf("300 seeds drew only %v", kinds)
	}
}

// TestSplitMboxrd: messages and their quoting come back as written; a
// file cut in the middle of a message says so.
func TestSplitMboxrd(t *testing.T) {
	file := "From a@b Mon Jan  6 08:00:00 2025\nSubject: 1\n\n>From here\n>>From there\n\n" +
		"From c@d Mon Jan  6 08:00:01 2025\nSubject: 2\n\n>>From x\n\n" +
		"From e@f Mon Jan  6 08:00:02 2025\n\n"
	got, err := splitMboxrd("m", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Subject: 1\n\nFrom here\n>From there\n", "Subject: 2\n\n>From x\n", ""}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i].Data) != want[i] {
			t.Errorf("message %d: %q, want %q", i, got[i].Data, want[i])
		}
	}
	cut := file[:strings.Index(file, ">>From x")+4]
	if got, err := splitMboxrd("m", []byte(cut)); err != errTornMbox || len(got) != 2 {
		t.Fatalf("cut file: %d messages, %v", len(got), err)
	}
}

// TestStripReceived removes exactly one folded field.
func TestStripReceived(t *testing.T) {
	got, ok := stripReceived([]byte("Received: from a\n\tby b\n for c\nReceived: x\nSubject: s\n\nbody\n"))
	if !ok || !bytes.Equal(got, []byte("Received: x\nSubject: s\n\nbody\n")) {
		t.Fatalf("%q %v", got, ok)
	}
	if _, ok := stripReceived([]byte("Subject: s\n\n")); ok {
		t.Fatal("stripped a field that is not Received")
	}
}

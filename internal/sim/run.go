package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// runTimeout bounds one run of the client; a client still running then
// is told to stop by its context.
const runTimeout = 60 * time.Second

// busyRetries bounds the tries of a run that finds its account locked
// when episodes run concurrently (see Options.Concurrent).
const busyRetries = 100

// Options tune Run.
type Options struct {
	// Concurrent says that other episodes run in the process at the same
	// time, so that the goroutines and files of this one cannot be told
	// apart from theirs: Run does not look for leaks, and the caller
	// does, with Snapshot, between episodes. A run that finds the
	// account locked (Outcome.Busy) is tried again a little later, up
	// to busyRetries times, and not counted: a fork for another
	// episode's MDA can hold a copy of the lock for a moment.
	Concurrent bool
}

// Run plays the episode against the client in dir (an empty directory
// of its own) and checks the invariants. The faulty runs come first,
// then clean runs until the client has delivered everything it can or
// used up its chances (see cleanRuns). A nil opts is the zero Options.
func Run(ctx context.Context, ep Episode, f Fetcher, dir string, opts *Options) (*Report, error) {
	if opts == nil {
		opts = &Options{}
	}
	before := Snapshot()
	w, err := newWorld(ep, dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Episode: ep}
	acceptAll := false
	run := func(n int, faults RunFaults, clean bool) (Outcome, error) {
		spec, err := w.beginRun(n, faults, clean)
		if err != nil {
			return Outcome{}, err
		}
		spec.AcceptAllAsNew = acceptAll
		check, _ := f.(Checker)
		if faults.Check && check != nil {
			// a `popfetch check --list` before the run: it may
			// change nothing on the server
			removed := len(w.mb.Removed())
			out := retryBusy(ctx, opts, func(ctx context.Context) Outcome {
				return w.process(spec, func(spec Spec) Outcome { return check.Check(ctx, spec) })
			})
			rep.Runs = append(rep.Runs, RunRecord{Check: true, Err: out.Err, Warnings: out.Warnings})
			if !w.waitIdle() {
				rep.Violations = append(rep.Violations, Violation{Kind: Leak, Run: n,
					Detail: "the client's connection was still open 10 s after the check"})
			}
			if r := w.mb.Removed(); len(r) > removed {
				rep.Violations = append(rep.Violations, Violation{Kind: CheckChanged, Run: n,
					Detail: fmt.Sprintf("%d messages left the server in a check, the first %s", len(r)-removed, r[removed].Reason)})
			}
		}
		fctx, cancel := context.WithCancel(ctx)
		w.armDisk(cancel)
		out := retryBusy(fctx, opts, func(ctx context.Context) Outcome {
			return w.process(spec, func(spec Spec) Outcome { return f.Fetch(ctx, spec) })
		})
		struck := w.disarmDisk()
		cancel()
		acceptAll = out.Mismatch
		rep.Runs = append(rep.Runs, RunRecord{Clean: clean, Err: out.Err, Warnings: out.Warnings, Disk: struck})
		if !w.waitIdle() {
			rep.Violations = append(rep.Violations, Violation{Kind: Leak, Run: n,
				Detail: "the client's connection was still open 10 s after the run"})
		}
		w.endRun()
		return out, nil
	}
	for i, faults := range ep.Runs {
		if _, err := run(i+1, faults, false); err != nil {
			w.close()
			return nil, err
		}
	}
	settled := false
	for i, limit := 0, w.cleanRuns(); i < limit && !settled; i++ {
		out, err := run(len(rep.Runs)+1, RunFaults{}, true)
		if err != nil {
			w.close()
			return nil, err
		}
		if out.Mismatch {
			limit++ // the user's --accept-all-as-new run
		}
		settled = out.Err == nil && w.settled(out.Warnings)
	}
	w.close()
	w.mu.Lock()
	rep.Violations = append(rep.Violations, w.found...)
	for p := range w.points {
		rep.FaultPoints = append(rep.FaultPoints, p)
	}
	w.mu.Unlock()
	sort.Strings(rep.FaultPoints)
	rep.Violations = append(rep.Violations, w.check(rep, settled)...)
	if r, ok := f.(Remembering); ok && settled {
		rep.Violations = append(rep.Violations, w.checkMemory(r)...)
	}
	if !opts.Concurrent {
		rep.Violations = append(rep.Violations, before.Leaks()...)
	}
	return rep, nil
}

// retryBusy runs a client's command, again while it finds its account
// locked and episodes run concurrently (see Options.Concurrent).
func retryBusy(ctx context.Context, opts *Options, do func(context.Context) Outcome) Outcome {
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, runTimeout)
		out := do(rctx)
		cancel()
		if !out.Busy || !opts.Concurrent || try == busyRetries {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled reports whether the client has done all it must, its last
// run's warnings given: in delete mode, no message it must deliver is
// left on the server; in keep mode, every such message was delivered;
// either way but for quarantined ones.
func (w *world) settled(warnings []string) bool {
	stored, _ := readStore(w.disk, w.ep.Config.Target, w.store)
	have := map[string]bool{}
	for _, s := range stored {
		have[mailgen.ID(s.Data)] = true
	}
	broken := w.brokenRetrievals()
	for _, m := range w.mb.Messages() {
		id := mailgen.ID(m.Data)
		if !w.eligible(id, w.listedSize(m)) || w.quarantined(m, broken, warnings) {
			continue
		}
		if !have[id] && w.ep.Config.Keep && w.impostor(m) {
			continue
		}
		if !w.ep.Config.Keep || !have[id] {
			return false
		}
	}
	return true
}

// brokenRetrievals counts, for each message by content id, the sessions
// that asked for it (RETR or TOP) and did not end with QUIT.
func (w *world) brokenRetrievals() map[string]int {
	out := map[string]int{}
	for _, l := range w.srv.Log() {
		if l.Updated {
			continue
		}
		seen := map[*pop3test.Message]bool{}
		for _, m := range l.Requested {
			if !seen[m] {
				seen[m] = true
				out[mailgen.ID(m.Data)]++
			}
		}
	}
	return out
}

// quarantineAfter is how many broken sessions a message must have been
// retrieved in before a client may leave it on the server for good
// (CONTRACT §5: "after 3 such runs").
const quarantineAfter = 3

// quarantined reports whether the client may leave a message on the
// server as poison: it is one, or enough sessions that retrieved it broke,
// and the warnings of its last run name its UID (CONTRACT §5: reported by
// UID on every run). One of the client's quarantineAfter breaks may not
// show here: a connection cut after the client sent RETR and before the
// server read it looks to the client just like a server that dies at that
// RETR, and it must count those, or a message the server crashes on would
// never be quarantined.
func (w *world) quarantined(m *pop3test.Message, broken map[string]int, warnings []string) bool {
	id := mailgen.ID(m.Data)
	if !w.poison(id) && broken[id] < quarantineAfter-1 && !w.sizeOfPoison(m) {
		return false
	}
	// A server without UIDL gives the client no UID to name: it names
	// the message by its listed size ("#size:N"), all it has.
	name := m.UID
	if w.ep.Policy.NoUIDL {
		name = fmt.Sprintf("#size:%d", w.listedSize(m))
	}
	for _, l := range warnings {
		if strings.Contains(l, name) {
			return true
		}
	}
	return false
}

// impostor reports whether m has the UID and the listed size of a message
// the server listed before and removed: only a server that reuses UIDs
// does that.
func (w *world) impostor(m *pop3test.Message) bool {
	if !w.ep.Policy.ReuseUIDs {
		return false
	}
	for _, r := range w.mb.Removed() {
		if r.UID == m.UID && w.listedSize(r.Message) == w.listedSize(m) {
			return true
		}
	}
	return false
}

// sizeOfPoison reports whether, on a server without UIDL, m is listed
// with the size of a poison message: the client knows a message by its
// size alone there, so it leaves both on the server (and names both).
func (w *world) sizeOfPoison(m *pop3test.Message) bool {
	if !w.ep.Policy.NoUIDL {
		return false
	}
	for _, o := range w.mb.Messages() {
		if o != m && w.poison(mailgen.ID(o.Data)) && w.listedSize(o) == w.listedSize(m) {
			return true
		}
	}
	return false
}

// check reads the target and the server and checks the invariants that
// hold at the end of an episode.
func (w *world) check(rep *Report, settled bool) []Violation {
	var vs []Violation
	cfg := w.ep.Config
	stored, err := readStore(w.disk, cfg.Target, w.store)
	if err != nil {
		kind := Unreadable
		if errors.Is(err, errTornMbox) {
			kind = CutOff
		}
		vs = append(vs, Violation{Kind: kind, Detail: err.Error()})
	}
	count := map[string]int{}
	for _, s := range stored {
		data := s.Data
		if cfg.ReceivedHeader {
			var ok bool
			if data, ok = stripReceived(data); !ok {
				vs = append(vs, Violation{Kind: NotSent, ID: mailgen.ID(s.Data), Detail: s.Where + " lacks the Received: field popfetch prepends"})
				continue
			}
		}
		id := mailgen.ID(data)
		orig, ok := w.byID[id]
		if !ok {
			vs = append(vs, Violation{Kind: NotSent, ID: id, Detail: s.Where + ": " + quote(data)})
			continue
		}
		want := mailgen.Canonical(orig)
		switch {
		case bytes.Equal(data, want):
			count[id]++
			rep.Delivered++
		case len(data) < len(want) && bytes.HasPrefix(want, data):
			vs = append(vs, Violation{Kind: CutOff, ID: id, Detail: fmt.Sprintf("%s holds %d of its %d octets", s.Where, len(data), len(want))})
		default:
			vs = append(vs, Violation{Kind: NotSent, ID: id, Detail: s.Where + " differs from what was sent: " + firstDiff(data, want)})
		}
	}
	rep.Sent = len(w.byID)
	onServer := map[string]*pop3test.Message{}
	for _, m := range w.mb.Messages() {
		onServer[mailgen.ID(m.Data)] = m
	}
	var warnings []string
	if len(rep.Runs) > 0 {
		warnings = rep.Runs[len(rep.Runs)-1].Warnings
	}
	broken := w.brokenRetrievals()
	why := map[string]pop3test.Removal{}
	for _, r := range w.mb.Removed() {
		id := mailgen.ID(r.Message.Data)
		why[id] = r
		if cfg.Keep && r.Reason == pop3test.RemovedByDele {
			vs = append(vs, Violation{Kind: KeepDeleted, ID: id, Detail: fmt.Sprintf("deleted (uid %s) by session %d", r.UID, r.Session)})
		}
	}
	ids := make([]string, 0, len(w.byID))
	for id := range w.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	allowed := w.duplicatesAllowed(rep)
	retrievals := w.retrievingSessions()
	for _, id := range ids {
		allowed := allowed
		if w.ep.Policy.NoUIDL {
			// each session that retrieved it and did not delete it
			// (a DELE refused, a QUIT that did not complete: a
			// session per batch makes several in a run) leaves the
			// client nothing to know it by
			allowed = max(allowed, w.renames+w.crashes+retrievals[id]-1)
		}
		m, listed := onServer[id]
		switch {
		case count[id] == 0 && !listed:
			r := why[id]
			vs = append(vs, Violation{Kind: Lost, ID: id, Cause: r.Reason.String(), Detail: fmt.Sprintf(
				"not delivered, and %s (uid %s) by session %d", r.Reason, r.UID, r.Session)})
		case count[id] > 1+allowed:
			vs = append(vs, Violation{Kind: Duplicate, ID: id, Detail: fmt.Sprintf("delivered %d times (bound %d)", count[id], 1+allowed)})
		}
		if !listed || !w.eligible(id, w.listedSize(m)) {
			continue
		}
		switch {
		case count[id] == 0 && w.quarantined(m, broken, warnings):
			rep.Quarantined = append(rep.Quarantined, id)
		case settled:
		case broken[id] >= quarantineAfter && w.poison(id):
			vs = append(vs, Violation{Kind: Unreported, ID: id, Detail: fmt.Sprintf(
				"a poison message (it broke %d sessions) left on the server, and the last run's warnings do not name its uid %q", broken[id], m.UID)})
		case count[id] == 0 && w.impostor(m):
			// a server that reuses a UID for a message of the very
			// size of the one it named before leaves the client
			// nothing to tell them apart by (RFC 1939 §7 forbids it)
		case count[id] == 0:
			vs = append(vs, Violation{Kind: Stranded, ID: id, Detail: "still on the server, never delivered, after the clean runs"})
		case !cfg.Keep:
			vs = append(vs, Violation{Kind: Stranded, ID: id, Detail: "delivered, but still on the server after the clean runs"})
		}
	}
	if !settled && len(vs) == 0 {
		vs = append(vs, Violation{Kind: Stranded, Detail: "the clean runs did not end in a settled state"})
	}
	return append(vs, w.leftovers()...)
}

// duplicatesAllowed is the bound on extra copies of one message: CONTRACT
// §5 allows none without a crash, but a server without UIDL gives the
// client nothing to recognise a message by after a broken session or a
// refused DELE (one per faulty run, or failed clean one), and a changed
// UID scheme makes every message new.
func (w *world) duplicatesAllowed(rep *Report) int {
	// CONTRACT §5: a crash, or a disk that fails, costs at most the
	// messages of one uncommitted batch, each once more
	n := w.renames + w.crashes
	if w.mta != nil {
		// a cut between a mail server's taking a message and its
		// answer: the client cannot know, and fetches it again
		n += w.mta.unknowns()
	}
	if w.ep.Policy.NoUIDL {
		for _, r := range rep.Runs {
			if !r.Clean || r.Err != nil {
				n++
			}
		}
	}
	return n
}

// retrievingSessions counts, for each message, the sessions that
// retrieved it.
func (w *world) retrievingSessions() map[string]int {
	n := map[string]int{}
	for _, l := range w.srv.Log() {
		seen := map[string]bool{}
		for _, m := range l.Retrieved {
			if id := mailgen.ID(m.Data); !seen[id] {
				seen[id] = true
				n[id]++
			}
		}
	}
	return n
}

// leftovers finds temporary and lock files left in the target.
func (w *world) leftovers() []Violation {
	var vs []Violation
	var leftover []string
	switch w.ep.Config.Target {
	case Maildir:
		names, _ := w.disk.ReadDir(filepath.Join(w.spec.Path, "tmp"))
		for _, name := range names {
			leftover = append(leftover, filepath.Join("tmp", name))
		}
	case Mbox:
		names, _ := w.disk.ReadDir(filepath.Dir(w.spec.Path))
		for _, name := range names {
			if strings.HasPrefix(name, filepath.Base(w.spec.Path)+".") {
				leftover = append(leftover, name)
			}
		}
	}
	if len(leftover) > 0 {
		vs = append(vs, Violation{Kind: Leftover, Detail: strings.Join(leftover, " ")})
	}
	return vs
}

// checkMemory compares what the client remembers with the server, after
// a settled clean run: it may remember only UIDs the server lists, and
// in keep mode it must remember every message it delivered.
func (w *world) checkMemory(r Remembering) []Violation {
	spec := w.spec
	spec.FS = w.fsys.NewProcess()
	got, err := r.Remembered(spec)
	if err != nil {
		return []Violation{{Kind: Remembered, Detail: err.Error()}}
	}
	listed := map[string]*pop3test.Message{}
	for _, m := range w.mb.Messages() {
		if w.ep.Policy.NoUIDL {
			// without UIDL the client can name a message by its size only
			listed[fmt.Sprintf("#size:%d", w.listedSize(m))] = m
			continue
		}
		listed[m.UID] = m
	}
	var vs []Violation
	// With retention, the last QUIT removed what the client remembers as
	// retrieved: it learns that at its next run.
	for uid := range got {
		if _, ok := listed[uid]; !ok && w.ep.Policy.Retention == pop3test.RetainRetrieved {
			vs = append(vs, Violation{Kind: Remembered, Detail: fmt.Sprintf("remembers uid %q, which the server no longer lists", uid)})
		}
	}
	// After a change of the UID scheme every message is new again, and
	// with max_messages the clean runs may end (every message delivered,
	// under its old UID) before the client has fetched them all under
	// the new ones: it then remembers only some.
	relisted := w.renames > 0 && w.ep.Config.MaxMessages > 0
	if w.ep.Config.Keep && !w.ep.Policy.NoUIDL && !relisted {
		for uid, m := range listed {
			id := mailgen.ID(m.Data)
			if w.eligible(id, w.listedSize(m)) && !got[uid] {
				vs = append(vs, Violation{Kind: Remembered, ID: id, Detail: fmt.Sprintf("keep mode, delivered, but uid %q not remembered", uid)})
			}
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Detail < vs[j].Detail })
	return vs
}

// stripReceived removes the first header field if it is a Received:
// field; false if it is not.
func stripReceived(m []byte) ([]byte, bool) {
	if !bytes.HasPrefix(m, []byte("Received:")) {
		return m, false
	}
	for {
		i := bytes.IndexByte(m, '\n')
		if i < 0 {
			return nil, false
		}
		m = m[i+1:]
		if len(m) == 0 || (m[0] != ' ' && m[0] != '\t') {
			return m, true
		}
	}
}

func quote(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q…", b[:80])
	}
	return fmt.Sprintf("%q", b)
}

// firstDiff describes where two messages first differ.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(i-20, 0)
	return fmt.Sprintf("at octet %d of %d (want %d): got %s, want %s", i, len(got), len(want),
		quote(got[lo:min(i+20, len(got))]), quote(want[lo:min(i+20, len(want))]))
}

// openFiles returns the process's open file descriptors and what each
// refers to.
func openFiles() map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		what, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		// Not the listing's own descriptor (closed by now), nor the Go
		// runtime's network poller, opened once at the first connection.
		if err != nil || strings.HasPrefix(what, "/proc/") ||
			what == "anon_inode:[eventpoll]" || what == "anon_inode:[eventfd]" {
			continue
		}
		out[e.Name()] = what
	}
	return out
}

// newFiles returns the descriptors of now that were not open before, or
// that refer to something else.
func newFiles(before, now map[string]string) []string {
	var out []string
	for fd, what := range now {
		if b, ok := before[fd]; !ok || b != what {
			out = append(out, fd+" → "+what)
		}
	}
	sort.Strings(out)
	return out
}

// leakWait is how long Leaks waits for goroutines and files to go.
var leakWait = 5 * time.Second

// Resources are the goroutines and open files of the process at a time.
type Resources struct {
	goroutines int
	files      map[string]string
}

// Snapshot returns the process's goroutines and open files now.
func Snapshot() Resources {
	return Resources{runtime.NumGoroutine(), openFiles()}
}

// Leaks waits a while for the goroutines and files to go back to what
// they were at the snapshot, and reports those that do not.
func (r Resources) Leaks() []Violation {
	goroutines, fds := r.goroutines, r.files
	var g int
	var f []string
	for end := time.Now().Add(leakWait); ; time.Sleep(time.Millisecond) {
		g, f = runtime.NumGoroutine(), newFiles(fds, openFiles())
		if (g <= goroutines && len(f) == 0) || time.Now().After(end) {
			break
		}
	}
	var vs []Violation
	if g > goroutines {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		vs = append(vs, Violation{Kind: Leak, Detail: fmt.Sprintf("%d goroutines left running (were %d):\n%s", g-goroutines, goroutines, buf)})
	}
	if len(f) > 0 {
		vs = append(vs, Violation{Kind: Leak, Detail: fmt.Sprintf("files left open: %s", strings.Join(f, ", "))})
	}
	return vs
}

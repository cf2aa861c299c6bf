package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/internal/simfs"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// Fetcher is the client under test.
type Fetcher interface {
	// Fetch runs the client once for the account of spec, as one
	// `popfetch fetch` would, and says how it ended. It must return once
	// ctx is done.
	Fetch(ctx context.Context, spec Spec) Outcome
}

// Checker is a Fetcher that can also tell what is new without fetching,
// headers included (`popfetch check --list`), which must change nothing
// on the server.
type Checker interface {
	Check(ctx context.Context, spec Spec) Outcome
}

// Remembering is a Fetcher that can tell what it remembers of an account
// (its UID cache), for the checks of Report after the last run.
type Remembering interface {
	// Remembered returns the UIDs remembered for the account of spec.
	Remembered(spec Spec) (map[string]bool, error)
}

// Spec is the account a Fetcher fetches: a user's configuration, plus
// the controls a simulation needs.
type Spec struct {
	Host     string
	Port     int
	User     string
	Password string
	// StateDir is the client's state directory (cache, lock).
	StateDir string
	Config   Config
	// Path is the Maildir directory, the mbox file or the MDA command.
	Path    string
	Timeout time.Duration
	// Stop is closed to ask for a graceful stop (SIGTERM).
	Stop <-chan struct{}
	// Now is the client's clock.
	Now func() time.Time
	// AcceptAllAsNew is set after a run that stopped at the cache
	// tripwire, as a user would.
	AcceptAllAsNew bool
	// FS is the client's file system: a process on the simulated disk,
	// for the state directory and a Maildir or mbox (an MDA's mail is on
	// the real disk). Each run is a new process.
	FS vfs.FS
}

// Outcome is how a run of the client ended.
type Outcome struct {
	Err error
	// Mismatch: the client stopped because its memory does not match the
	// server (CONTRACT §5's tripwire): the next run accepts all as new.
	Mismatch bool
	// Warnings are what the client told its user (stderr, even under
	// cron), one a line.
	Warnings []string
	// Busy: the client found its account locked (exit 75). Within one
	// episode runs never overlap, but with episodes run concurrently a
	// child process that another episode's MDA forks holds a copy of
	// every descriptor until it execs, the lock's too, for a moment: see
	// Options.Concurrent.
	Busy bool
}

// Kind is the kind of a violation.
type Kind string

// The invariants.
const (
	Lost         Kind = "lost"                 // neither on the server nor delivered
	QuitAfter    Kind = "quit-after-retrieval" // QUIT while a retrieved message was not delivered
	NotSent      Kind = "not-sent"             // delivered, but no message sent is like it
	CutOff       Kind = "cut-off"              // delivered in part
	Duplicate    Kind = "duplicate"            // delivered more often than the bound allows
	Stranded     Kind = "stranded"             // still not delivered after the clean runs
	Leak         Kind = "leak"                 // goroutine, file or connection left open
	Leftover     Kind = "leftover"             // temporary or lock file left in a target
	Remembered   Kind = "cache"                // the client's memory disagrees with the server
	Unreadable   Kind = "unreadable"           // the target cannot be read back
	KeepDeleted  Kind = "deleted-in-keep-mode" // keep mode, and the client sent DELE
	CheckChanged Kind = "check-changed-server" // a check removed or hid messages
	Unreported   Kind = "unreported"           // a poison message left on the server unreported
)

// Violation is an invariant found broken.
type Violation struct {
	Kind Kind
	ID   string // the message's content id, "" if none
	Run  int    // the run it was seen in, 0 for the final checks
	// Cause is, for Lost, how the message left the server: "deleted"
	// (DELE), "expired" or "hidden" (retrieved in a session that ended
	// with QUIT, see pop3test.Retention).
	Cause  string
	Detail string
}

func (v Violation) String() string {
	s := string(v.Kind)
	if v.ID != "" {
		s += " " + v.ID
	}
	if v.Run > 0 {
		s += fmt.Sprintf(" (run %d)", v.Run)
	}
	if v.Detail != "" {
		s += ": " + v.Detail
	}
	return s
}

// RunRecord is what one run did.
type RunRecord struct {
	Clean    bool
	Check    bool // a check (see Checker), not a fetch
	Err      error
	Warnings []string
	Disk     bool // the run's disk fault struck
}

// Report is the outcome of an episode.
type Report struct {
	Episode    Episode
	Runs       []RunRecord
	Violations []Violation
	Sent       int // messages sent
	Delivered  int // messages delivered, duplicates counted
	// Quarantined are the messages the client left on the server as
	// poison, reporting them (see quarantineAfter).
	Quarantined []string
	// FaultPoints say where the faults struck, in words ("cut sending,
	// after RETR"), so that many episodes can tell which points of the
	// protocol were reached.
	FaultPoints []string
}

// Failed reports whether any invariant was broken.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

func (r *Report) String() string {
	var b strings.Builder
	b.WriteString(r.Episode.String())
	for i, run := range r.Runs {
		kind := "faulty"
		switch {
		case run.Check:
			kind = "check"
		case run.Clean:
			kind = "clean"
		}
		if run.Disk {
			kind += ", disk fault struck"
		}
		fmt.Fprintf(&b, "\n  run %d (%s): ", i+1, kind)
		if run.Err != nil {
			b.WriteString(run.Err.Error())
		} else {
			b.WriteString("ok")
		}
	}
	fmt.Fprintf(&b, "\n  %d sent, %d delivered", r.Sent, r.Delivered)
	if len(r.Quarantined) > 0 {
		fmt.Fprintf(&b, ", quarantined %s", strings.Join(r.Quarantined, " "))
	}
	for _, v := range r.Violations {
		b.WriteString("\n  VIOLATION " + v.String())
	}
	return b.String()
}

// world is the simulated server, target and clock of an episode.
type world struct {
	ep   Episode
	dir  string
	srv  *pop3test.Server
	mb   *pop3test.Mailbox
	spec Spec

	disk   Disk              // where the client's messages are
	fsys   *simfs.FS         // the simulated disk: state, Maildir, mbox
	store  string            // where the target keeps messages
	msgs   [][]byte          // every message, sent or to arrive, by index
	sent   int               // how many have been added to the server
	byID   map[string][]byte // sent messages by content id
	failMD string            // the MDA's fail list
	mta    *mta              // the LMTP or SMTP server; nil for other targets

	mu       sync.Mutex
	run      int // current run, from 1
	faults   RunFaults
	clean    bool
	inRun    int            // sessions of the current run so far
	session  int            // the current session's number
	cmds     map[string]int // commands received in the run, by name
	stop     chan struct{}
	stopped  bool
	renames  int
	found    []Violation // seen while the runs go on
	points   map[string]bool
	faultyAt int // the session the run's session faults were set up for
	clockNow time.Time
	crashes  int                // disk faults that struck: crashes, full disks, errors
	struck   bool               // the current fetch's disk fault struck
	cancel   context.CancelFunc // ends the current fetch (a crash)
}

const password = "sim-secret"

func newWorld(ep Episode, dir string) (*world, error) {
	w := &world{ep: ep, dir: dir, disk: OSDisk{}, byID: map[string][]byte{}, points: map[string]bool{},
		clockNow: time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC), fsys: simfs.New(simfs.Options{})}
	if err := w.fsys.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if ep.Config.Target != MDA && !ep.Config.Target.overMTA() {
		w.disk = w.fsys
	}
	total := ep.Messages
	for _, r := range ep.Runs {
		total += r.Arrivals
	}
	w.msgs = mailgen.Traps(total, ep.Seed)
	for i := range w.msgs {
		if !ep.Config.Target.overMTA() {
			w.msgs[i] = simTrap(ep.Seed, i, w.msgs[i])
		}
	}
	if i := ep.Policy.StatusLine; i >= 0 {
		w.msgs[i] = append([]byte("+OK 1234 octets\n"), w.msgs[i]...)
	}
	s := pop3test.NewServer()
	w.srv = s
	w.mb = s.AddUser("alice", password)
	p := ep.Policy
	w.mb.ReuseUIDs = p.ReuseUIDs
	s.Retention = p.Retention
	s.ExpireCapa = p.ExpireCapa
	s.OfferSTLS = false
	if p.NoUIDL {
		s.Faults.HideCaps = append(s.Faults.HideCaps, "UIDL")
	}
	if p.NoPipeline {
		s.Faults.HideCaps = append(s.Faults.HideCaps, "PIPELINING")
	}
	if d := p.ListSizeDelta; d != 0 {
		s.Faults.ListSize = func(m *pop3test.Message) int64 { return max(m.Size()+d, 0) }
	}
	s.Faults.Net = w.netFault
	s.Faults.Interrupt = w.interrupt
	s.Faults.InterruptMessage = w.interruptMessage
	s.Faults.Refuse = w.refuse
	s.Faults.RefuseLogin = w.refuseLogin
	s.Faults.Respond = w.observe
	for w.sent < ep.Messages {
		w.add()
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(s.Addr())
	w.spec = Spec{Host: host, User: "alice", Password: password, Config: ep.Config,
		StateDir: filepath.Join(dir, "state"), Timeout: ep.Timeout, Now: w.now}
	w.spec.Port, _ = strconv.Atoi(port)
	switch ep.Config.Target {
	case Maildir:
		w.spec.Path = filepath.Join(dir, "Maildir")
		w.store = w.spec.Path
	case Mbox:
		w.spec.Path = filepath.Join(dir, "mbox")
		w.store = w.spec.Path
	case MDA:
		w.store = filepath.Join(dir, "mda")
		cmd, err := w.writeMDA()
		if err != nil {
			s.Close()
			return nil, err
		}
		w.spec.Path = cmd
	case LMTP, SMTP:
		m, err := startMTA(ep.Config.Target, dir, ep.Seed)
		if err != nil {
			s.Close()
			return nil, err
		}
		w.mta, w.store, w.spec.Path = m, m.store, m.addr
	}
	return w, nil
}

// close stops the servers.
func (w *world) close() {
	w.srv.Close()
	if w.mta != nil {
		w.mu.Lock()
		w.mta.close(w.points)
		w.mu.Unlock()
	}
}

// add puts the next message on the server.
func (w *world) add() {
	m := w.msgs[w.sent]
	w.sent++
	w.byID[mailgen.ID(m)] = m
	w.mb.Add(m)
}

// simTrap adds, to some messages, what mailgen.Traps leaves out: NUL
// bytes and bare CRs.
func simTrap(seed uint64, i int, m []byte) []byte {
	if chance(seed, "simtrap", i) < 0.1 {
		return append(m, []byte("nul \x00 byte\nbare \r cr\nends in cr\r\r\n.\r\n")...)
	}
	return m
}

// writeMDA writes the MDA script: it keeps each message as a file
// DIR/mda/msg.*, or exits with the status the fail list gives for the
// message's id.
func (w *world) writeMDA() (string, error) {
	out := w.store
	w.failMD = filepath.Join(w.dir, "mda-fail")
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	// Shell built-ins but cat (and sed for a failure): a process costs
	// more than anything else here. noclobber makes the name unique.
	script := `#!/bin/sh
set -C
f="` + out + `/msg.$$"; n=0
until { : > "$f"; } 2>/dev/null; do n=$((n+1)); f="` + out + `/msg.$$.$n"; done
cat >| "$f" || { rm -f "$f"; exit 74; }
if [ -s "` + w.failMD + `" ]; then
	id=$(sed -n '/^X-Mailgen-Id: /{s///p;q;}' "$f")
	code=$(sed -n "s/^$id //p" "` + w.failMD + `")
	if [ -n "$code" ]; then rm -f "$f"; exit "$code"; fi
fi
exit 0
`
	path := filepath.Join(w.dir, "mda.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		return "", err
	}
	return "/bin/sh " + path, nil
}

// now is the client's clock: it moves ClockStep at each reading.
func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clockNow = w.clockNow.Add(w.ep.ClockStep)
	return w.clockNow
}

// beginRun sets the world up for run n.
func (w *world) beginRun(n int, f RunFaults, clean bool) (Spec, error) {
	for i := 0; i < f.Arrivals; i++ {
		w.add()
	}
	if f.Rename {
		w.mb.RenameUIDs(fmt.Sprintf("r%d-", n))
		w.renames++
	}
	if w.failMD != "" {
		var b bytes.Buffer
		if f.MDAFail != 0 {
			for id := range w.byID {
				if chance(w.ep.Seed, "mda", n, id) < f.MDAFailRate {
					fmt.Fprintf(&b, "%s %d\n", id, f.MDAFail)
				}
			}
		}
		if err := os.WriteFile(w.failMD, b.Bytes(), 0o600); err != nil {
			return Spec{}, err
		}
	}
	if w.mta != nil {
		var mf *MTAFault
		if !clean {
			mf = f.MTA
		}
		w.mta.beginRun(n, mf)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.run, w.faults, w.clean, w.inRun, w.cmds, w.faultyAt = n, f, clean, 0, map[string]int{}, 0
	w.stop, w.stopped = make(chan struct{}), false
	spec := w.spec
	spec.Stop = w.stop
	return spec, nil
}

// process runs do, a command of the client, as a process of its own on
// the simulated disk, which ends with it (so its pid is then dead and its
// locks released, as the kernel would).
func (w *world) process(spec Spec, do func(Spec) Outcome) Outcome {
	p := w.fsys.NewProcess()
	defer p.Kill()
	spec.FS = p
	return do(spec)
}

// armDisk sets the disk fault of the run's fetch, if any: at the AtOp-th
// call from now on. cancel ends the fetch.
func (w *world) armDisk(cancel context.CancelFunc) {
	w.mu.Lock()
	f := w.faults.Disk
	w.struck, w.cancel = false, cancel
	w.mu.Unlock()
	if f == nil || w.clean {
		return
	}
	at := w.fsys.Ops() + f.AtOp
	w.fsys.OnOp(func(op simfs.Op) error {
		if op.N < at {
			return nil
		}
		w.mu.Lock()
		first := !w.struck
		if first {
			w.struck = true
			w.crashes++
			w.points["disk: "+f.kind()+" at "+op.Kind.String()] = true
		}
		w.mu.Unlock()
		switch {
		case f.Crash && first:
			// the process dies here: its connections go with it, and
			// the server commits nothing of them (no QUIT)
			w.srv.DropSessions()
			cancel()
			if f.Power {
				w.fsys.CrashPower(newRand(w.ep.Seed, fmt.Sprint("power", w.run)))
			} else {
				w.fsys.CrashProcess()
			}
			return simfs.ErrDead
		case f.Errno == syscall.ENOSPC:
			if first {
				w.fsys.SetSpace(w.fsys.Used())
			}
			return nil // the calls that write fail
		case first:
			return f.Errno
		}
		return nil
	})
}

// disarmDisk ends the fetch's disk fault; it reports whether it struck.
func (w *world) disarmDisk() bool {
	w.fsys.OnOp(nil)
	w.fsys.SetSpace(-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel = nil
	return w.struck
}

// faulty reports whether the current session is the one the run's
// session faults hit. Called with w.mu held.
func (w *world) faulty() bool { return !w.clean && w.inRun == w.faults.Session }

func (w *world) netFault(session int) *pop3test.NetFault {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inRun++
	w.session = session
	if w.faulty() {
		w.faultyAt = session
	}
	if w.faulty() && w.faults.Net != nil {
		n := *w.faults.Net
		return &n
	}
	return nil
}

func (w *world) interrupt(cmd string, _ []string) *pop3test.Interrupt {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cmd != "QUIT" || !w.faulty() {
		return nil
	}
	switch {
	case w.faults.QuitDropped:
		w.points["QUIT dropped before UPDATE"] = true
		return &pop3test.Interrupt{Before: true, Drop: true}
	case w.faults.QuitLost:
		w.points["QUIT answer lost"] = true
		return &pop3test.Interrupt{Drop: true}
	}
	return nil
}

// interruptMessage breaks the connection at every retrieval of the
// poison message, faulty run or clean.
func (w *world) interruptMessage(cmd string, m *pop3test.Message) *pop3test.Interrupt {
	p := w.ep.Policy.Poison
	if p < 0 || (cmd != "RETR" && cmd != "TOP") || mailgen.ID(m.Data) != mailgen.ID(w.msgs[p]) {
		return nil
	}
	w.mu.Lock()
	w.points["poison "+cmd] = true
	w.mu.Unlock()
	return &pop3test.Interrupt{After: 40, Drop: true}
}

func (w *world) refuse(cmd string, m *pop3test.Message) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.clean {
		return false
	}
	f := w.faults
	p := map[string]float64{"RETR": f.RefuseRetr, "DELE": f.RefuseDele, "QUIT": f.RefuseQuit}[cmd]
	if p == 0 {
		return false
	}
	what := "quit"
	if m != nil {
		what = mailgen.ID(m.Data)
	}
	if chance(w.ep.Seed, "refuse", w.run, w.inRun, cmd, what) >= p {
		return false
	}
	w.points["refused "+cmd] = true
	return true
}

func (w *world) refuseLogin(string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.faulty() && w.faults.Login != "" {
		w.points["login refused "+strings.Fields(w.faults.Login)[1]] = true
		return w.faults.Login
	}
	return ""
}

// observe watches every command: it asks for the graceful stop at the
// planned command, and at QUIT checks that every message the session
// retrieved is in the target (CONTRACT §5: retrieval can be a
// commitment, so a session with an undelivered retrieval never QUITs).
func (w *world) observe(cmd string, _ []string) (string, bool) {
	w.mu.Lock()
	w.cmds[cmd]++
	if !w.clean && w.faults.StopAt == cmd && w.faults.StopAtN == w.cmds[cmd] && !w.stopped {
		w.points["SIGTERM at "+cmd] = true
		w.stopped = true
		close(w.stop)
	}
	w.mu.Unlock()
	if cmd == "QUIT" {
		w.checkQuit()
	}
	return "", false
}

func (w *world) checkQuit() {
	w.mu.Lock()
	session, run := w.session, w.run
	w.mu.Unlock()
	var log *pop3test.SessionLog
	for _, l := range w.srv.Log() {
		if l.Number == session {
			log = &l
		}
	}
	if log == nil || log.User == "" || len(log.Retrieved) == 0 {
		return
	}
	stored, err := readStore(w.disk, w.ep.Config.Target, w.store)
	have := map[string]bool{}
	for _, s := range stored {
		have[mailgen.ID(s.Data)] = true
	}
	var missing []string
	for _, m := range log.Retrieved {
		if id := mailgen.ID(m.Data); !have[id] {
			missing = append(missing, id)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && err != errTornMbox {
		w.found = append(w.found, Violation{Kind: Unreadable, Run: run, Detail: err.Error()})
	}
	for _, id := range missing {
		w.found = append(w.found, Violation{Kind: QuitAfter, ID: id, Run: run,
			Detail: fmt.Sprintf("session %d sent QUIT after retrieving it, and it is not in the target", session)})
	}
}

// endRun notes where the run's network fault struck, if it did: the
// last command the faulty session received, and whether QUIT's UPDATE
// was done.
func (w *world) endRun() {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.faults.Net
	if w.clean || n == nil || w.faultyAt == 0 {
		return
	}
	for _, l := range w.srv.Log() {
		if l.Number != w.faultyAt || !l.Struck {
			continue
		}
		last := "greeting"
		if k := len(l.Commands); k > 0 {
			last = strings.ToUpper(strings.Fields(l.Commands[k-1] + " ?")[0])
		}
		what, dir := "cut", "sending"
		if n.Stall > 0 {
			what = "stall"
		}
		if n.Received {
			dir = "receiving"
		}
		point := fmt.Sprintf("%s %s, after %s", what, dir, last)
		if l.Updated {
			point += " (UPDATE done)"
		}
		w.points[point] = true
	}
}

// waitIdle waits until the server has seen every session end; false if
// one is still open after a while (the client left it open).
func (w *world) waitIdle() bool {
	for end := time.Now().Add(10 * time.Second); w.srv.Active() > 0; {
		if time.Now().After(end) {
			w.srv.DropSessions()
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// listedSize is the size the server lists for a message.
func (w *world) listedSize(m *pop3test.Message) int64 {
	return max(m.Size()+w.ep.Policy.ListSizeDelta, 0)
}

// eligible reports whether a message on the server is one the client
// must eventually deliver, or quarantine (see quarantined): one within
// max_size.
func (w *world) eligible(_ string, listed int64) bool {
	return w.ep.Config.MaxSize == 0 || listed <= w.ep.Config.MaxSize
}

// poison reports whether the episode's policy makes a message one that
// breaks every session that retrieves it.
func (w *world) poison(id string) bool {
	for _, i := range []int{w.ep.Policy.Poison, w.ep.Policy.StatusLine} {
		if i >= 0 && id == mailgen.ID(w.msgs[i]) {
			return true
		}
	}
	return false
}

// cleanRuns is how many clean runs the client may take to deliver what
// is on the server: 3, plus what max_messages and a poison message make
// necessary.
func (w *world) cleanRuns() int {
	n := 3
	// a poison message takes three broken sessions to quarantine, and
	// with two, each breaks the sessions that reach it first
	if w.ep.Policy.Poison >= 0 {
		n += 3
	}
	if w.ep.Policy.StatusLine >= 0 {
		n += 3
	}
	if mm := w.ep.Config.MaxMessages; mm > 0 {
		eligible := 0
		for _, m := range w.mb.Messages() {
			if w.eligible(mailgen.ID(m.Data), w.listedSize(m)) {
				eligible++
			}
		}
		n += int(math.Ceil(float64(eligible) / float64(mm)))
	}
	return n
}

// Package sim is a fault simulator for a POP3 retrieval client: each
// episode draws, from one seed, a mailbox, an account configuration, a
// server policy and a fault plan, runs the client under test repeatedly
// against that world until it has had its chances to recover, and checks
// CONTRACT §5's promises with a checker that knows nothing of the client:
// no message lost, nothing delivered that was not sent, no cut-off
// message, duplicates within their bound, no stranding, no QUIT after an
// undelivered retrieval, no goroutine or file left open.
//
// The world is a pop3test server (its policies and network faults) and a
// delivery target: a Maildir or mbox on a simulated disk (internal/simfs,
// its crashes and errors), an MDA, or a mail server over LMTP or SMTP
// (go-smtp's, its refusals and cuts: mta.go); the client is anything that implements
// Fetcher, so the engine is plugged in from outside (cmd/ may import this
// package, not the reverse). One seed decides everything the simulator
// does: a failure prints the seed and its plan, and Generate(seed) and Run
// replay that episode. Each episode also draws its own fault
// probabilities (swarm testing), so rare combinations come up.
//
// The models followed are TigerBeetle's VOPR and FoundationDB's
// simulation; see STYLE.md, "Models for a fault world".
package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// Target is the kind of delivery target.
type Target int

// Delivery targets.
const (
	Maildir Target = iota
	Mbox
	MDA
	LMTP // a mail server over LMTP, on a unix socket
	SMTP // a mail server over SMTP, on loopback TCP
)

func (t Target) String() string {
	return [...]string{"maildir", "mbox", "mda", "lmtp", "smtp"}[t]
}

// overMTA reports whether the target is a mail server.
func (t Target) overMTA() bool { return t == LMTP || t == SMTP }

// Config is the account's configuration, as a user would write it.
type Config struct {
	Target         Target
	Keep           bool
	MaxMessages    int   // 0: no limit
	MaxSize        int64 // 0: no limit
	ReceivedHeader bool
}

// Policy is how the server behaves for the whole episode.
type Policy struct {
	Retention  pop3test.Retention
	ExpireCapa string // with ExpireRetrieved: "EXPIRE 0" or "EXPIRE0"
	ReuseUIDs  bool
	NoUIDL     bool
	NoPipeline bool
	// ListSizeDelta is added to every size LIST gives (a server whose
	// sizes are wrong); 0: right.
	ListSizeDelta int64
	// Poison is the index of a message whose retrieval breaks the
	// connection every time, in faulty and clean runs alike; -1: none.
	Poison int
	// StatusLine is the index of a message whose first line reads like
	// a POP3 status ("+OK 1234 octets"), which a client that guards
	// against a desynchronised session may take for one; -1: none.
	StatusLine int
}

// RunFaults are the faults of one run of the client.
type RunFaults struct {
	// Arrivals is how many new messages arrive before the run.
	Arrivals int
	// Check runs a check with headers (`popfetch check --list`) before
	// the run, with no fault, if the client can (see Checker).
	Check bool
	// Rename changes the server's UID scheme before the run.
	Rename bool
	// Session is the session of the run (from 1) that the faults of the
	// session hit: Net, QuitLost, QuitDropped, Login.
	Session int
	// Net cuts or stalls the session's connection; nil: none.
	Net *pop3test.NetFault
	// QuitLost: the server carries out QUIT, and the answer is lost.
	QuitLost bool
	// QuitDropped: the connection drops on QUIT, before UPDATE.
	QuitDropped bool
	// Login is a refusal of the login ("-ERR [IN-USE] ..."), "" for none.
	Login string
	// Refuse* are the chances that the server refuses a RETR, a DELE or
	// the QUIT, decided per message by a hash of the seed, run and UID.
	RefuseRetr, RefuseDele, RefuseQuit float64
	// StopAt asks the client to stop gracefully (SIGTERM) when the
	// server receives the StopAtN-th command StopAt of the run (RETR,
	// DELE, UIDL...); "": never.
	StopAt  string
	StopAtN int
	// MDAFail makes the MDA exit with this status for messages it draws
	// with chance MDAFailRate; 0: never fails.
	MDAFail     int
	MDAFailRate float64
	// Disk is a fault of the client's disk during the fetch; nil: none.
	Disk *DiskFault
	// MTA is how an LMTP or SMTP server fails in the run; nil: never.
	MTA *MTAFault
}

// MTAFault is how the mail server of an LMTP or SMTP target fails during
// a run.
type MTAFault struct {
	// TempFail and PermFail are the chances that it answers a message's
	// data with 451 (try later) or 554 (refused), decided per message.
	TempFail, PermFail float64
	// CutAt is the DATA of the run (from 1) after which the server cuts
	// the connection instead of answering; CutKept says whether it had
	// taken the message by then. 0: no cut.
	CutAt   int
	CutKept bool
}

func (f MTAFault) String() string {
	s := fmt.Sprintf("MTA answers 451 for %.0f%%, 554 for %.0f%%", 100*f.TempFail, 100*f.PermFail)
	if f.CutAt > 0 {
		kept := "not kept"
		if f.CutKept {
			kept = "kept"
		}
		s += fmt.Sprintf(", cuts after DATA #%d (%s)", f.CutAt, kept)
	}
	return s
}

// DiskFault is a fault of the simulated disk (internal/simfs) at the
// AtOp-th file system call the client makes in a fetch (from 1; a fetch
// that makes fewer calls has none).
type DiskFault struct {
	AtOp int64
	// Crash kills the client there: kill -9 (all it wrote survives), or
	// with Power a power cut (what it made durable, and what the seed
	// draws of the rest).
	Crash, Power bool
	// Errno fails the call (and, for ENOSPC, every call that writes from
	// then on in the fetch: the disk is full).
	Errno syscall.Errno
}

// String describes the fault.
func (f DiskFault) String() string {
	switch {
	case f.Crash && f.Power:
		return fmt.Sprintf("power cut at disk call %d", f.AtOp)
	case f.Crash:
		return fmt.Sprintf("kill -9 at disk call %d", f.AtOp)
	case f.Errno == syscall.ENOSPC:
		return fmt.Sprintf("disk full from call %d", f.AtOp)
	}
	return fmt.Sprintf("%s at disk call %d", errnoName(f.Errno), f.AtOp)
}

// kind names the fault without its place, for the fault points.
func (f DiskFault) kind() string {
	switch {
	case f.Crash && f.Power:
		return "power cut"
	case f.Crash:
		return "kill -9"
	}
	return errnoName(f.Errno)
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.EROFS:
		return "EROFS"
	case syscall.ENOSPC:
		return "ENOSPC"
	}
	return e.Error()
}

// Swarm are the fault probabilities drawn for an episode.
type Swarm struct {
	Fault, Net, Stall, Quit, Login, Refuse, Stop, Arrive, MDA float64
	Disk                                                      float64
}

// Episode is one world and its fault plan, all drawn from Seed.
type Episode struct {
	Seed     uint64
	Messages int // in the mailbox at the start
	Config   Config
	Policy   Policy
	Swarm    Swarm
	// Runs are the faulty runs, in order; clean runs follow, with no
	// fault, no arrival and no refusal (but Policy's).
	Runs []RunFaults
	// ClockStep is how far the client's clock moves at each reading.
	ClockStep time.Duration
	// Timeout is the client's network timeout.
	Timeout time.Duration
}

// newRand returns a generator for one use of a seed.
func newRand(seed uint64, stream string) *rand.Rand {
	return rand.New(rand.NewPCG(seed, hash(stream)))
}

// hash is FNV-1a of the parts' printed forms.
func hash(parts ...any) uint64 {
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for _, c := range []byte(fmt.Sprint(p)) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	return h
}

// chance returns a number in [0, 1) fixed by the parts, so a decision
// does not depend on the order in which it is asked for.
func chance(parts ...any) float64 {
	return float64(hash(parts...)>>11) / (1 << 53)
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// Generate draws the episode of a seed.
func Generate(seed uint64) Episode {
	r := newRand(seed, "episode")
	ep := Episode{Seed: seed, Timeout: 250 * time.Millisecond}
	sw := Swarm{
		Fault:  pick(r, 0.2, 0.5, 0.8, 1.0),
		Net:    pick(r, 0.0, 0.3, 0.7),
		Stall:  pick(r, 0.0, 0.0, 0.1, 0.3),
		Quit:   pick(r, 0.0, 0.1, 0.3),
		Login:  pick(r, 0.0, 0.0, 0.1, 0.2),
		Refuse: pick(r, 0.0, 0.0, 0.05, 0.2),
		Stop:   pick(r, 0.0, 0.1, 0.3),
		Arrive: pick(r, 0.0, 0.3, 0.7),
		MDA:    pick(r, 0.0, 0.2, 0.5),
	}
	ep.Swarm = sw
	ep.Messages = pick(r, 0, 1, 2, 3, 5, 8, 12, 20, 30)
	c := &ep.Config
	// An MDA costs a process or two per message: fewer of them.
	c.Target = pick(r, Maildir, Maildir, Maildir, Maildir, Maildir, Maildir, Mbox, Mbox, Mbox, MDA)
	c.Keep = r.IntN(4) == 0
	if r.IntN(5) == 0 {
		c.MaxMessages = 1 + r.IntN(6)
	}
	if r.IntN(8) == 0 {
		c.MaxSize = int64(pick(r, 600, 1500, 4000, 12000))
	}
	c.ReceivedHeader = r.IntN(5) != 0
	p := &ep.Policy
	p.Poison, p.StatusLine = -1, -1
	switch r.IntN(10) {
	case 0, 1, 2:
		p.Retention = pop3test.ExpireRetrieved
		p.ExpireCapa = pick(r, "EXPIRE 0", "EXPIRE0")
	case 3, 4:
		p.Retention = pop3test.HideRetrieved
	}
	p.ReuseUIDs = r.IntN(10) == 0
	p.NoUIDL = !c.Keep && r.IntN(10) == 0
	p.NoPipeline = r.IntN(5) == 0
	if r.IntN(10) == 0 {
		p.ListSizeDelta = int64(pick(r, -40, -3, 5, 100))
	}
	if ep.Messages > 2 && r.IntN(25) == 0 {
		p.Poison = r.IntN(ep.Messages)
	}
	if ep.Messages > 0 && r.IntN(25) == 0 {
		p.StatusLine = r.IntN(ep.Messages)
	}
	ep.ClockStep = pick(r, time.Duration(0), time.Millisecond, 10*time.Millisecond, 300*time.Millisecond)

	runs := 1 + r.IntN(5)
	estimate := int64(ep.Messages) * 6000
	for i := 0; i < runs; i++ {
		ep.Runs = append(ep.Runs, drawRun(r, sw, ep, estimate))
	}
	drawDisk(newRand(seed, "disk"), &ep)
	drawMTA(newRand(seed, mtaStream), &ep)
	return ep
}

// mtaStream names the stream that makes some episodes deliver to a mail
// server over LMTP or SMTP, and draws its faults. Like the disk's, it is
// a stream of its own, and its name was chosen so that the episodes of
// regressionSeeds (cmd/internal/enginesim) stay what they were.
const mtaStream = "mta-i"

// drawMTA turns one episode in eight into one that delivers over LMTP or
// SMTP, and draws the server's faults for its faulty runs. An SMTP server
// takes no NUL and no bare CR (such a message fails alone, and stays on
// the POP3 server: deliver's TestSMTPNotSendable), so these episodes'
// messages have none (see simTrap).
func drawMTA(r *rand.Rand, ep *Episode) {
	if r.IntN(8) != 0 {
		return
	}
	ep.Config.Target = pick(r, LMTP, SMTP)
	p := pick(r, 0.0, 0.3, 0.7, 1.0)
	for i := range ep.Runs {
		ep.Runs[i].MDAFail, ep.Runs[i].MDAFailRate = 0, 0
		if r.Float64() >= p {
			continue
		}
		f := &MTAFault{TempFail: pick(r, 0.0, 0.0, 0.1, 0.5), PermFail: pick(r, 0.0, 0.0, 0.1, 0.3)}
		if r.IntN(2) == 0 {
			f.CutAt = 1 + r.IntN(max(ep.Messages, 1))
			f.CutKept = r.IntN(2) == 0
		}
		ep.Runs[i].MTA = f
	}
}

// drawDisk draws the disk faults of the faulty runs, from a stream of
// its own, so that the rest of an episode is what it was before disks
// could fail (the regression seeds name episodes).
func drawDisk(r *rand.Rand, ep *Episode) {
	p := pick(r, 0.0, 0.0, 0.3, 0.6, 1.0)
	ep.Swarm.Disk = p
	// a fetch makes some tens of calls, and a few per message
	calls := 40 + 12*int64(ep.Messages)
	for i := range ep.Runs {
		if r.Float64() >= p {
			continue
		}
		f := &DiskFault{AtOp: 1 + r.Int64N(calls)}
		switch r.IntN(6) {
		case 0, 1:
			f.Crash = true
		case 2, 3:
			f.Crash, f.Power = true, true
		default:
			f.Errno = pick(r, syscall.ENOSPC, syscall.ENOSPC, syscall.EIO, syscall.EROFS)
		}
		ep.Runs[i].Disk = f
	}
}

// drawRun draws the faults of one faulty run.
func drawRun(r *rand.Rand, sw Swarm, ep Episode, estimate int64) RunFaults {
	f := RunFaults{Session: 1}
	if r.Float64() < sw.Arrive {
		f.Arrivals = 1 + r.IntN(4)
	}
	if r.IntN(30) == 0 {
		f.Rename = true
	}
	f.Check = r.IntN(8) == 0
	if r.Float64() >= sw.Fault {
		return f
	}
	if r.IntN(4) == 0 {
		f.Session = 2
	}
	if r.Float64() < sw.Net {
		n := &pop3test.NetFault{Received: r.IntN(3) == 0}
		switch {
		case n.Received:
			n.After = r.Int64N(60 + 40*int64(ep.Messages))
		case r.IntN(2) == 0: // the protocol before the bodies
			n.After = r.Int64N(400 + 40*int64(ep.Messages))
		default:
			n.After = r.Int64N(400 + estimate)
		}
		if r.Float64() < sw.Stall {
			// mostly shorter than the client's timeout; now and then
			// longer, so the timeout is what ends the session
			n.Stall = pick(r, 5*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond, 2*ep.Timeout)
		}
		f.Net = n
	}
	if r.Float64() < sw.Quit {
		if r.IntN(2) == 0 {
			f.QuitLost = true
		} else {
			f.QuitDropped = true
		}
	}
	if r.Float64() < sw.Login {
		f.Login = pick(r, "-ERR [IN-USE] mailbox busy", "-ERR [SYS/TEMP] try again later")
	}
	if r.Float64() < sw.Refuse {
		f.RefuseRetr = pick(r, 0.0, 0.1, 0.5)
		f.RefuseDele = pick(r, 0.0, 0.1, 0.5)
		f.RefuseQuit = pick(r, 0.0, 0.0, 1.0)
	}
	if r.Float64() < sw.Stop {
		f.StopAt, f.StopAtN = "RETR", 1+r.IntN(max(ep.Messages, 1))
		switch r.IntN(6) {
		case 0:
			f.StopAt, f.StopAtN = pick(r, "CAPA", "UIDL", "LIST"), 1
		case 1:
			f.StopAt, f.StopAtN = "DELE", 1+r.IntN(max(ep.Messages, 1))
		}
	}
	if ep.Config.Target == MDA && r.Float64() < sw.MDA {
		f.MDAFail = pick(r, 75, 1)
		f.MDAFailRate = pick(r, 0.1, 0.5, 1.0)
	}
	return f
}

// String describes the episode, for a failure report.
func (ep Episode) String() string {
	var b strings.Builder
	c, p := ep.Config, ep.Policy
	fmt.Fprintf(&b, "seed %d: %d messages; %s", ep.Seed, ep.Messages, c.Target)
	if c.Keep {
		b.WriteString(" keep")
	} else {
		b.WriteString(" delete")
	}
	if c.MaxMessages > 0 {
		fmt.Fprintf(&b, " max_messages=%d", c.MaxMessages)
	}
	if c.MaxSize > 0 {
		fmt.Fprintf(&b, " max_size=%d", c.MaxSize)
	}
	if !c.ReceivedHeader {
		b.WriteString(" received_header=false")
	}
	b.WriteString("; server:")
	switch p.Retention {
	case pop3test.ExpireRetrieved:
		fmt.Fprintf(&b, " expire-retrieved (%s)", p.ExpireCapa)
	case pop3test.HideRetrieved:
		b.WriteString(" hide-retrieved (gmail)")
	default:
		b.WriteString(" rfc1939")
	}
	for _, s := range []struct {
		on   bool
		name string
	}{{p.ReuseUIDs, "reuse-uids"}, {p.NoUIDL, "no-uidl"}, {p.NoPipeline, "no-pipelining"}} {
		if s.on {
			b.WriteString(" " + s.name)
		}
	}
	if p.ListSizeDelta != 0 {
		fmt.Fprintf(&b, " list-size%+d", p.ListSizeDelta)
	}
	if p.Poison >= 0 {
		fmt.Fprintf(&b, " poison=message-%d", p.Poison)
	}
	if p.StatusLine >= 0 {
		fmt.Fprintf(&b, " status-line=message-%d", p.StatusLine)
	}
	fmt.Fprintf(&b, "; clock step %v\n", ep.ClockStep)
	for i, f := range ep.Runs {
		fmt.Fprintf(&b, "  run %d: %s\n", i+1, f)
	}
	b.WriteString("  then clean runs")
	return b.String()
}

func (f RunFaults) String() string {
	var parts []string
	if f.Arrivals > 0 {
		parts = append(parts, fmt.Sprintf("%d arrive", f.Arrivals))
	}
	if f.Rename {
		parts = append(parts, "UIDs renamed")
	}
	if f.Check {
		parts = append(parts, "check --list first")
	}
	at := ""
	if f.Session != 1 {
		at = fmt.Sprintf(" (session %d)", f.Session)
	}
	if n := f.Net; n != nil {
		dir := "sent"
		if n.Received {
			dir = "received"
		}
		s := fmt.Sprintf("cut after %d octets %s%s", n.After, dir, at)
		if n.Stall > 0 {
			s = fmt.Sprintf("stall %v after %d octets %s%s, then cut", n.Stall, n.After, dir, at)
		}
		parts = append(parts, s)
	}
	if f.QuitLost {
		parts = append(parts, "QUIT answer lost"+at)
	}
	if f.QuitDropped {
		parts = append(parts, "dropped at QUIT before UPDATE"+at)
	}
	if f.Login != "" {
		parts = append(parts, fmt.Sprintf("login refused %q%s", f.Login, at))
	}
	if f.RefuseRetr+f.RefuseDele+f.RefuseQuit > 0 {
		parts = append(parts, fmt.Sprintf("refuse RETR %.0f%% DELE %.0f%% QUIT %.0f%%", 100*f.RefuseRetr, 100*f.RefuseDele, 100*f.RefuseQuit))
	}
	if f.StopAt != "" {
		parts = append(parts, fmt.Sprintf("SIGTERM at %s #%d", f.StopAt, f.StopAtN))
	}
	if f.MDAFail != 0 {
		parts = append(parts, fmt.Sprintf("MDA exits %d for %.0f%%", f.MDAFail, 100*f.MDAFailRate))
	}
	if f.Disk != nil {
		parts = append(parts, f.Disk.String())
	}
	if f.MTA != nil {
		parts = append(parts, f.MTA.String())
	}
	if len(parts) == 0 {
		return "no fault"
	}
	return strings.Join(parts, ", ")
}

package deliver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MDAOptions tunes an MDA. The zero value is ready to use.
type MDAOptions struct {
	// Timeout bounds how long the MDA may run for one message, from its
	// start, which comes once the message has been received whole, to its
	// exit. 0 means 5 minutes. When it runs out, the MDA's process group
	// is killed.
	Timeout time.Duration
}

// mdaStderrLimit bounds how much of an MDA's stderr is kept.
const mdaStderrLimit = 4 << 10

// MDA delivers each message by running a command (procmail, maildrop,
// dovecot-lda, any program) with the message on its standard input.
//
// The command is split into arguments as a POSIX shell would (quotes and
// backslashes), but never run by a shell: $, `, ;, |, globs and the like
// are ordinary characters. In each argument after the first, %F becomes the
// envelope sender (MAILER-DAEMON when there is none, as Postfix's pipe(8)
// does: procmail -f with an empty argument writes a broken From_ line),
// %T the recipient, %% a single %; any other % is kept. The substitution
// happens after the splitting, so each placeholder stays inside its one
// argument whatever it holds. Control characters in the sender and
// recipient become '_'. The program name may not hold a placeholder. A
// sender may begin with '-': write %F as an option's value (-f %F), never
// as an argument of its own, which the MDA could take for an option.
//
// Each message is its own batch: Deliver returns nil once the MDA has
// exited 0, which makes the message its responsibility; Commit does
// nothing. The MDA runs in its own process group, with our environment
// and working directory; its stdout is discarded and the start of its
// stderr is kept for the error.
type MDA struct {
	path string   // the program, found in $PATH
	args []string // args[0] as written
	opts MDAOptions
	buf  []byte
}

// NewMDA prepares the command. It fails, with an *Error, on a command
// that cannot be split (unterminated quote, final backslash, nothing but
// blanks), a placeholder in the program name, or a program not found.
func NewMDA(command string, opts MDAOptions) (*MDA, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	args, err := splitCommand(command)
	if err != nil {
		return nil, &Error{Target: "mda", Op: "parsing the command", Err: err}
	}
	if hasPlaceholder(args[0]) {
		return nil, &Error{Target: "mda", Op: "parsing the command",
			Err: fmt.Errorf("%%F or %%T in the program name %q", args[0])}
	}
	args[0] = expandPlaceholders(args[0], "", "")
	path, err := exec.LookPath(args[0])
	if err != nil {
		return nil, &Error{Target: "mda", Op: "finding the program", Err: err}
	}
	return &MDA{path: path, args: args, opts: opts, buf: make([]byte, 64<<10)}, nil
}

// argv returns the command's arguments for one message.
func (m *MDA) argv(env Envelope) []string {
	sender := mdaArg(bareSender(env.Sender))
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	recipient := mdaArg(env.Recipient)
	argv := make([]string, len(m.args))
	argv[0] = m.args[0]
	for i, a := range m.args[1:] {
		argv[i+1] = expandPlaceholders(a, sender, recipient)
	}
	return argv
}

// mdaArg replaces control characters, which have no place in an address
// and could forge header lines in what an MDA writes (a From_ line, a
// Return-Path); NUL cannot even be passed.
func mdaArg(s string) string {
	return replaceBytes(s, func(c byte) bool { return c < ' ' || c == 0x7f })
}

// Deliver runs the command with the message on its stdin and waits for it.
//
// The message is first copied to an unlinked temporary file (in
// os.TempDir, $TMPDIR), and the MDA reads that file. An MDA fed through a
// pipe cannot tell the end of its input from the end of the message: had
// we died in the middle of one (kill -9, the OOM killer), it would have
// delivered the cut message as a whole one. Given a file, it has the whole
// message or is never started. Each message has its own file, and the MDA
// gets a read-only descriptor of its own on it: a process the MDA leaves
// behind holding its standard input can read that message again, never
// another one.
//
// The error is an *Error:
//   - the MDA exited 75 (EX_TEMPFAIL): Temporary and MessageOnly, Err an *ExitError;
//   - it exited otherwise than 0, was killed by a signal, or ran out of
//     time: MessageOnly, Err an *ExitError;
//   - reading the message failed: Source, Err the reader's error; the MDA
//     was not started;
//   - the message could not be spooled, or the program could not be
//     started: neither.
//
// An MDA that exits 0 without reading the whole message has accepted it.
func (m *MDA) Deliver(env Envelope, r io.Reader) error {
	spool, err := m.spool(r)
	if err != nil {
		return err
	}

	argv := m.argv(env)
	cmd := exec.Command(m.path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	defer spool.Close()
	cmd.Stdin = spool
	stderr := &headBuffer{limit: mdaStderrLimit}
	cmd.Stderr = stderr
	// A grandchild that keeps stderr open must not hold Wait forever.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return &Error{Target: "mda", Op: "running " + argv[0], Err: err}
	}

	// The watchdog kills the process group when the MDA runs longer than
	// Timeout. It never fires once the MDA has been waited for: after that
	// its process group id may belong to another.
	var (
		mu       sync.Mutex
		exited   bool
		timedOut bool
	)
	pgid := cmd.Process.Pid
	watchdog := time.AfterFunc(m.opts.Timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			timedOut = true
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	})
	werr := cmd.Wait()
	mu.Lock()
	exited = true
	tout := timedOut
	mu.Unlock()
	watchdog.Stop()
	if errors.Is(werr, exec.ErrWaitDelay) {
		// It exited 0 but left a process holding its stderr: that
		// process is on its own, the message is delivered. It may hold
		// its spool file too, which no other message ever uses.
		werr = nil
	}
	if werr == nil && !tout {
		return nil
	}
	xe := &ExitError{Status: -1, Stderr: stderr.b, timeout: m.opts.Timeout}
	var ee *exec.ExitError
	switch {
	case tout:
		xe.TimedOut = true
	case errors.As(werr, &ee):
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			xe.Signal = ws.Signal()
		} else {
			xe.Status = ws.ExitStatus()
		}
	default: // Wait's own failure
		return &Error{Target: "mda", Op: "running " + argv[0], Err: werr, MessageOnly: true}
	}
	return &Error{Target: "mda", Op: "running " + argv[0], Err: xe,
		Temporary: xe.Status == exTempFail, MessageOnly: true}
}

// spool copies the message to a new temporary file and returns a
// read-only descriptor of it, opened on its own (its own offset) before
// the file is unlinked: the MDA's standard input. The descriptor written
// through is closed, so nothing popfetch does later moves the MDA's
// offset or changes what it reads.
func (m *MDA) spool(r io.Reader) (*os.File, error) {
	w, err := os.CreateTemp("", "popfetch-mda-")
	if err != nil {
		return nil, &Error{Target: "mda", Op: "spooling the message", Err: err}
	}
	defer w.Close()
	rf, err := os.Open(w.Name())
	os.Remove(w.Name()) // only our descriptors, and the MDA's, hold it now
	if err == nil {
		err = sameFile(w, rf)
	}
	if err != nil {
		if rf != nil {
			rf.Close()
		}
		return nil, &Error{Target: "mda", Op: "spooling the message", Err: err}
	}
	if _, err := copyMessage(w, r, m.buf); err != nil {
		rf.Close()
		return nil, wrap("mda", "spooling the message in "+filepath.Dir(w.Name()), err)
	}
	return rf, nil
}

// sameFile makes sure that the file opened again by name is the one
// created, not one put in its place (in a $TMPDIR others can write).
func sameFile(a, b *os.File) error {
	ai, err := a.Stat()
	if err != nil {
		return err
	}
	bi, err := b.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(ai, bi) {
		return fmt.Errorf("%s was replaced while it was being opened", a.Name())
	}
	return nil
}

// exTempFail is EX_TEMPFAIL of sysexits.h: "try again later".
const exTempFail = 75

// Commit does nothing: a message is delivered once the MDA has exited 0.
func (m *MDA) Commit() error { return nil }

// Close does nothing: each message's spool file is closed once its MDA
// has exited.
func (m *MDA) Close() error { return nil }

// ExitError is the Err of an MDA's *Error when the MDA failed: it exited
// with a status other than 0, was killed by a signal, or ran out of time.
type ExitError struct {
	Status   int            // exit status; -1 if it was killed
	Signal   syscall.Signal // the signal that killed it, if not TimedOut
	TimedOut bool           // we killed it after MDAOptions.Timeout
	Stderr   []byte         // the first bytes (at most 4 KiB) it wrote on stderr
	timeout  time.Duration
}

func (e *ExitError) Error() string {
	var s string
	switch {
	case e.TimedOut:
		s = fmt.Sprintf("killed after waiting %v for it", e.timeout)
	case e.Signal != 0:
		s = "killed by signal " + e.Signal.String()
	case e.Status == exTempFail:
		s = "exited with status 75 (temporary failure)"
	default:
		s = fmt.Sprintf("exited with status %d", e.Status)
	}
	if msg := oneLine(e.Stderr, 300); msg != "" {
		s += ": " + msg
	}
	return s
}

// oneLine makes the start of a program's output fit in one line of an
// error message: control characters and runs of blanks become one space.
func oneLine(b []byte, limit int) string {
	var sb strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(string(b), "?") {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		space = false
		if sb.Len() >= limit {
			sb.WriteString("…")
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// headBuffer keeps the first limit bytes written to it and swallows the
// rest, so a chatty child never blocks on a full pipe.
type headBuffer struct {
	b     []byte
	limit int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if n := min(len(p), h.limit-len(h.b)); n > 0 {
		h.b = append(h.b, p[:n]...)
	}
	return len(p), nil
}

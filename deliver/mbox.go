package deliver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// MboxOptions tunes an Mbox. The zero value is ready to use.
type MboxOptions struct {
	// LockTimeout bounds the wait for the mailbox's locks at the start of
	// a batch; 0 means 60 seconds. When it runs out, Deliver returns an
	// *Error wrapping ErrLocked.
	LockTimeout time.Duration
	// StaleLockAge is the age after which a dotlock (PATH.lock) is taken as
	// left by a crashed program and removed; 0 means 5 minutes, as
	// liblockfile. A dotlock of popfetch's own on this host whose process
	// is gone is removed at once. Our own dotlock is refreshed while held, so a long batch
	// is never taken as stale by others.
	StaleLockAge time.Duration
	// FS is the file system the mbox is on; nil means the real one.
	FS vfs.FS
	// Journal, if set, makes a crash never leave a cut-off message in the
	// mbox (see mboxspool.go): it names the files of popfetch's own, in
	// its state directory, that spool a batch (Journal + ".spool") and
	// journal its append (Journal + ".journal"). RecoverMbox reads them
	// after a crash. Without it, messages are appended as they come, and
	// a kill in the middle of one leaves it cut off.
	Journal string
}

// Mbox appends messages to an mbox file in the mboxrd format: each message
// is preceded by a "From SENDER DATE" line and followed by an empty line,
// and every line of the message matching ^>*From gets one more '>' (so
// the quoting is undone exactly by removing one '>' from every line
// matching ^>+From ). SENDER is the Envelope's Sender (without <>, spaces
// and control characters made '_'), or MAILER-DAEMON when empty; DATE is
// the time of delivery in UTC in asctime(3) form, "Mon Jan _2 15:04:05
// 2006". A message that does not end with a newline gets one, the only
// change besides the quoting: the format cannot tell such a message apart.
//
// Locking cooperates with procmail, mutt and the system MDAs: a dotlock
// PATH.lock (link trick, stale locks removed after StaleLockAge) and an
// fcntl write lock on the whole file. If the directory does not let us
// create a dotlock (a system spool such as /var/mail writable only by the
// group mail), the fcntl lock alone is taken, as Dovecot's dotlock_try
// does, after waiting for any fresh dotlock of another program to go: the
// mail readers and MDAs that write such spools all take the fcntl lock
// too. The locks are taken without blocking and retried, all or none, so
// that we never sit on one while waiting for the other (mutt takes them in
// the opposite order to procmail).
//
// Batches: the first Deliver after a Commit takes the locks and notes the
// file's size; each Deliver appends one message, streamed through a
// buffer; Commit fsyncs the file and releases the locks. A Deliver that
// fails (reading the message or writing it) truncates the file back to
// where that message began, keeping the batch's earlier messages; a Commit
// that fails truncates the file back to where the batch began; Close
// truncates away a batch not committed. An Mbox is used by one goroutine.
type Mbox struct {
	fs       vfs.FS
	path     string
	lockPath string
	opts     MboxOptions

	buf []byte // copy buffer
	w   *bufio.Writer
	cw  countWriter
	q   mboxrdWriter

	// the batch, while the locks are held (f != nil)
	f          vfs.File
	dl         *dotlock // nil without a dotlock
	noDotlock  bool     // the directory refused a dotlock once
	start, end int64    // file size at the batch's start, after its last message
	sep        string   // to write before the next message, if the file lacks its final empty line
	atime      time.Time
	broken     error // a truncation failed: the file holds a partial message
	syncDir    bool  // we created the file: its name is durable once the directory is synced
	closed     bool

	// with a Journal: the batch spooled, not yet appended
	spool    vfs.File
	spooled  []spooledMessage
	spoolEnd int64
}

// OpenMbox opens the mbox file path for appending, creating it (mode
// 0600) if missing; the directory must exist. It takes no lock: that is
// done by the first Deliver of each batch. Errors are *Error.
func OpenMbox(path string, opts MboxOptions) (*Mbox, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 60 * time.Second
	}
	if opts.StaleLockAge <= 0 {
		opts.StaleLockAge = 5 * time.Minute
	}
	fsys := vfs.OrOS(opts.FS)
	f, _, err := openMboxFile(fsys, path)
	if err != nil {
		return nil, &Error{Target: "mbox", Op: "opening " + path, Err: errnoOf(err)}
	}
	f.Close()
	removeStaleLinkFiles(fsys, filepath.Dir(path))
	// The first commit syncs the mbox's directory, whether or not this
	// run created the file: a run that created it and failed before its
	// commit left its name not durable, and a power cut would take the
	// file, and all that later runs appended, with it.
	m := &Mbox{fs: fsys, path: path, lockPath: path + ".lock", opts: opts, buf: make([]byte, 64<<10), syncDir: true}
	m.w = bufio.NewWriterSize(&m.cw, 64<<10)
	return m, nil
}

// Deliver appends one message, taking the locks first if this is the
// first message of a batch (with a Journal, it spools the message, and
// Commit appends the batch). Errors are *Error; one wrapping ErrLocked if
// the locks could not be had within LockTimeout.
func (m *Mbox) Deliver(env Envelope, r io.Reader) error {
	if m.closed {
		return &Error{Target: "mbox", Op: "appending to " + m.path, Err: os.ErrClosed}
	}
	if m.opts.Journal != "" {
		return m.spoolMessage(env, r)
	}
	if m.broken != nil {
		return &Error{Target: "mbox", Op: "appending to " + m.path, Err: m.broken}
	}
	if m.f == nil {
		if err := m.lock(); err != nil {
			return err
		}
	}
	start := m.end
	n, err := m.writeMessage(m.f, m.sep, env, r)
	if err != nil {
		if terr := m.f.Truncate(start); terr != nil {
			// The file now holds part of a message; nothing more may be
			// appended after it. Close tries the truncation again.
			m.broken = fmt.Errorf("removing a partial message: %w", terr)
		}
		return wrap("mbox", "appending to "+m.path, err)
	}
	m.end = start + n
	m.sep = ""
	return nil
}

// writeMessage writes sep, the From_ line and the message read from r,
// mboxrd-quoted and ended with its empty line, to w through the Mbox's
// buffers, and returns the octets written. On error, what it still held
// is dropped, and w may hold part of the message.
func (m *Mbox) writeMessage(w io.Writer, sep string, env Envelope, r io.Reader) (int64, error) {
	m.cw.w, m.cw.n = w, 0
	m.w.Reset(&m.cw)
	m.w.WriteString(sep)
	m.w.WriteString(mboxFromLine(env.Sender, time.Now()))
	m.q.reset(m.w)
	_, err := copyMessage(&m.q, r, m.buf)
	if err == nil {
		err = m.q.finish()
	}
	if err == nil {
		err = m.w.Flush()
	}
	if err != nil {
		m.w.Reset(&m.cw)
	}
	return m.cw.n, err
}

// Commit fsyncs the messages appended since the last Commit and releases
// the locks. If the fsync fails, those messages are truncated away. With
// a Journal, it appends the spooled batch (see appendSpool).
func (m *Mbox) Commit() error {
	if m.opts.Journal != "" {
		return m.appendSpool()
	}
	if m.f == nil {
		return nil
	}
	if m.broken != nil {
		return m.abortWith(&Error{Target: "mbox", Op: "appending to " + m.path, Err: m.broken})
	}
	return m.finishAppend()
}

// Close truncates away messages not committed and releases the locks.
// Further calls of Deliver fail.
func (m *Mbox) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.spool != nil {
		m.spool.Close()
		m.spool = nil
	}
	if m.f == nil {
		return nil
	}
	return m.abort()
}

// abortWith aborts the batch after err; if the abort fails too (the
// batch's messages could not be truncated away), both are returned.
func (m *Mbox) abortWith(err *Error) error {
	if aerr := m.abort(); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// abort truncates the file back to the batch's start and unlocks.
func (m *Mbox) abort() error {
	var err error
	if terr := m.f.Truncate(m.start); terr != nil {
		err = &Error{Target: "mbox", Op: "removing uncommitted messages from " + m.path, Err: terr}
	} else {
		m.broken = nil
	}
	if uerr := m.unlock(); uerr != nil && err == nil {
		err = &Error{Target: "mbox", Op: "unlocking " + m.path, Err: uerr}
	}
	return err
}

// lock takes the dotlock and the fcntl lock, retrying until LockTimeout,
// and prepares the batch.
func (m *Mbox) lock() error {
	deadline := time.Now().Add(m.opts.LockTimeout)
	var pause, next time.Duration
	for {
		held, err := m.tryLock()
		if err != nil {
			return &Error{Target: "mbox", Op: "locking " + m.path, Err: err}
		}
		if held == "" {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &Error{Target: "mbox", Op: "locking " + m.path,
				Err: fmt.Errorf("%w (%s held for more than %v)", ErrLocked, held, m.opts.LockTimeout)}
		}
		pause, next = lockPause(next)
		time.Sleep(min(pause, left))
	}
}

// tryLock tries once to take both locks. If another program holds one, it
// releases what it took and says which was held.
func (m *Mbox) tryLock() (held string, err error) {
	var dl *dotlock
	if !m.noDotlock {
		dl, err = tryDotlock(m.fs, m.lockPath, m.opts.StaleLockAge, max(min(m.opts.StaleLockAge/5, time.Minute), 10*time.Millisecond))
		switch {
		case errors.Is(err, errNoDotlock):
			m.noDotlock = true
		case err != nil:
			return "", fmt.Errorf("creating the dotlock %s: %w", m.lockPath, err)
		case dl == nil:
			return "the dotlock " + m.lockPath, nil
		}
	}
	if m.noDotlock {
		// We cannot take the dotlock, but we respect one another program
		// holds (and ignore a stale one we cannot remove).
		if fi, err := m.fs.Lstat(m.lockPath); err == nil && time.Since(fi.ModTime) < m.opts.StaleLockAge {
			return "the dotlock " + m.lockPath, nil
		}
	}
	release := func() {
		if dl != nil {
			dl.release()
		}
	}
	f, created, err := openMboxFile(m.fs, m.path)
	if err != nil {
		release()
		return "", err
	}
	m.syncDir = m.syncDir || created
	ok, err := f.TryLock(vfs.LockFcntl)
	if err != nil || !ok {
		f.Close()
		release()
		return "the fcntl lock", err
	}
	// The name may have been given to another file between open and lock
	// (a mail reader that rewrites the mailbox by rename): lock that one.
	st, err := f.Stat()
	if err != nil {
		f.Close()
		release()
		return "", err
	}
	if pst, err := m.fs.Stat(m.path); err != nil || st.ID != pst.ID {
		f.Close()
		release()
		return "the mailbox (replaced while locking)", nil
	}
	// The messages before ours must end with an empty line, or our From
	// line would not start a message (procmail, for one, does not write
	// that empty line).
	sep := ""
	if st.Size > 0 {
		var tail [2]byte
		t := tail[:min(st.Size, 2)]
		if _, err := f.ReadAt(t, st.Size-int64(len(t))); err != nil {
			f.Close()
			release()
			return "", err
		}
		switch {
		case bytes.HasSuffix(t, []byte("\n\n")) || string(t) == "\n":
		case t[len(t)-1] == '\n':
			sep = "\n"
		default:
			sep = "\n\n"
		}
	}
	m.f, m.dl = f, dl
	m.cw.w = f
	m.start, m.end, m.sep = st.Size, st.Size, sep
	m.atime = st.AccessTime
	return "", nil
}

// openMboxFile opens the mbox for appending (and reading its end),
// creating it with mode 0600 if missing, and says whether it created it.
//
// As Postfix's local delivery and procmail do, it never creates a file
// through a symbolic link, and appends only to a regular file owned by
// popfetch's user with one link, reached directly or through a symbolic
// link of the user's own or root's: otherwise another user who can write
// the directory (a shared spool, /tmp) could make popfetch write mail into
// a file of their choosing, such as ~/.ssh/authorized_keys. Refusals are
// *UnsafeMboxError.
func openMboxFile(fsys vfs.FS, path string) (f vfs.File, created bool, err error) {
	for range 3 {
		li, err := fsys.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			// O_EXCL: a name that exists, even as a dangling link, fails
			f, err = fsys.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				continue // made by another program meanwhile: look again
			}
			return f, err == nil, err
		}
		if err != nil {
			return nil, false, err
		}
		flag := os.O_RDWR | os.O_APPEND
		switch {
		case !li.IsSymlink() && !li.IsRegular():
			// not opened at all: opening a device or a FIFO can have effects
			return nil, false, &UnsafeMboxError{Path: path, Reason: "it is not a regular file"}
		case li.IsSymlink():
			if uid := os.Geteuid(); li.UID != uid && li.UID != 0 {
				return nil, false, &UnsafeMboxError{Path: path, Reason: fmt.Sprintf(
					"it is a symbolic link owned by uid %d, neither yours (uid %d) nor root's: someone else chose where it points", li.UID, uid)}
			}
		default:
			flag |= vfs.O_NOFOLLOW
		}
		f, err = fsys.OpenFile(path, flag, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist) && li.IsSymlink():
			if _, lerr := fsys.Lstat(path); lerr == nil {
				return nil, false, &UnsafeMboxError{Path: path, Reason: "it is a symbolic link to a file that does not exist, " +
					"and popfetch does not create a mailbox through a symbolic link: create the file, or name it instead of the link"}
			}
			continue
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ELOOP):
			continue // removed, or replaced by a link, meanwhile: look again
		case err != nil:
			return nil, false, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, false, err
		}
		if !li.IsSymlink() && st.ID != li.ID {
			f.Close()
			continue // replaced meanwhile
		}
		if err := safeMbox(path, st); err != nil {
			f.Close()
			return nil, false, err
		}
		return f, false, nil
	}
	return nil, false, &UnsafeMboxError{Path: path, Reason: "it kept changing while popfetch opened it"}
}

// safeMbox checks that an existing mbox is a file popfetch may append to.
func safeMbox(path string, st vfs.Info) error {
	uid := os.Geteuid()
	switch {
	case !st.IsRegular():
		return &UnsafeMboxError{Path: path, Reason: "it is not a regular file"}
	case st.UID != uid:
		return &UnsafeMboxError{Path: path, Reason: fmt.Sprintf(
			"it is owned by uid %d, not by popfetch's user (uid %d): popfetch appends only to a mailbox of its user", st.UID, uid)}
	case st.Links != 1:
		return &UnsafeMboxError{Path: path, Reason: fmt.Sprintf(
			"it has %d hard links, and another name of it may be in a place others control: "+
				"popfetch appends only to a mailbox with one link", st.Links)}
	}
	return nil
}

// UnsafeMboxError is an mbox popfetch refuses to write to, and why. It is
// wrapped in an *Error.
type UnsafeMboxError struct {
	Path   string
	Reason string
}

func (e *UnsafeMboxError) Error() string { return "refusing to deliver: " + e.Reason }

// unlock releases the fcntl lock (by closing the file) and the dotlock,
// in the reverse order of taking them.
func (m *Mbox) unlock() error {
	err := m.f.Close()
	if m.dl != nil {
		if derr := m.dl.release(); err == nil {
			err = derr
		}
	}
	m.f, m.dl, m.cw.w = nil, nil, nil
	return err
}

// errnoOf returns the cause of a *fs.PathError, whose path the *Error's Op
// already names.
func errnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// mboxFromLine returns the From_ line starting a message.
func mboxFromLine(sender string, t time.Time) string {
	s := mboxSender(sender)
	return "From " + s + " " + t.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n"
}

// mboxSender makes an envelope sender fit for a From_ line: no angle
// brackets, no blanks or control characters (a From_ line is split on
// blanks); MAILER-DAEMON for the null sender.
func mboxSender(sender string) string {
	s := bareSender(sender)
	if s == "" {
		return "MAILER-DAEMON"
	}
	return replaceBytes(s, func(c byte) bool { return c <= ' ' || c == 0x7f })
}

// replaceBytes replaces the bytes of s that bad picks with '_', byte by
// byte: other bytes, 8-bit or not valid UTF-8, stay as they are.
func replaceBytes(s string, bad func(byte) bool) string {
	b := []byte(s)
	for i, c := range b {
		if bad(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

// bareSender removes blanks around, and one pair of angle brackets from,
// an envelope sender taken from a Return-Path.
func bareSender(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// countWriter counts the bytes written to w.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// mboxrdWriter applies the mboxrd quoting to a stream: a line matching
// ^>*From gets one more '>'. It looks at most at the start of each line,
// keeping no more than a count of '>' and up to five bytes, so lines of
// any length pass, split anywhere across Writes. finish ends the message:
// a final newline if missing, then the empty separator line.
type mboxrdWriter struct {
	w      io.Writer
	inLine bool  // past the start of the current line
	gts    int64 // '>' at the start of the line, not yet written
	from   int   // bytes of "From " matched after them, not yet written
	last   byte  // the last byte of the message
	any    bool  // the message is not empty
}

var gtRun = bytes.Repeat([]byte{'>'}, 512)

func (q *mboxrdWriter) reset(w io.Writer) { *q = mboxrdWriter{w: w} }

func (q *mboxrdWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	q.last, q.any = p[n-1], true
	for len(p) > 0 {
		if q.inLine {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				_, err := q.w.Write(p)
				return n, err
			}
			if _, err := q.w.Write(p[:i+1]); err != nil {
				return 0, err
			}
			p = p[i+1:]
			q.inLine = false
			continue
		}
		c := p[0]
		switch {
		case q.from == 0 && c == '>':
			q.gts++
			p = p[1:]
		case c == "From "[q.from]:
			q.from++
			p = p[1:]
			if q.from == len("From ") {
				q.gts++ // the quoting
				if err := q.flushPending(); err != nil {
					return 0, err
				}
				q.inLine = true
			}
		default:
			// not a From line: what was held back goes out as it was,
			// and c is looked at as part of the line (it may be '\n')
			if err := q.flushPending(); err != nil {
				return 0, err
			}
			q.inLine = true
		}
	}
	return n, nil
}

// flushPending writes the '>' and the part of "From " held back.
func (q *mboxrdWriter) flushPending() error {
	for q.gts > 0 {
		k := min(q.gts, int64(len(gtRun)))
		if _, err := q.w.Write(gtRun[:k]); err != nil {
			return err
		}
		q.gts -= k
	}
	if q.from > 0 {
		if _, err := io.WriteString(q.w, "From "[:q.from]); err != nil {
			return err
		}
		q.from = 0
	}
	return nil
}

func (q *mboxrdWriter) finish() error {
	if err := q.flushPending(); err != nil {
		return err
	}
	end := "\n"
	if q.any && q.last != '\n' {
		end = "\n\n"
	}
	_, err := io.WriteString(q.w, end)
	return err
}

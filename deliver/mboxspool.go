package deliver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// The journaled batch of an Mbox (MboxOptions.Journal; the format and the
// recovery decision are in mboxjournal.go). For each batch:
//
//  1. Deliver writes each message, From_ line and mboxrd quoting done, to
//     the spool, a file of popfetch's own in its state directory: the
//     mbox is not touched, and nothing of the batch is visible in it.
//  2. Commit fsyncs the spool, takes the mbox's locks, writes and fsyncs
//     the journal (the mbox's identity and size, the separator, and where
//     each message ends in the spool), appends the spool to the mbox,
//     fsyncs it, releases the locks, and marks the journal done (fsync).
//
// A crash before step 2's journal is durable leaves the mbox as it was.
// A crash after it leaves the journal and the spool: RecoverMbox compares
// the mbox's tail with them, truncates a cut-off tail of ours, and says
// which messages are in the mbox whole, so that they are recorded rather
// than fetched again. So an mbox never keeps a cut-off message of
// popfetch's, and a crash costs no duplicate. The locks are held only
// while the batch is appended.

const (
	spoolSuffix   = ".spool"
	journalSuffix = ".journal"
	doneLine      = "done\n"
)

// spoolMessage writes one message to the spool, opening a fresh spool for
// the first message of a batch.
func (m *Mbox) spoolMessage(env Envelope, r io.Reader) error {
	spoolPath := m.opts.Journal + spoolSuffix
	if m.broken != nil {
		return &Error{Target: "mbox", Op: "appending to " + m.path, Err: m.broken}
	}
	if m.spool == nil {
		// The journal of the last batch, if any, is done, or describes
		// an append that was undone (the mbox is back where it was, so
		// a comparison with this spool finds nothing to do): a
		// recovery needs the old spool no more.
		f, err := m.fs.OpenFile(spoolPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC|vfs.O_NOFOLLOW, 0o600)
		if err != nil {
			return &Error{Target: "mbox", Op: "opening the spool " + spoolPath, Err: errnoOf(err)}
		}
		m.spool, m.spooled, m.spoolEnd = f, m.spooled[:0], 0
	}
	start := m.spoolEnd
	n, err := m.writeMessage(m.spool, "", env, r)
	if err != nil {
		if terr := m.spool.Truncate(start); terr != nil {
			// The spool holds a part of this message after the batch's
			// others: the batch is dropped, and must not be committed
			// as if those were in it (Commit fails, so none of them is
			// recorded: they stay on the server).
			m.discardSpool()
			m.broken = fmt.Errorf("the spool could not be cut back after a failed message, so its batch was dropped: %w", terr)
			return errors.Join(wrap("mbox", "spooling to "+spoolPath, err),
				&Error{Target: "mbox", Op: "truncating " + spoolPath, Err: terr})
		}
		return wrap("mbox", "spooling to "+spoolPath, err)
	}
	m.spoolEnd = start + n
	m.spooled = append(m.spooled, spooledMessage{ID: env.ID, End: m.spoolEnd, Listed: env.ListedSize})
	return nil
}

// appendSpool appends the spooled batch to the mbox, journaled. If it
// fails, the mbox is truncated back to where it was, and the batch is
// dropped: none of it may be taken as delivered.
func (m *Mbox) appendSpool() error {
	if m.broken != nil {
		m.discardSpool()
		return &Error{Target: "mbox", Op: "appending to " + m.path, Err: m.broken}
	}
	if m.spool == nil || len(m.spooled) == 0 {
		return nil
	}
	defer m.discardSpool()
	spoolPath := m.opts.Journal + spoolSuffix
	journalPath := m.opts.Journal + journalSuffix
	if err := m.spool.Sync(); err != nil {
		return &Error{Target: "mbox", Op: "syncing the spool " + spoolPath, Err: err}
	}
	if err := m.lock(); err != nil {
		return err
	}
	st, err := m.f.Stat()
	if err != nil {
		return m.abortWith(&Error{Target: "mbox", Op: "appending to " + m.path, Err: err})
	}
	j := &appendJournal{Mbox: m.path, Dev: st.ID.Dev, Ino: st.ID.Ino, Start: m.start, Sep: m.sep, Msgs: m.spooled}
	if err := writeDurably(m.fs, journalPath, j.marshal()); err != nil {
		return m.abortWith(&Error{Target: "mbox", Op: "writing the journal " + journalPath, Err: err})
	}
	// From here on a crash is recovered from the journal.
	if _, err := io.WriteString(m.f, m.sep); err != nil {
		return m.abortWith(&Error{Target: "mbox", Op: "appending to " + m.path, Err: err})
	}
	var from int64
	for i, msg := range m.spooled {
		_, err := copyMessage(m.f, io.NewSectionReader(m.spool, from, msg.End-from), m.buf)
		if err != nil {
			if i == 0 {
				return m.abortWith(wrap("mbox", "appending to "+m.path, err))
			}
			// A full disk, most likely: keep the messages that fit, for
			// the next run's recovery to record (the journal is not
			// done), so each run gets further; this one fails.
			return m.keepWhole(from, wrap("mbox", "appending to "+m.path, err))
		}
		from = msg.End
	}
	m.sep = ""
	if err := m.finishAppend(); err != nil {
		return err
	}
	// The append is durable: the journal says so, and needs the spool
	// no more. If this mark is lost, recovery compares the spool, which
	// stays until the next batch.
	if err := appendDurably(m.fs, journalPath, doneLine); err != nil {
		return &Error{Target: "mbox", Op: "marking the journal " + journalPath, Err: err}
	}
	return nil
}

// keepWhole ends an append that failed after the messages of the spool up
// to spoolEnd: the mbox is cut back to their end, made durable and
// unlocked, and err is returned. The journal is left not done, so the
// next run's RecoverMbox finds those messages whole and they are recorded
// then; if the mbox cannot be cut back, abortWith undoes it all.
func (m *Mbox) keepWhole(spoolEnd int64, err *Error) error {
	end := m.start + int64(len(m.sep)) + spoolEnd
	if terr := m.f.Truncate(end); terr != nil {
		return m.abortWith(err)
	}
	m.sep = ""
	// the spool must stay as the journal describes it, for the recovery
	m.broken = errors.New("an append failed part way; the next run finishes it")
	if ferr := m.finishAppend(); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// finishAppend makes an append durable: fsync the mbox, sync the
// directory of an mbox we created, restore the access time, unlock. On
// failure the append is truncated away.
func (m *Mbox) finishAppend() error {
	if err := m.f.Sync(); err != nil {
		return m.abortWith(&Error{Target: "mbox", Op: "syncing " + m.path, Err: err})
	}
	if m.syncDir {
		if err := m.fs.SyncDir(filepath.Dir(m.path)); err != nil {
			return m.abortWith(&Error{Target: "mbox", Op: "syncing the directory of " + m.path, Err: err})
		}
		m.syncDir = false
	}
	m.fs.Chtimes(m.path, m.atime, time.Time{})
	if err := m.unlock(); err != nil {
		return &Error{Target: "mbox", Op: "unlocking " + m.path, Err: err}
	}
	return nil
}

// discardSpool ends the spooled batch (the spool file stays, for a
// recovery, until the next batch truncates it).
func (m *Mbox) discardSpool() {
	if m.spool != nil {
		m.spool.Close()
		m.spool = nil
	}
	m.spooled, m.spoolEnd = m.spooled[:0], 0
}

// MboxRecovery is what RecoverMbox found of an append interrupted by a
// crash.
type MboxRecovery struct {
	// Whole are the IDs (Envelope.ID) of the messages of the append that
	// are in the mbox whole: delivered, to be recorded as such.
	Whole []string
	// Sizes are their Envelope.ListedSize, by ID.
	Sizes map[string]int64
	// Truncated is how many octets of a cut-off append were removed.
	Truncated int64
	// Foreign is true when the mbox holds something else where the
	// append was (another program wrote after it, or a mail reader
	// rewrote the file): the mbox is left as it is.
	Foreign bool
}

// RecoverMbox removes the locks a killed popfetch left (its dotlock, if
// its process is gone) and finishes, after a crash, the journaled append of an earlier
// run (MboxOptions.Journal must be set): under the mbox's locks, a
// cut-off tail of popfetch's append is truncated away, and the messages
// that made it whole are reported. It does nothing, and returns a zero
// MboxRecovery, when there is no journal. The journal stays until the
// next batch, or ForgetMboxJournal: the caller records Whole first. A
// recovery repeated before that finds the same.
func RecoverMbox(path string, opts MboxOptions) (MboxRecovery, error) {
	var rec MboxRecovery
	fsys := vfs.OrOS(opts.FS)
	// Locks a killed popfetch left behind go first, even when there is
	// nothing to deliver (CONTRACT §5): its dotlock, and the files it
	// links to take one.
	dir := filepath.Dir(path)
	removeStaleLinkFiles(fsys, dir)
	if holderDead(fsys, path+".lock") {
		fsys.Remove(path + ".lock")
	}
	if opts.Journal == "" {
		return rec, nil
	}
	journalPath := opts.Journal + journalSuffix
	data, err := readSmall(fsys, journalPath)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, &Error{Target: "mbox", Op: "reading the journal " + journalPath, Err: err}
	}
	done := len(data) >= len(doneLine) && string(data[len(data)-len(doneLine):]) == doneLine
	if done {
		data = data[:len(data)-len(doneLine)]
	}
	j, err := parseJournal(data)
	if err != nil || j.Mbox != path {
		// never made durable (the append did not begin), or of another
		// mbox: nothing to recover
		return rec, nil
	}
	rec.Sizes = map[string]int64{}
	for _, msg := range j.Msgs {
		rec.Sizes[msg.ID] = msg.Listed
	}
	if done {
		for _, msg := range j.Msgs {
			rec.Whole = append(rec.Whole, msg.ID)
		}
		return rec, nil
	}
	if _, err := fsys.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		// Nothing to recover. An mbox the append created is lost with
		// it in a power cut before its name was made durable; one that
		// held mail was removed since.
		rec.Foreign = j.Start > 0
		return rec, nil
	}
	mb, err := OpenMbox(path, opts)
	if err != nil {
		return rec, err
	}
	defer mb.Close()
	if err := mb.lock(); err != nil {
		return rec, err
	}
	defer mb.unlock()
	st, err := mb.f.Stat()
	if err != nil {
		return rec, &Error{Target: "mbox", Op: "recovering " + path, Err: err}
	}
	if st.ID.Dev != j.Dev || st.ID.Ino != j.Ino {
		rec.Foreign = true // another file now: a mail reader rewrote it
		return rec, nil
	}
	spool, err := fsys.OpenFile(opts.Journal+spoolSuffix, os.O_RDONLY|vfs.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// The append begins only once the journal and the spool are
		// durable, names too (writeDurably syncs their directory): a
		// power cut before that can keep the journal's name and lose
		// the spool's. The append had not begun.
		return rec, nil
	}
	if err != nil {
		return rec, &Error{Target: "mbox", Op: "recovering " + path + " from its spool", Err: errnoOf(err)}
	}
	defer spool.Close()
	r, err := recoverAppend(j, mb.f, st.Size, spool)
	if err != nil {
		return rec, &Error{Target: "mbox", Op: "recovering " + path, Err: err}
	}
	if r.TruncateTo >= 0 {
		if err := mb.f.Truncate(r.TruncateTo); err != nil {
			return rec, &Error{Target: "mbox", Op: "removing a cut-off append from " + path, Err: err}
		}
		rec.Truncated = st.Size - r.TruncateTo
	}
	// What a killed run appended may still be in the page cache only:
	// whole messages are reported, and then recorded and deleted from
	// the server, only once they are durable.
	if err := mb.f.Sync(); err != nil {
		return MboxRecovery{}, &Error{Target: "mbox", Op: "syncing " + path, Err: err}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return MboxRecovery{}, &Error{Target: "mbox", Op: "syncing the directory of " + path, Err: err}
	}
	rec.Whole, rec.Foreign = r.Whole, r.Foreign
	return rec, nil
}

// ForgetMboxJournal removes the journal and the spool of an mbox, once
// what RecoverMbox found is recorded. Until then a recovery may be done
// again, to the same result: its truncation is durable, and a journal
// says "done" only of an append that ended whole.
func ForgetMboxJournal(opts MboxOptions) error {
	if opts.Journal == "" {
		return nil
	}
	fsys := vfs.OrOS(opts.FS)
	err := removeIfExists(fsys, opts.Journal+journalSuffix)
	if serr := removeIfExists(fsys, opts.Journal+spoolSuffix); err == nil {
		err = serr
	}
	if err == nil {
		// durably: a journal a power cut brought back would be read
		// again, long after, when its UIDs may name other messages
		err = fsys.SyncDir(filepath.Dir(opts.Journal))
	}
	return err
}

// TidyMboxJournal removes the journal and the spool of an mbox whose last
// append ended whole, once it is recorded. A journal that is not done (an
// append that failed part way, whose whole messages the next RecoverMbox
// is to find) stays.
func TidyMboxJournal(opts MboxOptions) error {
	if opts.Journal == "" {
		return nil
	}
	data, err := readSmall(vfs.OrOS(opts.FS), opts.Journal+journalSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !bytes.HasSuffix(data, []byte(doneLine)):
		if _, perr := parseJournal(data); perr == nil {
			return nil // for the next recovery
		}
	}
	return ForgetMboxJournal(opts)
}

// writeDurably replaces the contents of the file path with data,
// fsynced, its name too. A crash may leave it cut short, which
// parseJournal tells from a whole one.
func writeDurably(fsys vfs.FS, path string, data []byte) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|vfs.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	return err
}

// appendDurably appends s to the file path, fsynced.
func appendDurably(fsys vfs.FS, path, s string) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_APPEND|vfs.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, s)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readSmall reads a journal, at most 64 MiB.
func readSmall(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY|vfs.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

func removeIfExists(fsys vfs.FS, path string) error {
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

package deliver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// Maildir delivers into a Maildir (https://cr.yp.to/proto/maildir.html):
// each message is written to tmp/ under a unique name, and moved to new/
// once durable, with its size in the name (",S=size", as Dovecot and
// Courier read it).
//
// Durability is grouped: Deliver writes and leaves the file open in tmp/;
// Commit fsyncs the files of the batch in parallel (the journal commits
// them together), or, with MaildirOptions.SyncFS and a batch of 32 or
// more, syncs the whole file system at once (syncfs(2)), then renames them
// into new/ and fsyncs new/ once. A file is
// in new/ only once its data is on disk, so a crash never shows a mail
// reader a truncated message; what a crash leaves in tmp/ is removed by
// mail readers after 36 hours, as the Maildir spec says.
type Maildir struct {
	fs      vfs.FS
	dir     string
	host    string
	buf     []byte
	pending []pendingFile
	fssync  vfs.FSSync // nil: each file is synced
}

type pendingFile struct {
	f    vfs.File
	tmp  string
	name string // the name in new/
	size int64
}

// MaildirOptions tunes a Maildir. The zero value is ready to use.
type MaildirOptions struct {
	// FS is the file system the Maildir is on; nil means the real one.
	FS vfs.FS
	// SyncFS makes a Commit of at least syncFSMin messages sync the whole
	// file system (syncfs(2)) instead of each file, where the system can
	// (vfs.OpenFSSync).
	SyncFS bool
}

// syncFSMin is the smallest batch synced with syncfs(2): on the rig's ext4
// one syncfs costs about what 32 fsyncs run 8 at a time do (BENCHMARKS.md).
const syncFSMin = 32

var maildirSeq atomic.Uint64

// OpenMaildir opens the Maildir at dir, creating it and its cur, new and
// tmp subdirectories (mode 0700) if missing; each directory it creates is
// made durable in its parent, so that a crash cannot take away a directory
// (and what was delivered into it) that a later fsync of the files made
// durable. Files that a popfetch of this host left in tmp/ when it was
// killed are removed (see tmpMarker); other programs' files are never
// touched.
func OpenMaildir(dir string, opts MaildirOptions) (*Maildir, error) {
	fsys := vfs.OrOS(opts.FS)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if _, err := vfs.MkdirAll(fsys, filepath.Join(dir, sub), 0o700); err != nil {
			return nil, &Error{Target: "maildir", Op: "creating the Maildir", Err: err}
		}
	}
	// The Maildir's own names, durable whoever made them: a run that
	// created the directories and failed to sync them left them so, and
	// a power cut would take new/ with what later runs delivered into it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := fsys.SyncDir(d); err != nil {
			return nil, &Error{Target: "maildir", Op: "syncing " + d, Err: err}
		}
	}
	m := &Maildir{fs: fsys, dir: dir, host: maildirHost(), buf: make([]byte, 64<<10)}
	if opts.SyncFS {
		// opened before any message is written: it reports the errors of
		// writing them back
		m.fssync = vfs.OpenFSSync(fsys, filepath.Join(dir, "tmp"))
	}
	m.removeStaleTmp()
	return m, nil
}

// removeStaleTmp removes what killed runs of popfetch left in tmp/.
func (m *Maildir) removeStaleTmp() { TidyMaildir(m.dir, MaildirOptions{FS: m.fs}) }

// TidyMaildir removes, from the Maildir at dir, the files that runs of
// popfetch of this host left in tmp/ when they were killed (CONTRACT §5),
// without creating anything: a run with nothing to deliver tidies too.
// It is housekeeping: a failure changes nothing else, and other
// programs' files are never touched.
func TidyMaildir(dir string, opts MaildirOptions) {
	fsys := vfs.OrOS(opts.FS)
	tmp := filepath.Join(dir, "tmp")
	names, err := fsys.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, name := range staleTmp(names, maildirHost(), fsys.Getpid(), fsys.ProcessAlive) {
		fsys.Remove(filepath.Join(tmp, name))
	}
}

// maildirHost is this host's name as unique names hold it: "/" and ":"
// written as octal, as the Maildir spec says.
func maildirHost() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
}

// uniqueName returns a name unique to this delivery: time, microseconds,
// process, a counter and randomness (the Maildir spec's modern form).
func (m *Maildir) uniqueName() string {
	now := time.Now()
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, m.fs.Getpid(),
		maildirSeq.Add(1), hex.EncodeToString(r[:]), m.host)
}

// Deliver writes the message to a new file in tmp/.
func (m *Maildir) Deliver(_ Envelope, r io.Reader) error {
	base := m.uniqueName()
	tmp := filepath.Join(m.dir, "tmp", tmpName(base))
	f, err := m.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return &Error{Target: "maildir", Op: "creating " + tmp, Err: err}
	}
	size, err := copyMessage(f, r, m.buf)
	if err != nil {
		f.Close()
		m.fs.Remove(tmp)
		return wrap("maildir", "writing "+tmp, err)
	}
	name := base + ",S=" + strconv.FormatInt(size, 10)
	m.pending = append(m.pending, pendingFile{f: f, tmp: tmp, name: name, size: size})
	return nil
}

// Commit makes the messages delivered since the last Commit durable and
// visible in new/.
func (m *Maildir) Commit() error {
	if len(m.pending) == 0 {
		return nil
	}
	batch := m.pending
	m.pending = nil
	if err := m.sync(batch); err != nil {
		m.discard(batch)
		return &Error{Target: "maildir", Op: "syncing messages in " + filepath.Join(m.dir, "tmp"), Err: err}
	}
	for i, p := range batch {
		if err := p.f.Close(); err != nil {
			m.discard(batch[i+1:])
			m.fs.Remove(p.tmp)
			for _, q := range batch[:i] {
				m.fs.Remove(q.tmp)
			}
			return &Error{Target: "maildir", Op: "closing " + p.tmp, Err: err}
		}
	}
	newDir := filepath.Join(m.dir, "new")
	for i, p := range batch {
		dst := filepath.Join(newDir, p.name)
		if err := m.fs.RenameNoReplace(p.tmp, dst); err != nil {
			for _, q := range batch[i:] {
				m.fs.Remove(q.tmp)
			}
			return &Error{Target: "maildir", Op: "moving " + p.tmp + " to new/", Err: err}
		}
	}
	if err := m.fs.SyncDir(newDir); err != nil {
		return &Error{Target: "maildir", Op: "syncing " + newDir, Err: err}
	}
	return nil
}

// sync makes the data of a batch durable.
func (m *Maildir) sync(batch []pendingFile) error {
	if m.fssync != nil && len(batch) >= syncFSMin {
		var pending int64
		for _, p := range batch {
			pending += p.size
		}
		if m.fssync.Worth(pending) {
			return m.fssync.Sync()
		}
	}
	files := make([]vfs.File, len(batch))
	for i, p := range batch {
		files[i] = p.f
	}
	return vfs.SyncFiles(m.fs, files)
}

// Close discards messages not committed.
func (m *Maildir) Close() error {
	m.discard(m.pending)
	m.pending = nil
	if m.fssync != nil {
		m.fssync.Close()
	}
	return nil
}

func (m *Maildir) discard(batch []pendingFile) {
	for _, p := range batch {
		p.f.Close()
		m.fs.Remove(p.tmp)
	}
}

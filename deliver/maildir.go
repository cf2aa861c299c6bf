package deliver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popfetch/popfetch/internal/durable"
)

// Maildir delivers into a Maildir (https://cr.yp.to/proto/maildir.html):
// each message is written to tmp/ under a unique name, and moved to new/
// once durable, with its size in the name (",S=size", as Dovecot and
// Courier read it).
//
// Durability is grouped: Deliver writes and leaves the file open in tmp/;
// Commit fsyncs the files of the batch in parallel (the journal commits
// them together), renames them into new/ and fsyncs new/ once. A file is
// in new/ only once its data is on disk, so a crash never shows a mail
// reader a truncated message; what a crash leaves in tmp/ is removed by
// mail readers after 36 hours, as the Maildir spec says.
type Maildir struct {
	dir     string
	host    string
	buf     []byte
	pending []pendingFile
}

type pendingFile struct {
	f    *os.File
	tmp  string
	name string // the name in new/
}

var maildirSeq atomic.Uint64

// OpenMaildir opens the Maildir at dir, creating it and its cur, new and
// tmp subdirectories (mode 0700) if missing; a directory it creates is
// made durable in its parent. Files that a popfetch of this host left in
// tmp/ when it was killed are removed (see tmpMarker); other programs'
// files are never touched.
func OpenMaildir(dir string) (*Maildir, error) {
	if err := mkdirDurable(dir); err != nil {
		return nil, &Error{Target: "maildir", Op: "creating the Maildir", Err: err}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := mkdirDurable(filepath.Join(dir, sub)); err != nil {
			return nil, &Error{Target: "maildir", Op: "creating the Maildir", Err: err}
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// The Maildir spec: "/" and ":" in the host name are written as octal.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	m := &Maildir{dir: dir, host: host, buf: make([]byte, 64<<10)}
	m.removeStaleTmp()
	return m, nil
}

// mkdirDurable creates dir and its missing parents (mode 0700), and
// fsyncs the parent of each directory it creates, so that a crash cannot
// take away a directory (and what was delivered into it) that a later
// fsync of the files made durable.
func mkdirDurable(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return durable.SyncDir(parent)
}

// removeStaleTmp removes what killed runs of popfetch left in tmp/. It is
// housekeeping: a failure changes nothing else.
func (m *Maildir) removeStaleTmp() {
	tmp := filepath.Join(m.dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	alive := func(pid int) bool { return !errors.Is(unix.Kill(pid, 0), unix.ESRCH) }
	for _, name := range staleTmp(names, m.host, os.Getpid(), alive) {
		os.Remove(filepath.Join(tmp, name))
	}
}

// uniqueName returns a name unique to this delivery: time, microseconds,
// process, a counter and randomness (the Maildir spec's modern form).
func (m *Maildir) uniqueName() string {
	now := time.Now()
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(),
		maildirSeq.Add(1), hex.EncodeToString(r[:]), m.host)
}

// Deliver writes the message to a new file in tmp/.
func (m *Maildir) Deliver(_ Envelope, r io.Reader) error {
	base := m.uniqueName()
	tmp := filepath.Join(m.dir, "tmp", tmpName(base))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return &Error{Target: "maildir", Op: "creating " + tmp, Err: err}
	}
	size, err := copyMessage(f, r, m.buf)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return wrap("maildir", "writing "+tmp, err)
	}
	name := base + ",S=" + strconv.FormatInt(size, 10)
	m.pending = append(m.pending, pendingFile{f: f, tmp: tmp, name: name})
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
	if err := syncAll(batch); err != nil {
		discard(batch)
		return &Error{Target: "maildir", Op: "syncing messages in " + filepath.Join(m.dir, "tmp"), Err: err}
	}
	for i, p := range batch {
		if err := p.f.Close(); err != nil {
			discard(batch[i:])
			return &Error{Target: "maildir", Op: "closing " + p.tmp, Err: err}
		}
	}
	newDir := filepath.Join(m.dir, "new")
	for i, p := range batch {
		dst := filepath.Join(newDir, p.name)
		if err := renameNoReplace(p.tmp, dst); err != nil {
			for _, q := range batch[i:] {
				os.Remove(q.tmp)
			}
			return &Error{Target: "maildir", Op: "moving " + p.tmp + " to new/", Err: err}
		}
	}
	if err := durable.SyncDir(newDir); err != nil {
		return &Error{Target: "maildir", Op: "syncing " + newDir, Err: err}
	}
	return nil
}

// Close discards messages not committed.
func (m *Maildir) Close() error {
	discard(m.pending)
	m.pending = nil
	return nil
}

func discard(batch []pendingFile) {
	for _, p := range batch {
		p.f.Close()
		os.Remove(p.tmp)
	}
}

// syncAll fsyncs the files, several at once: the file system's journal then
// commits them in a few transactions instead of one each.
func syncAll(batch []pendingFile) error {
	const workers = 8
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		mu    sync.Mutex
		first error
	)
	for w := 0; w < min(workers, len(batch)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batch) {
					return
				}
				if err := batch[i].f.Sync(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// renameNoReplace renames, failing if dst exists: a name clash must never
// overwrite a delivered message.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// a file system without RENAME_NOREPLACE: link fails if dst exists
		if err = os.Link(src, dst); err == nil {
			err = os.Remove(src)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

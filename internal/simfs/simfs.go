// Package simfs is a simulated disk for crash and fault tests: an
// in-memory file system, reached through vfs.FS, that knows what is
// durable and can fail any call.
//
// Durability follows POSIX strictly. A file's data is durable up to its
// last Sync. A change to a directory (a name created, linked, renamed or
// removed; a directory made) is durable once the directory that gains the
// name — for a removal, the directory that loses it — was synced
// (SyncDir) after it. Nothing else is: not a file's name because its data
// was synced, not a rename because its source directory was synced.
//
// Two kinds of crash:
//
//   - CrashProcess is kill -9 of every simulated process: all that was
//     written survives (the kernel's page cache has it); open files are
//     closed and their locks released.
//   - CrashPower is a power cut: what is durable survives, and of what is
//     not, a part drawn from a seeded RNG: each directory change not yet
//     durable is kept or lost as a whole (a rename moves the name or does
//     not), independently of the others, in the order they were made; the
//     data of a file written since its last Sync is kept, lost, or torn
//     (a prefix of what was written kept, as when the power fails in the
//     middle of writing back).
//
// Faults: a Rule fails a chosen call (by kind, path pattern, the Nth
// match, or the operation's number) with an error such as ENOSPC, EIO or
// EROFS; SetSpace makes a disk of a given size, full when it is reached;
// OnOp sees every call first and may fail it or crash the disk there.
// Every call is counted (Op.N), so a simulator can say "fault at
// operation N" and replay it.
//
// Processes: each Proc is one simulated process with its own open files
// and locks (the FS a run of popfetch is given). Locks belong to the open
// file, as flock(2) and open file description locks do: two opens
// conflict even within one process. A dead process's calls fail with
// ErrDead.
//
// Deterministic: the same calls in the same order with the same seed give
// the same disk. Concurrent callers make the order depend on the
// scheduler; vfs.SyncFiles syncs one file after the other on a simulated
// disk for this reason.
//
// Paths are slash-separated; a relative path is taken from "/". The disk
// starts with an empty root directory. Permissions are recorded, not
// enforced.
package simfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// ErrDead is the error of every call of a process that died (Proc.Kill,
// FS.CrashProcess, FS.CrashPower).
var ErrDead = errors.New("simfs: the process is dead")

// Options tunes a simulated disk. The zero value is ready to use.
type Options struct {
	// Now returns the time files are stamped with; nil means time.Now.
	Now func() time.Time
	// UID owns the files made through the disk; 0 means os.Geteuid()
	// (root as the owner: set it with Chown).
	UID int
	// Umask is applied to the permissions of created files and
	// directories; 0 means 0o022. Set it to -1 for none.
	Umask int
	// TornZeros makes a torn write of CrashPower show zeros in place of
	// the data not written back (a file system that grew the file before
	// writing its blocks), instead of the data itself.
	TornZeros bool
}

// FS is a simulated disk. Its methods are safe for concurrent use; the
// file system calls are made through a Proc (NewProcess).
type FS struct {
	mu      sync.Mutex
	opts    Options
	st      *state
	procs   map[int]*Proc // live processes by pid
	nextPid int
	ops     int64
	counts  [numKinds]int64
	rules   []*rule
	hook    func(Op) error
	space   int64 // -1: unlimited
}

// New returns an empty disk.
func New(opts Options) *FS {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UID == 0 {
		opts.UID = os.Geteuid()
	}
	switch {
	case opts.Umask == 0:
		opts.Umask = 0o022
	case opts.Umask < 0:
		opts.Umask = 0
	}
	return &FS{opts: opts, st: newState(), procs: map[int]*Proc{}, nextPid: 1000, space: -1}
}

// NewProcess starts a simulated process: the vfs.FS a run is given.
func (d *FS) NewProcess() *Proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextPid++
	p := &Proc{d: d, pid: d.nextPid, files: map[*file]struct{}{}}
	d.procs[p.pid] = p
	return p
}

// CrashProcess kills every process, as kill -9 would: what was written
// stays (the page cache has it), open files are closed, locks released.
func (d *FS) CrashProcess() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killAll()
}

// CrashPower kills every process and leaves the disk as a power cut at
// this instant could: everything durable, and of the rest what rng draws
// (see the package documentation). After it, everything on the disk is
// durable.
func (d *FS) CrashPower(rng Rand) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killAll()
	d.st = d.st.crash(rng, d.opts.TornZeros)
}

// CrashClone returns a new disk holding what a power cut at this instant
// could leave, as CrashPower would, and leaves this disk alone. The clone
// has no processes, rules or hook, counts from 0, and has d's space limit.
func (d *FS) CrashClone(rng Rand) *FS {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := New(d.opts)
	c.st = d.st.crash(rng, d.opts.TornZeros)
	c.space = d.space
	return c
}

// Rand is the part of math/rand/v2's *rand.Rand a crash draws from.
type Rand interface {
	IntN(n int) int
}

func (d *FS) killAll() {
	for _, p := range d.procs {
		d.kill(p)
	}
}

func (d *FS) kill(p *Proc) {
	if p.dead {
		return
	}
	p.dead = true
	for f := range p.files {
		d.st.closeFile(f)
	}
	p.files = nil
	delete(d.procs, p.pid)
}

// SetSpace makes the disk hold at most n bytes of file data (the sum of
// the sizes of all files); a write beyond writes what fits and fails with
// ENOSPC. A negative n means no limit (the default).
func (d *FS) SetSpace(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.space = n
}

// Used returns the bytes of file data on the disk.
func (d *FS) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.used
}

// Ops returns the number of calls made so far: the next call is number
// Ops()+1.
func (d *FS) Ops() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ops
}

// Counts returns the number of calls made of each kind.
func (d *FS) Counts() map[OpKind]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[OpKind]int64{}
	for k, n := range d.counts {
		if n > 0 {
			m[OpKind(k)] = n
		}
	}
	return m
}

// OnOp sets a function called before each call is carried out (after the
// rules, if none failed it), without the disk's lock held: it may crash
// the disk (then the call fails with ErrDead) or return an error for the
// call to fail with. Nil removes it.
func (d *FS) OnOp(fn func(Op) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hook = fn
}

// Inject adds a rule. Every rule sees every call (counting its matches);
// the first that matches a call fails it.
func (d *FS) Inject(r Rule) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rules = append(d.rules, &rule{Rule: r})
}

// ClearRules removes every rule.
func (d *FS) ClearRules() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rules = nil
}

// OpKind is a kind of call.
type OpKind uint8

// The kinds of calls. OpenFile counts as OpCreate when os.O_CREATE is
// given, else OpOpen; Stat and Lstat of the FS and Stat of a File are
// OpStat, OpLstat and OpFstat.
const (
	OpOpen OpKind = iota + 1
	OpCreate
	OpRead
	OpReadAt
	OpWrite
	OpSync
	OpTruncate
	OpClose
	OpFstat
	OpLock
	OpStat
	OpLstat
	OpRename
	OpRenameNoReplace
	OpLink
	OpRemove
	OpMkdir
	OpReadDir
	OpSyncDir
	OpChtimes
	numKinds
)

var kindNames = [numKinds]string{"?", "open", "create", "read", "readat", "write", "sync", "truncate",
	"close", "fstat", "lock", "stat", "lstat", "rename", "rename-noreplace", "link", "remove",
	"mkdir", "readdir", "syncdir", "chtimes"}

func (k OpKind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("op%d", k)
}

// ParseOpKind returns the kind named as String names it.
func ParseOpKind(s string) (OpKind, bool) {
	for k := OpKind(1); k < numKinds; k++ {
		if kindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// Op is one call.
type Op struct {
	N     int64 // its number: the disk's calls count from 1
	Kind  OpKind
	Path  string // the file's name (for a File's calls, the name it was opened by)
	Path2 string // the new name of a rename or link
	Pid   int    // the process that made it
}

func (o Op) String() string {
	s := fmt.Sprintf("#%d %s %s", o.N, o.Kind, o.Path)
	if o.Path2 != "" {
		s += " -> " + o.Path2
	}
	return s
}

// Rule fails calls. Its fields narrow which: all those given must match.
type Rule struct {
	Kind OpKind // 0: any kind
	// Path is a path.Match pattern matched against the call's path (and
	// the new name of a rename or link); a pattern without '/' is matched
	// against the base name. "": any path.
	Path string
	// Nth fails only the Nth call matching Kind and Path (1: the first);
	// 0 fails every one.
	Nth int
	// At fails only the call numbered At (Op.N); 0: any.
	At int64
	// Err is the error, a syscall.Errno such as syscall.ENOSPC,
	// syscall.EIO or syscall.EROFS; nil means syscall.EIO.
	Err error
}

type rule struct {
	Rule
	seen  int
	spent bool
}

func (r *rule) match(op Op) bool {
	if r.spent || (r.Kind != 0 && r.Kind != op.Kind) || (r.At != 0 && r.At != op.N) {
		return false
	}
	if r.Path != "" && !matchPath(r.Path, op.Path) && !(op.Path2 != "" && matchPath(r.Path, op.Path2)) {
		return false
	}
	r.seen++
	if r.Nth == 0 {
		return true
	}
	if r.seen == r.Nth {
		r.spent = true
		return true
	}
	return false
}

func matchPath(pattern, name string) bool {
	if !strings.Contains(pattern, "/") {
		name = path.Base(name)
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// begin counts a call and decides whether it fails.
func (p *Proc) begin(kind OpKind, name, name2 string) (Op, error) {
	d := p.d
	d.mu.Lock()
	if p.dead {
		d.mu.Unlock()
		return Op{}, ErrDead
	}
	d.ops++
	d.counts[kind]++
	op := Op{N: d.ops, Kind: kind, Path: name, Path2: name2, Pid: p.pid}
	var err error
	for _, r := range d.rules {
		if r.match(op) && err == nil {
			err = r.Err
			if err == nil {
				err = syscall.EIO
			}
		}
	}
	hook := d.hook
	d.mu.Unlock()
	if err == nil && hook != nil {
		err = hook(op)
	}
	return op, err
}

// Proc is a simulated process: a vfs.FS whose open files and locks are
// its own. Its methods are safe for concurrent use.
type Proc struct {
	d     *FS
	pid   int
	dead  bool
	files map[*file]struct{}
}

var _ vfs.FS = (*Proc)(nil)

// Kill kills the process as kill -9 would: its files are closed and its
// locks released; what it wrote stays. Its later calls fail with ErrDead.
func (p *Proc) Kill() {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.d.kill(p)
}

// Pid returns the process's identity.
func (p *Proc) Pid() int { return p.pid }

// Getpid implements vfs.FS.
func (p *Proc) Getpid() int { return p.pid }

// ProcessAlive implements vfs.FS: a process of this disk that is alive.
func (p *Proc) ProcessAlive(pid int) bool {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	q := p.d.procs[pid]
	return q != nil && !q.dead
}

// do runs a call: counted, checked against the rules and the hook, then
// carried out by fn with the disk locked, unless the process died.
func (p *Proc) do(kind OpKind, op, name, name2 string, fn func(s *state) error) error {
	if _, err := p.begin(kind, name, name2); err != nil {
		return opError(op, name, name2, err)
	}
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	if p.dead {
		return opError(op, name, name2, ErrDead)
	}
	if err := fn(p.d.st); err != nil {
		return opError(op, name, name2, err)
	}
	return nil
}

func opError(op, name, name2 string, err error) error {
	if name2 != "" {
		return &os.LinkError{Op: op, Old: name, New: name2, Err: err}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// OpenFile implements vfs.FS.
func (p *Proc) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	kind := OpOpen
	if flag&os.O_CREATE != 0 {
		kind = OpCreate
	}
	var f *file
	err := p.do(kind, "open", name, "", func(s *state) error {
		var err error
		f, err = s.open(p, name, flag, perm)
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stat implements vfs.FS.
func (p *Proc) Stat(name string) (info vfs.Info, err error) {
	err = p.do(OpStat, "stat", name, "", func(s *state) error {
		var err error
		info, err = s.stat(name, true)
		return err
	})
	return info, err
}

// Lstat implements vfs.FS.
func (p *Proc) Lstat(name string) (info vfs.Info, err error) {
	err = p.do(OpLstat, "lstat", name, "", func(s *state) error {
		var err error
		info, err = s.stat(name, false)
		return err
	})
	return info, err
}

// Rename implements vfs.FS.
func (p *Proc) Rename(oldname, newname string) error {
	return p.do(OpRename, "rename", oldname, newname, func(s *state) error {
		return s.rename(oldname, newname, true, p.d.now())
	})
}

// RenameNoReplace implements vfs.FS.
func (p *Proc) RenameNoReplace(oldname, newname string) error {
	return p.do(OpRenameNoReplace, "rename", oldname, newname, func(s *state) error {
		return s.rename(oldname, newname, false, p.d.now())
	})
}

// Link implements vfs.FS.
func (p *Proc) Link(oldname, newname string) error {
	return p.do(OpLink, "link", oldname, newname, func(s *state) error {
		return s.link(oldname, newname, p.d.now())
	})
}

// Remove implements vfs.FS.
func (p *Proc) Remove(name string) error {
	return p.do(OpRemove, "remove", name, "", func(s *state) error {
		return s.remove(name, p.d.now())
	})
}

// Mkdir implements vfs.FS.
func (p *Proc) Mkdir(name string, perm fs.FileMode) error {
	return p.do(OpMkdir, "mkdir", name, "", func(s *state) error {
		return s.mkdir(name, perm&^fs.FileMode(p.d.opts.Umask), p.d.opts.UID, p.d.now())
	})
}

// ReadDir implements vfs.FS.
func (p *Proc) ReadDir(name string) (names []string, err error) {
	err = p.do(OpReadDir, "readdir", name, "", func(s *state) error {
		var err error
		names, err = s.readDir(name)
		return err
	})
	return names, err
}

// SyncDir implements vfs.FS.
func (p *Proc) SyncDir(name string) error {
	return p.do(OpSyncDir, "sync", name, "", func(s *state) error {
		return s.syncDir(name)
	})
}

// Chtimes implements vfs.FS.
func (p *Proc) Chtimes(name string, atime, mtime time.Time) error {
	return p.do(OpChtimes, "chtimes", name, "", func(s *state) error {
		_, _, n, err := s.walk(name, true)
		if err != nil {
			return err
		}
		if n == nil {
			return syscall.ENOENT
		}
		if !atime.IsZero() {
			n.atime = atime
		}
		if !mtime.IsZero() {
			n.mtime = mtime
		}
		return nil
	})
}

func (d *FS) now() time.Time { return d.opts.Now() }

// Setup and inspection: these calls are not counted, not failed by rules,
// and need no process. Those that change the disk make everything on it
// durable, as a disk set up before a run is.

// MkdirAll makes a directory and its missing parents, durable.
func (d *FS) MkdirAll(name string, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clean := cleanPath(name)
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		if err := d.st.mkdir(cur, perm, d.opts.UID, d.now()); err != nil && !errors.Is(err, syscall.EEXIST) {
			return &fs.PathError{Op: "mkdir", Path: cur, Err: err}
		}
	}
	d.st.settle()
	return nil
}

// WriteFile writes a durable file, replacing any; its directory must exist.
func (d *FS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	setup := &Proc{d: d, files: map[*file]struct{}{}}
	f, err := d.st.open(setup, name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f.ino.setData(d.st, append([]byte(nil), data...))
	d.st.closeFile(f)
	d.st.settle()
	return nil
}

// Symlink makes newname a durable symbolic link to target.
func (d *FS) Symlink(target, newname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, base, n, err := d.st.walk(newname, false)
	if err == nil && n != nil {
		err = syscall.EEXIST
	}
	if err != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: newname, Err: err}
	}
	l := d.st.newInode(fs.ModeSymlink|0o777, d.opts.UID, d.now())
	l.target = target
	d.st.change(nsOp{changes: []change{{dir, base, l}}, commit: dir})
	d.st.settle()
	return nil
}

// Chown sets the owner of the named file, following symbolic links.
func (d *FS) Chown(name string, uid int) error { return d.chown(name, uid, true) }

// Lchown sets the owner of the named file; a symbolic link itself.
func (d *FS) Lchown(name string, uid int) error { return d.chown(name, uid, false) }

func (d *FS) chown(name string, uid int, follow bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _, n, err := d.st.walk(name, follow)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err != nil {
		return &fs.PathError{Op: "chown", Path: name, Err: err}
	}
	n.uid = uid
	return nil
}

// Chmod sets the permissions of the named file, following symbolic links.
func (d *FS) Chmod(name string, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _, n, err := d.st.walk(name, true)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	n.mode = n.mode&fs.ModeType | perm&fs.ModePerm
	return nil
}

// ReadFile returns the contents of the named file as a process would read
// them now.
func (d *FS) ReadFile(name string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _, n, err := d.st.walk(name, true)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err == nil && n.isDir() {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return append([]byte(nil), n.data...), nil
}

// ReadDir returns the sorted names in a directory.
func (d *FS) ReadDir(name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names, err := d.st.readDir(name)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return names, nil
}

// Lstat describes the named file; a symbolic link itself.
func (d *FS) Lstat(name string) (vfs.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.st.stat(name, false)
	if err != nil {
		return vfs.Info{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return info, nil
}

// Walk calls fn for every file and directory under root (root included),
// in lexical order, as ReadDir and Lstat would show them at the call of
// Walk. fn may call the disk's methods.
func (d *FS) Walk(root string, fn func(name string, info vfs.Info) error) error {
	type entry struct {
		name string
		info vfs.Info
	}
	var all []entry
	d.mu.Lock()
	_, _, n, err := d.st.walk(root, false)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err == nil {
		var visit func(name string, n *inode)
		visit = func(name string, n *inode) {
			all = append(all, entry{name, n.info(path.Base(name))})
			if !n.isDir() {
				return
			}
			names := make([]string, 0, len(n.entries))
			for k := range n.entries {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				visit(path.Join(name, k), n.entries[k])
			}
		}
		visit(cleanPath(root), n)
	}
	d.mu.Unlock()
	if err != nil {
		return &fs.PathError{Op: "walk", Path: root, Err: err}
	}
	for _, e := range all {
		if err := fn(e.name, e.info); err != nil {
			return err
		}
	}
	return nil
}

// Pending returns the number of directory changes not yet durable and of
// files whose data is not: what a power cut now could lose.
func (d *FS) Pending() (dirChanges, files int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, op := range d.st.log {
		if !op.durable {
			dirChanges++
		}
	}
	for _, n := range d.st.inodes {
		if n.isFile() && n.live() && !n.clean() {
			files++
		}
	}
	return dirChanges, files
}

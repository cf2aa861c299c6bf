package simfs

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// state is the disk: the files as processes see them now, and what of it
// is durable.
type state struct {
	root    *inode
	nextIno uint64
	// inodes holds every inode that may still matter: named now, open, or
	// named by a durable or pending directory change.
	inodes map[uint64]*inode
	// durable is the durable namespace: directory -> name -> inode, as of
	// the changes folded into it.
	durable map[*inode]map[string]*inode
	// log holds the directory changes made after those folded into
	// durable, in order; a durable one is kept at a crash, the others are
	// drawn for.
	log  []*nsOp
	used int64 // bytes of data of the files named or open
}

// inode is a file, a directory or a symbolic link.
type inode struct {
	ino   uint64
	mode  fs.FileMode
	uid   int
	mtime time.Time
	atime time.Time
	nlink int // names (in the current namespace)
	opens int // open files

	data   []byte // what processes read
	synced []byte // what is durable
	shared bool   // data's array holds synced's bytes: copy before changing them

	entries map[string]*inode // of a directory
	target  string            // of a symbolic link

	flock, fcntl *file // lock holders
}

// change sets (to != nil) or removes a name.
type change struct {
	dir  *inode
	name string
	to   *inode
}

// nsOp is one directory change made by one call: kept or lost as a whole.
type nsOp struct {
	changes []change
	commit  *inode // the directory whose sync makes it durable
	durable bool
}

func newState() *state {
	s := &state{inodes: map[uint64]*inode{}, durable: map[*inode]map[string]*inode{}}
	s.root = s.newInode(fs.ModeDir|0o755, 0, time.Time{})
	s.root.nlink = 1
	return s
}

func (s *state) newInode(mode fs.FileMode, uid int, now time.Time) *inode {
	s.nextIno++
	n := &inode{ino: s.nextIno, mode: mode, uid: uid, mtime: now, atime: now}
	if mode.IsDir() {
		n.entries = map[string]*inode{}
	}
	s.inodes[n.ino] = n
	return n
}

func (n *inode) isDir() bool     { return n.mode.IsDir() }
func (n *inode) isFile() bool    { return n.mode.IsRegular() }
func (n *inode) isSymlink() bool { return n.mode&fs.ModeSymlink != 0 }
func (n *inode) live() bool      { return n.nlink > 0 || n.opens > 0 }
func (n *inode) clean() bool     { return bytes.Equal(n.data, n.synced) && len(n.data) == len(n.synced) }

func (n *inode) info(name string) vfs.Info {
	size := int64(len(n.data))
	if n.isSymlink() {
		size = int64(len(n.target))
	}
	return vfs.Info{Name: name, Size: size, Mode: n.mode, ModTime: n.mtime, AccessTime: n.atime,
		ID: vfs.FileID{Dev: 1, Ino: n.ino}, Links: uint64(n.nlink), UID: n.uid}
}

// setData replaces a file's data, keeping the count of bytes used.
func (n *inode) setData(s *state, data []byte) {
	if n.live() {
		s.used += int64(len(data)) - int64(len(n.data))
	}
	n.data = data
	n.shared = false
}

// writeAt writes p at off, growing the file (a gap reads as zeros); the
// caller checked the space.
func (n *inode) writeAt(s *state, p []byte, off int64) {
	end := off + int64(len(p))
	size := int64(len(n.data))
	if n.shared && min(off, size) < int64(len(n.synced)) {
		// bytes synced shares would change
		n.data = append([]byte(nil), n.data...)
		n.shared = false
	}
	if end > size {
		if n.live() {
			s.used += end - size
		}
		if end <= int64(cap(n.data)) {
			n.data = n.data[:end]
			clear(n.data[size:max(off, size)])
		} else {
			nd := make([]byte, end, max(end, 2*size))
			copy(nd, n.data)
			n.data = nd
			n.shared = false
		}
	}
	copy(n.data[off:], p)
}

// truncate sets a file's size.
func (n *inode) truncate(s *state, size int64) {
	if size <= int64(len(n.data)) {
		if n.live() {
			s.used -= int64(len(n.data)) - size
		}
		n.data = n.data[:size]
		return
	}
	n.writeAt(s, make([]byte, size-int64(len(n.data))), int64(len(n.data)))
}

// sync makes the file's data durable.
func (n *inode) sync() {
	n.synced = n.data[:len(n.data):len(n.data)]
	n.shared = true
}

// setEntry changes the current namespace.
func (s *state) setEntry(dir *inode, name string, to *inode) {
	old := dir.entries[name]
	if old == to {
		return
	}
	if to != nil {
		wasLive := to.live()
		to.nlink++
		if !wasLive {
			s.used += int64(len(to.data))
		}
		dir.entries[name] = to
	} else {
		delete(dir.entries, name)
	}
	if old != nil {
		old.nlink--
		if !old.live() {
			s.used -= int64(len(old.data))
		}
	}
}

// change applies a directory change and logs it.
func (s *state) change(op nsOp) {
	for _, c := range op.changes {
		s.setEntry(c.dir, c.name, c.to)
	}
	s.log = append(s.log, &op)
}

// syncDir makes the changes committed by a directory durable.
func (s *state) syncDir(name string) error {
	_, _, d, err := s.walk(name, true)
	if err != nil {
		return err
	}
	if d == nil {
		return syscall.ENOENT
	}
	if !d.isDir() {
		return syscall.ENOTDIR
	}
	for _, op := range s.log {
		if op.commit == d {
			op.durable = true
		}
	}
	s.fold()
	return nil
}

// fold moves the durable changes at the head of the log into the durable
// namespace.
func (s *state) fold() {
	i := 0
	for ; i < len(s.log) && s.log[i].durable; i++ {
		for _, c := range s.log[i].changes {
			m := s.durable[c.dir]
			if m == nil {
				m = map[string]*inode{}
				s.durable[c.dir] = m
			}
			if c.to == nil {
				delete(m, c.name)
			} else {
				m[c.name] = c.to
			}
		}
	}
	s.log = append(s.log[:0], s.log[i:]...)
}

// settle makes everything durable: the state of a disk set up before a run.
func (s *state) settle() {
	for _, op := range s.log {
		op.durable = true
	}
	s.fold()
	for _, n := range s.inodes {
		if n.isFile() {
			n.sync()
		}
	}
}

// crash returns the state a power cut could leave now.
func (s *state) crash(rng Rand, tornZeros bool) *state {
	ns := make(map[*inode]map[string]*inode, len(s.durable))
	for d, m := range s.durable {
		c := make(map[string]*inode, len(m))
		for k, v := range m {
			c[k] = v
		}
		ns[d] = c
	}
	for _, op := range s.log {
		if !op.durable && rng.IntN(2) == 0 {
			continue
		}
		for _, c := range op.changes {
			m := ns[c.dir]
			if m == nil {
				m = map[string]*inode{}
				ns[c.dir] = m
			}
			if c.to == nil {
				delete(m, c.name)
			} else {
				m[c.name] = c.to
			}
		}
	}

	// Rebuild from the root what the namespace reaches, in order of
	// inode numbers, so that the draws below come in the same order.
	t := &state{nextIno: s.nextIno, inodes: map[uint64]*inode{}, durable: map[*inode]map[string]*inode{}}
	copies := map[*inode]*inode{}
	var order []*inode
	var visit func(old *inode) *inode
	visit = func(old *inode) *inode {
		if c, ok := copies[old]; ok {
			c.nlink++
			return c
		}
		c := &inode{ino: old.ino, mode: old.mode, uid: old.uid, mtime: old.mtime, atime: old.atime,
			target: old.target, nlink: 1, data: old.data, synced: old.synced}
		copies[old] = c
		t.inodes[c.ino] = c
		order = append(order, old)
		if old.isDir() {
			c.entries = map[string]*inode{}
			names := make([]string, 0, len(ns[old]))
			for k := range ns[old] {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				child := ns[old][k]
				if child.isDir() && copies[child] != nil {
					continue // a directory reached twice: not in a tree built by calls
				}
				c.entries[k] = visit(child)
			}
		}
		return c
	}
	t.root = visit(s.root)
	sort.Slice(order, func(i, j int) bool { return order[i].ino < order[j].ino })
	for _, old := range order {
		c := copies[old]
		if !c.isFile() {
			continue
		}
		data := old.synced
		if !old.clean() {
			data = crashData(rng, old.synced, old.data, tornZeros)
		}
		c.data = append([]byte(nil), data...)
		c.synced = nil
		c.sync()
		t.used += int64(len(c.data))
	}
	for _, c := range copies {
		if c.isDir() {
			m := make(map[string]*inode, len(c.entries))
			for k, v := range c.entries {
				m[k] = v
			}
			t.durable[c] = m
		}
	}
	return t
}

// crashData draws what a power cut leaves of a file whose data is now
// data and durably synced: the old data, the new, or the new torn after
// the part they share.
func crashData(rng Rand, synced, data []byte, tornZeros bool) []byte {
	p := 0
	for p < len(synced) && p < len(data) && synced[p] == data[p] {
		p++
	}
	switch rng.IntN(3) {
	case 0:
		return synced
	case 1:
		return data
	}
	if len(data) <= p {
		// only a truncation: it happened or not
		if rng.IntN(2) == 0 {
			return synced
		}
		return data
	}
	k := p + rng.IntN(len(data)-p+1)
	out := append([]byte(nil), data[:k]...)
	if tornZeros {
		clear(out[p:])
	}
	return out
}

func cleanPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return path.Clean(name)
}

// walk resolves name: the directory holding its last element, that
// element, and the inode it names (nil if none). Symbolic links on the way
// are followed, and the last one too if follow is set.
func (s *state) walk(name string, follow bool) (dir *inode, base string, n *inode, err error) {
	p := cleanPath(name)
	for hops := 0; ; hops++ {
		if hops > 40 {
			return nil, "", nil, syscall.ELOOP
		}
		if p == "/" {
			return s.root, "/", s.root, nil
		}
		parts := strings.Split(p[1:], "/")
		cur, curPath := s.root, "/"
		restart := ""
		for i, part := range parts {
			if !cur.isDir() {
				return nil, "", nil, syscall.ENOTDIR
			}
			next := cur.entries[part]
			last := i == len(parts)-1
			if next != nil && next.isSymlink() && (!last || follow) {
				t := next.target
				if !strings.HasPrefix(t, "/") {
					t = path.Join(curPath, t)
				}
				restart = cleanPath(path.Join(append([]string{t}, parts[i+1:]...)...))
				break
			}
			if last {
				return cur, part, next, nil
			}
			if next == nil {
				return nil, "", nil, syscall.ENOENT
			}
			cur, curPath = next, path.Join(curPath, part)
		}
		p = restart
	}
}

// open opens a file for process p.
func (s *state) open(p *Proc, name string, flag int, perm fs.FileMode) (*file, error) {
	create := flag&os.O_CREATE != 0
	excl := create && flag&os.O_EXCL != 0
	nofollow := excl || flag&vfs.O_NOFOLLOW != 0
	dir, base, n, err := s.walk(name, !nofollow)
	if err != nil {
		return nil, err
	}
	switch {
	case n != nil && excl:
		return nil, syscall.EEXIST
	case n != nil && n.isSymlink():
		return nil, syscall.ELOOP
	case n == nil && !create:
		return nil, syscall.ENOENT
	case n == nil && base == "/":
		return nil, syscall.EISDIR
	case n == nil:
		now := p.d.now()
		n = s.newInode(perm&fs.ModePerm&^fs.FileMode(p.d.opts.Umask), p.d.opts.UID, now)
		s.change(nsOp{changes: []change{{dir, base, n}}, commit: dir})
		dir.mtime = now
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if n.isDir() && acc != os.O_RDONLY {
		return nil, syscall.EISDIR
	}
	f := &file{p: p, ino: n, name: name, flag: flag}
	if flag&os.O_TRUNC != 0 && acc != os.O_RDONLY && n.isFile() {
		n.truncate(s, 0)
		n.mtime = p.d.now()
	}
	n.opens++
	p.files[f] = struct{}{}
	return f, nil
}

// closeFile closes f: its locks are released.
func (s *state) closeFile(f *file) {
	if f.closed {
		return
	}
	f.closed = true
	n := f.ino
	if n.flock == f {
		n.flock = nil
	}
	if n.fcntl == f {
		n.fcntl = nil
	}
	n.opens--
	if !n.live() {
		s.used -= int64(len(n.data))
	}
	if f.p.files != nil {
		delete(f.p.files, f)
	}
}

func (s *state) stat(name string, follow bool) (vfs.Info, error) {
	_, base, n, err := s.walk(name, follow)
	if err != nil {
		return vfs.Info{}, err
	}
	if n == nil {
		return vfs.Info{}, syscall.ENOENT
	}
	return n.info(base), nil
}

// walkMovable walks to an existing name that may be renamed or removed:
// not the root.
func (s *state) walkMovable(name string) (dir *inode, base string, n *inode, err error) {
	dir, base, n, err = s.walk(name, false)
	switch {
	case err != nil:
		return nil, "", nil, err
	case n == nil:
		return nil, "", nil, syscall.ENOENT
	case n == s.root:
		return nil, "", nil, syscall.EBUSY
	}
	return dir, base, n, nil
}

// rename moves oldname to newname; without replace it fails if newname
// exists.
func (s *state) rename(oldname, newname string, replace bool, now time.Time) error {
	od, ob, n, err := s.walkMovable(oldname)
	if err != nil {
		return err
	}
	nd, nb, target, err := s.walk(newname, false)
	if err != nil {
		return err
	}
	if nb == "/" {
		return syscall.EBUSY
	}
	if target != nil {
		switch {
		case !replace:
			return syscall.EEXIST
		case target == n:
			return nil // rename(2): two names of one file, nothing is done
		case target.isDir() && !n.isDir():
			return syscall.EISDIR
		case !target.isDir() && n.isDir():
			return syscall.ENOTDIR
		case target.isDir() && len(target.entries) > 0:
			return syscall.ENOTEMPTY
		}
	}
	if n.isDir() {
		for d := nd; d != nil; d = s.parentOf(d) {
			if d == n {
				return syscall.EINVAL // into itself
			}
		}
	}
	s.change(nsOp{changes: []change{{nd, nb, n}, {od, ob, nil}}, commit: nd})
	od.mtime, nd.mtime = now, now
	return nil
}

// parentOf finds the directory holding d (nil for the root).
func (s *state) parentOf(d *inode) *inode {
	if d == s.root {
		return nil
	}
	var found *inode
	var search func(dir *inode)
	search = func(dir *inode) {
		for _, c := range dir.entries {
			if found != nil {
				return
			}
			if c == d {
				found = dir
				return
			}
			if c.isDir() {
				search(c)
			}
		}
	}
	search(s.root)
	return found
}

func (s *state) link(oldname, newname string, now time.Time) error {
	_, _, n, err := s.walk(oldname, false)
	if err != nil {
		return err
	}
	if n == nil {
		return syscall.ENOENT
	}
	if n.isDir() {
		return syscall.EPERM
	}
	nd, nb, target, err := s.walk(newname, false)
	if err != nil {
		return err
	}
	if target != nil || nb == "/" {
		return syscall.EEXIST
	}
	s.change(nsOp{changes: []change{{nd, nb, n}}, commit: nd})
	nd.mtime = now
	return nil
}

func (s *state) remove(name string, now time.Time) error {
	d, b, n, err := s.walkMovable(name)
	if err != nil {
		return err
	}
	if n.isDir() && len(n.entries) > 0 {
		return syscall.ENOTEMPTY
	}
	s.change(nsOp{changes: []change{{d, b, nil}}, commit: d})
	d.mtime = now
	return nil
}

func (s *state) mkdir(name string, perm fs.FileMode, uid int, now time.Time) error {
	d, b, n, err := s.walk(name, false)
	if err != nil {
		return err
	}
	if n != nil {
		return syscall.EEXIST
	}
	c := s.newInode(fs.ModeDir|perm&fs.ModePerm, uid, now)
	s.change(nsOp{changes: []change{{d, b, c}}, commit: d})
	d.mtime = now
	return nil
}

func (s *state) readDir(name string) ([]string, error) {
	_, _, n, err := s.walk(name, true)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, syscall.ENOENT
	}
	if !n.isDir() {
		return nil, syscall.ENOTDIR
	}
	names := make([]string, 0, len(n.entries))
	for k := range n.entries {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

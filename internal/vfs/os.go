//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// OS is the real file system. Where the best system call is not portable,
// it is chosen per system, with a portable path that keeps the same
// guarantees (the build tag popfetch_portable forces the portable paths on
// Linux, so that its tests prove them):
//
//   - RenameNoReplace: renameat2(RENAME_NOREPLACE) on Linux,
//     renameatx_np(RENAME_EXCL) on macOS; elsewhere, or where the file
//     system refuses those, link(2) then unlink(2).
//   - LockFcntl: an open file description lock (F_OFD_SETLK) on Linux,
//     which conflicts with any other open of the file, in this process or
//     another; elsewhere a classic POSIX lock (F_SETLK), made to behave the
//     same within the process (see fcntl_posix.go).
//   - Sync: fsync(2); on macOS the Go runtime's Sync is fcntl(F_FULLFSYNC),
//     as fsync there does not flush the drive's cache.
//   - LockFlock: flock(2) everywhere.
var OS FS = osFS{}

// O_NOFOLLOW, in OpenFile's flag, refuses a symbolic link as the last
// element of the name (open(2)'s O_NOFOLLOW).
const O_NOFOLLOW = syscall.O_NOFOLLOW

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		if flag&O_NOFOLLOW != 0 {
			err = nofollowError(name, err)
		}
		return nil, err
	}
	return &osFile{f: f}, nil
}

// nofollowError makes the refusal of O_NOFOLLOW ELOOP on every system:
// FreeBSD and DragonFly say EMLINK, NetBSD EFTYPE.
func nofollowError(name string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Err == syscall.ELOOP {
		return err
	}
	if errno, ok := pe.Err.(syscall.Errno); ok && (errno == syscall.EMLINK || errno == eftype) {
		if fi, lerr := os.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return &fs.PathError{Op: pe.Op, Path: pe.Path, Err: syscall.ELOOP}
		}
	}
	return err
}

func (osFS) Stat(name string) (Info, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Stat(name, &st) }); err != nil {
		return Info{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return infoOf(name, &st), nil
}

func (osFS) Lstat(name string) (Info, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Lstat(name, &st) }); err != nil {
		return Info{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return infoOf(name, &st), nil
}

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (osFS) RenameNoReplace(oldname, newname string) error {
	if err := renameNoReplace(oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// linkRename renames by link and unlink: link fails if newname exists.
func linkRename(oldname, newname string) error {
	if err := unix.Link(oldname, newname); err != nil {
		return err
	}
	return unix.Unlink(oldname)
}

func (osFS) Link(oldname, newname string) error     { return os.Link(oldname, newname) }
func (osFS) Remove(name string) error               { return os.Remove(name) }
func (osFS) Mkdir(name string, p fs.FileMode) error { return os.Mkdir(name, p) }

func (osFS) ReadDir(name string) ([]string, error) {
	d, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(name, atime, mtime)
}

func (osFS) Getpid() int { return os.Getpid() }

func (osFS) ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// EPERM: it exists, as another user's.
	return !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// osFile is an open file of OS.
type osFile struct {
	f *os.File
	// fcntl is the classic POSIX lock this file holds, if any (the
	// portable path of LockFcntl).
	fcntl *inodeLock
	// flocked: the file holds a flock.
	flocked bool
}

func (o *osFile) Read(p []byte) (int, error)              { return o.f.Read(p) }
func (o *osFile) Write(p []byte) (int, error)             { return o.f.Write(p) }
func (o *osFile) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *osFile) Name() string                            { return o.f.Name() }
func (o *osFile) Sync() error                             { return o.f.Sync() }
func (o *osFile) Truncate(size int64) error               { return o.f.Truncate(size) }

func (o *osFile) Stat() (Info, error) {
	var st unix.Stat_t
	err := o.control(func(fd int) error { return unix.Fstat(fd, &st) })
	if err != nil {
		return Info{}, &fs.PathError{Op: "stat", Path: o.f.Name(), Err: err}
	}
	return infoOf(o.f.Name(), &st), nil
}

func (o *osFile) TryLock(k LockKind) (bool, error) {
	var (
		ok  bool
		err error
	)
	switch k {
	case LockFlock:
		err = o.control(func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
		ok = err == nil
		o.flocked = o.flocked || ok
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
	case LockFcntl:
		ok, err = o.fcntlLock()
	default:
		err = errors.New("unknown lock kind")
	}
	if err != nil {
		return false, &fs.PathError{Op: k.String(), Path: o.f.Name(), Err: err}
	}
	return ok, nil
}

func (o *osFile) Close() error {
	if o.fcntl != nil || posixLocksHeld() {
		return o.closePosix()
	}
	return o.f.Close()
}

// control runs fn on the file's descriptor.
func (o *osFile) control(fn func(fd int) error) error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = ignoringEINTR(func() error { return fn(int(fd)) }) }); err != nil {
		return err
	}
	return ferr
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}

// infoOf converts a stat(2) result; the field types differ per system.
func infoOf(name string, st *unix.Stat_t) Info {
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return Info{
		Name:       filepath.Base(name),
		Size:       int64(st.Size),
		Mode:       mode,
		ModTime:    time.Unix(st.Mtim.Unix()),
		AccessTime: time.Unix(st.Atim.Unix()),
		ID:         FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)},
		Links:      uint64(st.Nlink),
		UID:        int(st.Uid),
	}
}

// Package vfs is the file system seam of popfetch: every file operation of
// delivery (Maildir, mbox), of the UID cache and of the account lock goes
// through the small FS interface, so that a simulated disk (package
// internal/simfs) can stand in for the real one and fail, or "lose power",
// at any call.
//
// OS is the real file system. Its calls are the system calls the code made
// before the seam existed, chosen per operating system where the best one
// is not portable (see OS). Options of the packages that take an FS treat a
// nil FS as OS.
//
// Paths are slash-separated file names as the os package takes them.
// Errors are those of the os package: *fs.PathError or *os.LinkError
// wrapping a syscall.Errno, so errors.Is(err, fs.ErrNotExist) and
// errors.Is(err, syscall.ENOSPC) work the same on every implementation.
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FS is a file system: the operations popfetch performs on files and
// directories. An FS is safe for concurrent use.
type FS interface {
	// OpenFile opens the named file with flag (os.O_RDONLY, os.O_WRONLY or
	// os.O_RDWR, or-ed with os.O_CREATE, os.O_EXCL, os.O_APPEND, os.O_TRUNC
	// and O_NOFOLLOW), creating it with perm (before the umask) if
	// os.O_CREATE is given and it is missing. With O_NOFOLLOW, a symbolic
	// link as the last element fails with syscall.ELOOP on every system.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Stat describes the named file, following symbolic links.
	Stat(name string) (Info, error)
	// Lstat describes the named file; a symbolic link is described itself.
	Lstat(name string) (Info, error)
	// Rename renames oldname to newname, replacing newname if it exists
	// (rename(2)).
	Rename(oldname, newname string) error
	// RenameNoReplace renames oldname to newname, failing with
	// syscall.EEXIST if newname exists: nothing is ever overwritten. Where
	// the system cannot do it in one call it links newname and removes
	// oldname (the Maildir specification's way); a crash in between leaves
	// both names.
	RenameNoReplace(oldname, newname string) error
	// Link makes newname a hard link to oldname; newname must not exist.
	Link(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Mkdir creates a directory with perm (before the umask).
	Mkdir(name string, perm fs.FileMode) error
	// ReadDir returns the names in a directory, sorted, without "." and "..".
	ReadDir(name string) ([]string, error)
	// SyncDir makes the entries of a directory durable: the names created,
	// renamed or removed in it survive a crash once SyncDir returns (the
	// fsync of a file does not cover its name).
	SyncDir(name string) error
	// Chtimes sets the access and modification times of the named file,
	// following symbolic links; a zero time leaves that time as it is.
	Chtimes(name string, atime, mtime time.Time) error
	// Getpid returns the identity of the running process, as written into
	// lock files.
	Getpid() int
	// ProcessAlive reports whether a process with the given identity runs
	// (on this host): a lock file whose process is gone may be removed.
	ProcessAlive(pid int) bool
}

// File is an open file of an FS. A File is used by one goroutine at a
// time, except that Sync may run concurrently with the Sync of other
// files.
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	// Close closes the file and releases its locks. The file's data is not
	// durable unless Sync returned nil.
	io.Closer
	// Name returns the name given to OpenFile.
	Name() string
	// Stat describes the open file.
	Stat() (Info, error)
	// Sync makes the file's data durable (fsync(2); F_FULLFSYNC on macOS,
	// whose fsync leaves data in the drive's cache).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// TryLock tries once, without waiting, to take an exclusive lock of
	// kind k on the whole file, and reports whether it did (false: another
	// holder has it). The lock is released when the file is closed, or when
	// the process ends, however it ends.
	TryLock(k LockKind) (bool, error)
}

// LockKind is a kind of advisory lock. Locks of different kinds do not
// conflict with one another.
type LockKind int

const (
	// LockFlock is a BSD lock (flock(2)): popfetch's account lock.
	LockFlock LockKind = iota + 1
	// LockFcntl is a POSIX record lock on the whole file (fcntl(2)), the
	// lock procmail, mutt, Dovecot and the system MDAs take on an mbox.
	LockFcntl
)

func (k LockKind) String() string {
	switch k {
	case LockFlock:
		return "flock"
	case LockFcntl:
		return "fcntl"
	}
	return "lock?"
}

// Info describes a file.
type Info struct {
	Name       string // the base name
	Size       int64
	Mode       fs.FileMode // type bits and permissions, as the os package has them
	ModTime    time.Time
	AccessTime time.Time
	ID         FileID // tells files apart: same ID, same file
	Links      uint64 // the number of names the file has
	UID        int    // the owner
}

// IsRegular reports whether the file is a regular file.
func (i Info) IsRegular() bool { return i.Mode.IsRegular() }

// IsDir reports whether the file is a directory.
func (i Info) IsDir() bool { return i.Mode.IsDir() }

// IsSymlink reports whether the file is a symbolic link.
func (i Info) IsSymlink() bool { return i.Mode&fs.ModeSymlink != 0 }

// FileID identifies a file: its device and inode numbers.
type FileID struct {
	Dev, Ino uint64
}

// OrOS returns fsys, or OS if fsys is nil: what options whose zero value
// means the real file system call.
func OrOS(fsys FS) FS {
	if fsys == nil {
		return OS
	}
	return fsys
}

// ReadFile reads the whole named file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// MkdirAll creates the directory dir with perm and any missing parent, as
// os.MkdirAll does, and makes each directory it creates durable in its
// parent (SyncDir of the parent), so that what is later made durable
// inside it cannot vanish with it in a crash. It returns the directories
// it created, outermost first.
func MkdirAll(fsys FS, dir string, perm fs.FileMode) (created []string, err error) {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; {
		info, err := fsys.Stat(d)
		if err == nil {
			if !info.IsDir() {
				return nil, &fs.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := fsys.Mkdir(d, perm); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if info, serr := fsys.Stat(d); serr == nil && info.IsDir() {
					continue // made by someone else meanwhile
				}
			}
			return created, err
		}
		created = append(created, d)
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return created, err
		}
	}
	return created, nil
}

// SyncFiles syncs files, returning the first error. On the real file
// system it syncs up to 8 at once: the journal then commits them in a few
// transactions instead of one each. On any other FS it syncs them one
// after the other, in order, so that a simulated run is the same each time.
func SyncFiles(fsys FS, files []File) error {
	if fsys != OS || len(files) < 2 {
		for _, f := range files {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		return nil
	}
	return syncParallel(files, 8)
}

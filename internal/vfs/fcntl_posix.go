//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package vfs

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The portable path of LockFcntl: a classic POSIX lock (F_SETLK).
//
// Such a lock belongs to the process, not to the open file: a second open
// of the file in the same process would get it too, and closing any
// descriptor of the file releases it. popfetch holds each lock once per
// process — one Mbox per batch holds the mbox's lock — but two accounts
// delivering to one mbox run in one process (fetch --jobs). So this
// process keeps a table of the classic locks it holds, by file identity:
// a second open of a locked file is refused the lock, as an open file
// description lock would be, and a descriptor of a locked file closed by
// another open is kept open until the lock is released (SQLite's unix VFS
// does the same). Only files opened through OS are covered.

// inodeLock is a classic lock this process holds on one file.
type inodeLock struct {
	id       FileID
	holder   *osFile
	deferred []*os.File // other opens of the file, closed while it was held
}

var posixLocks struct {
	mu   sync.Mutex
	held map[FileID]*inodeLock
	n    atomic.Int32 // len(held), read without mu
}

func posixLocksHeld() bool { return posixLocks.n.Load() > 0 }

func (o *osFile) id() (FileID, error) {
	var st unix.Stat_t
	if err := o.control(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return FileID{}, err
	}
	return FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, nil
}

// classicLock takes a classic POSIX write lock on the whole file.
func (o *osFile) classicLock() (bool, error) {
	if o.fcntl != nil {
		return true, nil
	}
	id, err := o.id()
	if err != nil {
		return false, err
	}
	posixLocks.mu.Lock()
	defer posixLocks.mu.Unlock()
	if posixLocks.held[id] != nil {
		return false, nil // another open of this process holds it
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0} // Start 0, Len 0: the whole file
	err = o.control(func(fd int) error { return unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk) })
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
		return false, nil
	case err != nil:
		return false, err
	}
	if posixLocks.held == nil {
		posixLocks.held = map[FileID]*inodeLock{}
	}
	l := &inodeLock{id: id, holder: o}
	posixLocks.held[id] = l
	posixLocks.n.Add(1)
	o.fcntl = l
	return true, nil
}

// closePosix closes o while classic locks are held in the process: the
// holder's close releases its lock and closes what was kept open; the
// close of another open of a locked file is put off.
func (o *osFile) closePosix() error {
	posixLocks.mu.Lock()
	defer posixLocks.mu.Unlock()
	if l := o.fcntl; l != nil {
		err := o.f.Close()
		for _, d := range l.deferred {
			d.Close()
		}
		delete(posixLocks.held, l.id)
		posixLocks.n.Add(-1)
		o.fcntl = nil
		return err
	}
	if id, err := o.id(); err == nil {
		if l := posixLocks.held[id]; l != nil {
			if o.flocked {
				// the close would release it: do so now
				o.control(func(fd int) error { return unix.Flock(fd, unix.LOCK_UN) })
			}
			l.deferred = append(l.deferred, o.f)
			return nil
		}
	}
	return o.f.Close()
}

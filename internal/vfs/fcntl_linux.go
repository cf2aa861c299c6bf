//go:build linux && !popfetch_portable

package vfs

import (
	"errors"

	"golang.org/x/sys/unix"
)

const portable = false

// fcntlLock takes an open file description lock (F_OFD_SETLK, Linux
// 3.15): it conflicts with the classic fcntl locks of procmail, mutt and
// the system MDAs like any fcntl lock, and also with another open of the
// file in this process; closing another descriptor does not drop it.
// Before Linux 3.15 it takes the classic lock.
func (o *osFile) fcntlLock() (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0} // Start 0, Len 0: the whole file
	err := o.control(func(fd int) error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL):
		return o.classicLock()
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
		return false, nil
	}
	return false, err
}

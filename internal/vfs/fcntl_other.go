//go:build (linux && popfetch_portable) || darwin || freebsd || openbsd || netbsd || dragonfly

package vfs

const portable = true

// fcntlLock takes a classic POSIX lock: these systems have no open file
// description locks (see fcntl_posix.go).
func (o *osFile) fcntlLock() (bool, error) { return o.classicLock() }

package simfs

import (
	"io"
	"os"
	"path"
	"syscall"

	"github.com/popfetch/popfetch/internal/vfs"
)

// file is an open file of a Proc.
type file struct {
	p      *Proc
	ino    *inode
	name   string
	flag   int
	off    int64
	closed bool
}

var _ vfs.File = (*file)(nil)

func (f *file) Name() string { return f.name }

func (f *file) readable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != os.O_WRONLY }
func (f *file) writable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != os.O_RDONLY }

// do runs a call on the file, as Proc.do does.
func (f *file) do(kind OpKind, op string, fn func(s *state) error) error {
	return f.p.do(kind, op, f.name, "", func(s *state) error {
		if f.closed {
			return os.ErrClosed
		}
		return fn(s)
	})
}

func (f *file) Read(b []byte) (n int, err error) {
	var eof bool
	err = f.do(OpRead, "read", func(s *state) error {
		if !f.readable() || f.ino.isDir() {
			return syscall.EBADF
		}
		if f.off >= int64(len(f.ino.data)) {
			eof = len(b) > 0
			return nil
		}
		n = copy(b, f.ino.data[f.off:])
		f.off += int64(n)
		return nil
	})
	if err == nil && eof {
		err = io.EOF
	}
	return n, err
}

func (f *file) ReadAt(b []byte, off int64) (n int, err error) {
	var short bool
	err = f.do(OpReadAt, "read", func(s *state) error {
		if !f.readable() || f.ino.isDir() {
			return syscall.EBADF
		}
		if off < 0 {
			return syscall.EINVAL
		}
		if off < int64(len(f.ino.data)) {
			n = copy(b, f.ino.data[off:])
		}
		short = n < len(b)
		return nil
	})
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (f *file) Write(b []byte) (n int, err error) {
	err = f.do(OpWrite, "write", func(s *state) error {
		if !f.writable() {
			return syscall.EBADF
		}
		n = f.write(s, b)
		if n < len(b) {
			return syscall.ENOSPC
		}
		return nil
	})
	return n, err
}

// write writes what fits on the disk at the file's offset (its end with
// O_APPEND) and returns how much it wrote.
func (f *file) write(s *state, b []byte) int {
	n := f.ino
	if f.flag&os.O_APPEND != 0 {
		f.off = int64(len(n.data))
	}
	if space := f.p.d.space; space >= 0 {
		grow := f.off + int64(len(b)) - int64(len(n.data))
		if free := space - s.used; grow > free {
			b = b[:max(0, int64(len(b))-(grow-max(free, 0)))]
		}
	}
	if len(b) > 0 {
		n.writeAt(s, b, f.off)
		f.off += int64(len(b))
		n.mtime = f.p.d.now()
	}
	return len(b)
}

func (f *file) Truncate(size int64) error {
	return f.do(OpTruncate, "truncate", func(s *state) error {
		if !f.writable() || !f.ino.isFile() {
			return syscall.EINVAL
		}
		if size < 0 {
			return syscall.EINVAL
		}
		if space := f.p.d.space; space >= 0 && size-int64(len(f.ino.data)) > space-s.used {
			return syscall.ENOSPC
		}
		f.ino.truncate(s, size)
		f.ino.mtime = f.p.d.now()
		return nil
	})
}

func (f *file) Sync() error {
	return f.do(OpSync, "sync", func(s *state) error {
		if f.ino.isFile() {
			f.ino.sync()
		}
		return nil
	})
}

func (f *file) Stat() (info vfs.Info, err error) {
	err = f.do(OpFstat, "stat", func(s *state) error {
		info = f.ino.info(path.Base(f.name))
		return nil
	})
	return info, err
}

func (f *file) TryLock(k vfs.LockKind) (ok bool, err error) {
	err = f.do(OpLock, k.String(), func(s *state) error {
		var holder **file
		switch k {
		case vfs.LockFlock:
			holder = &f.ino.flock
		case vfs.LockFcntl:
			if !f.writable() {
				return syscall.EBADF // a write lock needs a file open for writing
			}
			holder = &f.ino.fcntl
		default:
			return syscall.EINVAL
		}
		if *holder != nil && *holder != f {
			return nil
		}
		*holder, ok = f, true
		return nil
	})
	return ok, err
}

// Close closes the file and releases its locks; a failure injected into
// it is returned, and the file is closed all the same, as close(2) does.
func (f *file) Close() error {
	_, err := f.p.begin(OpClose, f.name, "")
	d := f.p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case f.p.dead && err == nil:
		err = ErrDead
	case f.closed && err == nil:
		err = os.ErrClosed
	case !f.closed && !f.p.dead:
		d.st.closeFile(f)
	}
	if err != nil {
		return opError("close", f.name, "", err)
	}
	return nil
}

//go:build darwin && !popfetch_portable

package vfs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace is renameatx_np(RENAME_EXCL) (macOS 10.12), or link and
// unlink on a file system without it.
func renameNoReplace(oldname, newname string) error {
	err := unix.RenameatxNp(unix.AT_FDCWD, oldname, unix.AT_FDCWD, newname, unix.RENAME_EXCL)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return linkRename(oldname, newname)
	}
	return err
}

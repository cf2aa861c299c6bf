//go:build darwin || freebsd || openbsd || netbsd || dragonfly

package vfs

import "syscall"

// eftype is NetBSD's answer to O_NOFOLLOW on a symbolic link.
const eftype = syscall.EFTYPE

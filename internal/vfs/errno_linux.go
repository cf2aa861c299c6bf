package vfs

import "syscall"

// eftype is NetBSD's answer to O_NOFOLLOW on a symbolic link; Linux says
// ELOOP.
const eftype = syscall.ELOOP

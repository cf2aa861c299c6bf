//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package vfs

// popfetch builds for Linux, macOS and the BSDs only. Its durability and
// locking rely on POSIX: fsync of directories, hard links, fcntl and flock
// locks shared with procmail and mutt, process groups for MDAs. On Windows,
// use it under WSL (see README, "Install").
var _ = popfetch_builds_for_Linux_macOS_and_the_BSDs_only__see_README_Install

var OS FS

const O_NOFOLLOW = 0

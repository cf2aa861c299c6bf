//go:build popfetch_portable || freebsd || openbsd || netbsd || dragonfly

package vfs

// renameNoReplace links and unlinks: these systems have no rename that
// refuses to replace (link fails if newname exists).
func renameNoReplace(oldname, newname string) error { return linkRename(oldname, newname) }

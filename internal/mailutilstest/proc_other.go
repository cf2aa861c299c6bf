//go:build unix && !linux

package mailutilstest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts pop3d into a process group of its own, so that Stop
// reaches exactly the processes of this server.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether a process of group pgid still runs (zombies
// count: there is no /proc to tell them).
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }

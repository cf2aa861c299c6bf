//go:build unix && !linux

package dovecottest

import (
	"os/exec"
	"syscall"
)

func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }

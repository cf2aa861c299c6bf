//go:build unix && !linux

package couriertest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server into a process group of its own (Courier's
// tests, which watch its processes in /proc, run on Linux).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

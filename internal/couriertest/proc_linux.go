package couriertest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server into a process group of its own and has the
// kernel kill its first process if the test binary dies without running
// its cleanups (the others follow: see Server.script).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

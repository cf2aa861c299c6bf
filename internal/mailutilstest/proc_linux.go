package mailutilstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setProcAttr puts pop3d into a process group of its own, so that Stop
// reaches exactly the processes of this server, and makes the kernel
// kill it if the test binary dies without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether a process of group pgid still runs. A zombie
// does not: it holds no file, and when the master is gone its sessions'
// zombies are init's to reap, which may never happen in a container.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	if stats == nil {
		return syscall.Kill(-pgid, 0) == nil // no /proc: zombies count
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": comm may hold anything
		i := strings.LastIndex(string(b), ") ")
		if i < 0 {
			continue
		}
		rest := string(b[i+2:])
		if f := strings.Fields(rest); len(f) > 2 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

package couriertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// setProcAttr puts the server into a process group of its own, so that
// Stop reaches exactly its processes, and has the kernel kill its first
// process if the test binary dies without running its cleanups (the
// others follow: see Server.script).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether a process of group pgid still runs.
func groupAlive(pgid int) bool { return len(groupProcs(pgid)) > 0 }

// sessionProgs are the programs of a session, as /proc shows their names
// (cut to 15 bytes): the login process, the mail process, and couriertls
// on the implicit-TLS port or after STLS.
var sessionProgs = []string{"courierpop3logi", "courierpop3d", "couriertls"}

// sessionsRunning reports whether a session of the server whose process
// group is pgid still runs.
func sessionsRunning(pgid int) bool {
	return slices.ContainsFunc(groupProcs(pgid), func(name string) bool { return slices.Contains(sessionProgs, name) })
}

// groupProcs returns the names of the processes of group pgid that run.
// Zombies do not count: they hold no file, and when their parent was
// killed they are init's to reap, which may never happen in a container.
func groupProcs(pgid int) []string {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		if syscall.Kill(-pgid, 0) == nil { // no /proc: zombies count
			return []string{"?"}
		}
		return nil
	}
	var names []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "pid (name) state ppid pgrp ...", where name may hold anything
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndex(s, ") ")
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+2:])
		if len(f) > 2 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			names = append(names, s[open+1:end])
		}
	}
	return names
}

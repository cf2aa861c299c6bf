package couriertest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// proc is a running process of a server.
type proc struct {
	pid  int
	name string // as /proc shows it: cut to 15 bytes
}

// sessionProgs are the programs of a session: the login process, the mail
// process, and couriertls on the implicit-TLS port or after STLS.
var sessionProgs = []string{"courierpop3logi", "courierpop3d", "couriertls"}

// mountNS returns the mount namespace of process pid ("mnt:[N]").
func mountNS(pid int) (string, error) {
	return os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "mnt"))
}

// procsIn returns the processes in mount namespace ns: exactly those of
// one server, whatever process group or session they made for themselves
// (couriertcpd, but for the first one, makes a group of its own).
// Zombies have no namespace left and do not count: they hold no file,
// and when their parent was killed they are init's to reap, which may
// never happen in a container.
func procsIn(ns string) []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if n, err := mountNS(pid); err != nil || n != ns {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (name) state ...", where name may hold anything
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndex(s, ") ")
		if open < 0 || end < open || strings.HasPrefix(s[end+2:], "Z") {
			continue
		}
		out = append(out, proc{pid: pid, name: s[open+1 : end]})
	}
	return out
}

// sessionsRunning reports whether a session runs in mount namespace ns.
func sessionsRunning(ns string) bool {
	return slices.ContainsFunc(procsIn(ns), func(p proc) bool { return slices.Contains(sessionProgs, p.name) })
}

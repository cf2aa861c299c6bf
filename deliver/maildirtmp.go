package deliver

import (
	"strconv"
	"strings"
)

// tmpMarker begins the name of every file popfetch writes in a Maildir's
// tmp/: "popfetch." and then the message's unique name, which holds the
// writer's PID ("P1234") and host. A popfetch killed in the middle of a
// batch leaves such files behind; the next one removes them (CONTRACT §5),
// and never a file of another program's.
const tmpMarker = "popfetch."

// tmpName is the name in tmp/ of the message whose unique name is base.
func tmpName(base string) string { return tmpMarker + base }

// staleTmp returns the names in a tmp/ directory that a popfetch of this
// host (host as uniqueName writes it) left behind: names of ours whose
// process is not running. self is our own PID; alive tells whether a
// process runs.
func staleTmp(names []string, host string, self int, alive func(pid int) bool) []string {
	var stale []string
	for _, name := range names {
		pid, h, ok := parseTmpName(name)
		if !ok || h != host || pid == self || alive(pid) {
			continue
		}
		stale = append(stale, name)
	}
	return stale
}

// parseTmpName takes the PID and host out of a name of tmpName's:
// "popfetch.SECONDS.MmicrosPpidQseqRrand.HOST".
func parseTmpName(name string) (pid int, host string, ok bool) {
	rest, ok := strings.CutPrefix(name, tmpMarker)
	if !ok {
		return 0, "", false
	}
	secs, rest, ok := strings.Cut(rest, ".")
	if !ok || secs == "" || strings.Trim(secs, "0123456789") != "" {
		return 0, "", false
	}
	unique, host, ok := strings.Cut(rest, ".")
	if !ok || host == "" || !strings.HasPrefix(unique, "M") {
		return 0, "", false
	}
	p := strings.IndexByte(unique, 'P')
	q := strings.IndexByte(unique, 'Q')
	if p < 0 || q < p+2 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(unique[p+1 : q])
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, host, true
}

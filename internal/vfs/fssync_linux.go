//go:build linux

package vfs

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// syncfsReports is whether syncfs(2) reports writeback errors: Linux 5.8
// and later (commit 735e4ae5ba28, "vfs: track per-sb writeback errors and
// report them to syncfs").
var syncfsReports = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	release := unix.ByteSliceToString(u.Release[:])
	major, rest, _ := strings.Cut(release, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(minor, func(r rune) bool { return r < '0' || r > '9' }))
	return err1 == nil && err2 == nil && (ma > 5 || ma == 5 && mi >= 8)
})

// File systems whose syncfs(2) makes data durable as fsync(2) does.
var syncfsTypes = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:  true, // also ext2 and ext3
	unix.XFS_SUPER_MAGIC:   true,
	unix.BTRFS_SUPER_MAGIC: true,
	unix.F2FS_SUPER_MAGIC:  true,
	unix.TMPFS_MAGIC:       true,
}

func (osFS) openFSSync(dir string) (FSSync, error) {
	if !syncfsReports() {
		return nil, unix.ENOSYS
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || !syncfsTypes[int64(st.Type)] {
		f.Close()
		return nil, unix.ENOTSUP
	}
	return &osFSSync{f: f}, nil
}

type osFSSync struct{ f *os.File }

// worthSlack is how much data others may have left unwritten for a
// syncfs to be worth it: writing that back costs about what the fsyncs it
// replaces would (BENCHMARKS.md, scenario a).
const worthSlack = 64 << 20

// Worth compares pending with the system's unwritten data (Dirty and
// Writeback in /proc/meminfo, of all file systems: an upper bound).
func (s *osFSSync) Worth(pending int64) bool {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return false
	}
	var unwritten int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "Dirty" && k != "Writeback") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return false
		}
		unwritten += n << 10
	}
	return unwritten <= pending+worthSlack
}

func (s *osFSSync) Sync() error {
	conn, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "syncfs", Path: s.f.Name(), Err: serr}
	}
	return nil
}

func (s *osFSSync) Close() error { return s.f.Close() }

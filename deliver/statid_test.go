package deliver

import (
	"io/fs"
	"syscall"
	"testing"
)

func statID(t *testing.T, fi fs.FileInfo) [2]uint64 {
	t.Helper()
	st := fi.Sys().(*syscall.Stat_t)
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}
}

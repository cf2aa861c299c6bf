package vfs

// FSSync makes durable, at once, all the data written to one file system
// (syncfs(2)): after a batch of many new files, one call instead of one
// fsync each. It reports an error of writing back any data of that file
// system since it was opened, or since it last reported one, whosever
// the data: a caller takes such an error as a failure of its own batch.
type FSSync interface {
	// Worth reports whether a Sync now costs little more than writing
	// pending octets: it also writes whatever other programs left unwritten
	// on the file system, and a large download in progress makes it slow.
	Worth(pending int64) bool
	Sync() error
	Close() error
}

// fsSyncer is an FS that can open an FSSync.
type fsSyncer interface {
	openFSSync(dir string) (FSSync, error)
}

// OpenFSSync returns an FSSync for the file system that holds dir, or nil
// where fsys has none that reports write errors and makes data durable as
// fsync does: only the real file system on Linux 5.8 and later (before
// 5.8 syncfs(2) did not report them), and local file systems whose syncfs
// is known to (ext2/3/4, XFS, Btrfs, F2FS; tmpfs keeps nothing anyway);
// elsewhere the caller syncs file by file. Open it before writing the
// data it is to make durable: errors are reported from its opening on.
func OpenFSSync(fsys FS, dir string) FSSync {
	if s, ok := fsys.(fsSyncer); ok {
		if fss, err := s.openFSSync(dir); err == nil {
			return fss
		}
	}
	return nil
}

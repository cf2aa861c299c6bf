// Package durable holds the file-system steps that make writes survive a
// crash, shared by delivery and the UID cache.
package durable

import "os"

// SyncDir fsyncs a directory, making the names created, renamed or removed
// in it durable (fsync of a file does not cover its directory entry).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

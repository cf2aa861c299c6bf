package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration runs commands as its user (password_command, mda):
// one that someone else can change is refused, password or not, with what
// is wrong and the fix, and the file is never parsed.
func TestLoadRefusesFileOthersCanChange(t *testing.T) {
	dir := t.TempDir()
	src := "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword_command = \"echo pw\"\n" +
		"deliver.mda = \"/bin/cat\"\nstate_dir = \"/s\"\n"
	write := func(name string, mode os.FileMode) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
		return path
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o644, 0o640} {
		if _, err := Load(write(fmt.Sprintf("ok-%o.toml", mode), mode)); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o620, 0o602, 0o666, 0o660, 0o622} {
		path := write(fmt.Sprintf("bad-%o.toml", mode), mode)
		_, err := Load(path)
		want := fmt.Sprintf("%s: writable by group or others (mode %04o): whoever can change it can run "+
			"commands as you (password_command, mda); chmod 600 %s", path, mode, path)
		var errs *Errors
		if !errors.As(err, &errs) || err.Error() != want {
			t.Errorf("mode %04o:\n got %v\nwant %s", mode, err, want)
		}
	}
}

func TestLoadRefusesFileOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("giving a file to another user needs root") // CI runs as root
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	src := "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\ndeliver.mbox = \"/m\"\nstate_dir = \"/s\"\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var errs *Errors
	if !errors.As(err, &errs) || !strings.HasPrefix(err.Error(), path+": owned by uid 65534, not by you (uid 0): ") ||
		!strings.HasSuffix(err.Error(), "cp "+path+" NEWFILE && chmod 600 NEWFILE") {
		t.Errorf("owned by 65534: %v", err)
	}
	// root's own files are trusted: root can change anything anyway
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("owned by root: %v", err)
	}
}

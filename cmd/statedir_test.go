package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state directory others can write stops fetch and config check with
// exit 78, naming the directory and the fix (issue 16).
func TestStateDirWritableByOthers(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf(`[defaults]
state_dir = %q

[[account]]
name = "a"
host = "127.0.0.1"
port = 1
user = "alice"
password = "x"
[account.deliver]
maildir = %q
`, state, filepath.Join(dir, "Mail"))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "check"}, {"fetch"}} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"popfetch", "-c", path}, args...), &out, &errb)
		if code != exitConfig || !strings.Contains(errb.String(), state) || !strings.Contains(errb.String(), "chmod 700") {
			t.Errorf("%s: exit %d, stderr %q; want %d naming %s and chmod 700", args, code, errb.String(), exitConfig, state)
		}
	}
}

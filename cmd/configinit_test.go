package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// TestConfigInit: config init writes a starter configuration, 0600, that
// config check accepts and that documents every key; it never overwrites;
// and a missing configuration's error points to it (issue 12, point 12).
func TestConfigInit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "config.toml")

	code, _, errs := runMain(t, "-c", path, "fetch")
	if want := "popfetch: hint: `popfetch -c " + path + " config init` writes a starter configuration there\n"; code != exitConfig || !strings.Contains(errs, want) {
		t.Errorf("fetch without a configuration: exit %d\n%s\nwant %s", code, errs, want)
	}

	_, errs = mustMain(t, 0, "-c", path, "config", "init")
	if !strings.Contains(errs, "wrote a starter configuration to "+path) {
		t.Errorf("config init said:\n%s", errs)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v", path, err, fi.Mode())
	}
	b, _ := os.ReadFile(path)
	for _, k := range config.Keys() {
		name := strings.TrimPrefix(k.Name, "deliver.")
		if !strings.Contains(string(b), "\n"+name+" = ") && !strings.Contains(string(b), "\n# "+name+" = ") {
			t.Errorf("the starter lacks %s", k.Name)
		}
	}
	out, _ := mustMain(t, 0, "-c", path, "config", "check")
	if out != path+": 1 account OK\n" {
		t.Errorf("config check of the starter: %q", out)
	}
	// Every key uncommented, one at a time, still loads: the examples are
	// TOML values. The delivery targets replace the one set.
	for _, k := range config.Keys() {
		name := strings.TrimPrefix(k.Name, "deliver.")
		text := strings.Replace(string(b), "\n# "+name+" = ", "\n"+name+" = ", 1)
		if k.Target {
			text = strings.Replace(text, "\nmaildir = ", "\n# maildir = ", 1)
		}
		if _, err := config.Parse(path, []byte(text), config.Env{Home: dir}); err != nil && !strings.Contains(err.Error(), k.Name) {
			t.Errorf("with %s uncommented: %v", k.Name, err)
		}
	}

	code, _, errs = runMain(t, "-c", path, "config", "init")
	if code != exitUsage || !strings.Contains(errs, path+" exists: config init never overwrites a file") {
		t.Errorf("a second config init: exit %d\n%s", code, errs)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Error("the file changed")
	}
}

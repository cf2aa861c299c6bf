package cmd

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// TestExampleConfigParses: config.example.toml loads as it is, and
// documents every key of the key table.
func TestExampleConfigParses(t *testing.T) {
	const path = "../config.example.toml"
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	if len(cfg.Accounts) != 2 {
		t.Fatalf("%d accounts, want 2", len(cfg.Accounts))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		name := strings.TrimPrefix(k.Name, "deliver.")
		if !regexp.MustCompile(`(?m)^#? *` + regexp.QuoteMeta(name) + ` *=`).Match(b) {
			t.Errorf("config.example.toml does not document %q", k.Name)
		}
	}
	// The commented-out alternatives load too, once uncommented.
	alt := regexp.MustCompile(`(?m)^maildir = .*$`).ReplaceAll(b, []byte(`mbox = "~/mbox"`))
	if _, err := config.Parse(path, alt, config.OSEnv()); err != nil {
		t.Errorf("the mbox alternative does not load: %v", err)
	}
}

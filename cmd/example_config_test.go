package cmd

import (
	"os"
	"regexp"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// contractKeys are the account keys of CONTRACT §2.
var contractKeys = []string{
	"name", "host", "port", "tls", "tls_ca_file", "tls_fingerprint", "allow_insecure",
	"user", "auth", "password_command", "password", "oauth_token_command", "oauth_provider",
	"oauth_client_id", "keep", "fetch_all", "delete_after", "max_size", "max_messages",
	"received_header", "state_dir", "timeout", "maildir", "mbox", "mda",
}

// TestExampleConfigParses: config.example.toml loads as it is, and
// documents every key of the contract.
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
	for _, k := range contractKeys {
		if !regexp.MustCompile(`(?m)^#? *` + k + ` *=`).Match(b) {
			t.Errorf("config.example.toml does not document %q", k)
		}
	}
	// The commented-out alternatives load too, once uncommented.
	alt := regexp.MustCompile(`(?m)^maildir = .*$`).ReplaceAll(b, []byte(`mbox = "~/mbox"`))
	if _, err := config.Parse(path, alt, config.OSEnv()); err != nil {
		t.Errorf("the mbox alternative does not load: %v", err)
	}
}

package e2e

import (
	"bytes"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo is `make demo`: the demo runs with no setup, fetches its sample
// mail into a Maildir, shows keep mode, says so, and ends with how to
// start with one's own account.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "popfetch-demo")
	r := mustRun(t, 0, "demo", "--dir", dir)
	for _, want := range []string{"fetched 36 messages", "it now holds 0", "fetched 3 new messages",
		"keep mode (keep = true): 2 more messages arrive", "fetched 2; the server still holds 2", "fetching again fetches 0",
		"for your own account: popfetch config init"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	msgs := maildirMessages(t, filepath.Join(dir, "Maildir"))
	if len(msgs) != 41 {
		t.Fatalf("%d messages in the demo Maildir, want 41", len(msgs))
	}
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m))
		if err != nil {
			t.Fatalf("a demo message does not parse: %v", err)
		}
		if msg.Header.Get("Subject") == "" || msg.Header.Get("Received") == "" {
			t.Errorf("a demo message lacks Subject or Received: %v", msg.Header)
		}
	}
}

//go:build popfetch_portable

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// buildTags: with popfetch_portable, the binary under test takes the
// portable paths too (classic fcntl locks, link and unlink for renames).
const buildTags = "popfetch_portable"

// TestPortableBinary: the binary under test was built with the tag.
func TestPortableBinary(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", popfetchBin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "-tags=popfetch_portable") {
		t.Fatalf("built without the tag:\n%s", out)
	}
}

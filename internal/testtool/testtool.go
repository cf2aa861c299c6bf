// Package testtool finds the programs that tests run against (procmail,
// python3, fetchmail, a Secret Service...). make test installs every one of
// them first (scripts/test-deps.sh) and sets POPFETCH_TEST_STRICT=1: there a
// test that finds one missing fails, as no test may skip; elsewhere (a bare
// go test) it is skipped, saying what to install.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is the variable make test sets.
const StrictEnv = "POPFETCH_TEST_STRICT"

// Need returns the path of the program name, or ends the test: a failure
// under make test, a skip elsewhere.
func Need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	switch {
	case err == nil:
	case os.Getenv(StrictEnv) == "1":
		t.Fatalf("%s is needed (scripts/test-deps.sh installs it): %v", name, err)
	default:
		t.Skipf("%s is needed (scripts/test-deps.sh installs it): %v", name, err)
	}
	return p
}

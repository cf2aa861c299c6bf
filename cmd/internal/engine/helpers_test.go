package engine

import (
	"encoding/pem"
	"os"
	"testing"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

func writeCertPEM(t *testing.T, path string, s *pop3test.Server) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

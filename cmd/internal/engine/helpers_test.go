package engine

import (
	"encoding/pem"
	"os"
	"strconv"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

func writeCertPEM(t testing.TB, path string, s *pop3test.Server) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func configDeliver(maildir, mbox, mda string) config.Deliver {
	return config.Deliver{Maildir: maildir, Mbox: mbox, MDA: mda}
}

func itoa(n int) string { return strconv.Itoa(n) }

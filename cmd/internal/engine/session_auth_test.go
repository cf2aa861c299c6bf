package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// sessionFixture is a pop3test server set up by setup, holding user alice
// (password "secret") with one message, and an account for it with
// implicit TLS (or STLS) pinned to its certificate.
func sessionFixture(t *testing.T, mode config.TLSMode, setup func(*pop3test.Server)) (*pop3test.Server, *config.Account) {
	t.Helper()
	srv := pop3test.NewServer()
	srv.AddUser("alice", "secret").Add([]byte("Subject: hi\n\nhello\n"))
	if setup != nil {
		setup(srv)
	}
	start := srv.Start
	if mode == config.TLSImplicit {
		start = srv.StartTLS
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	sum := sha256.Sum256(srv.Certificate().Raw)
	dir := t.TempDir()
	return srv, &config.Account{
		Name: "s", Host: host, Port: p, TLS: mode, TLSFingerprint: "sha256:" + hex.EncodeToString(sum[:]),
		User: "alice", Auth: config.AuthAuto, Timeout: 10 * time.Second,
		StateDir: filepath.Join(dir, "state"),
		Deliver:  config.Deliver{Maildir: filepath.Join(dir, "Maildir")},
	}
}

// commandWords returns the command word of every line the server received.
func commandWords(srv *pop3test.Server) []string {
	var w []string
	for _, l := range srv.Received() {
		word, _, _ := strings.Cut(l, " ")
		w = append(w, word)
	}
	return w
}

// TestCapaAgainAfterSTLSAndLogin: the capabilities are asked for before
// STLS, again once protected (RFC 2595 §4: the client must forget what it
// was told in the clear), and again after login (RFC 2449 §4: they may
// change, and Gmail lists UIDL and PIPELINING only then).
func TestCapaAgainAfterSTLSAndLogin(t *testing.T) {
	for _, tc := range []struct {
		mode config.TLSMode
		want []string
	}{
		{config.TLSStartTLS, []string{"CAPA", "STLS", "CAPA", "AUTH", "CAPA", "UIDL", "LIST", "RETR", "DELE", "QUIT"}},
		{config.TLSImplicit, []string{"CAPA", "AUTH", "CAPA", "UIDL", "LIST", "RETR", "DELE", "QUIT"}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			srv, a := sessionFixture(t, tc.mode, nil)
			if _, err := Run(context.Background(), Options{Account: a, Credentials: staticCreds{password: "secret"}}); err != nil {
				t.Fatal(err)
			}
			if got := commandWords(srv); !slices.Equal(got, tc.want) {
				t.Errorf("commands %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAutoPrefersListedSASLOverUSER: Dovecot lists USER in CAPA even when
// its auth_mechanisms lack PLAIN, and then refuses PASS with "[AUTH]
// Unsupported authentication mechanism" (seen with Dovecot 2.3 and
// auth_mechanisms = cram-md5 apop). A server that lists SASL mechanisms
// says what it accepts: auth = "auto" must use one of those before USER.
func TestAutoPrefersListedSASLOverUSER(t *testing.T) {
	for _, tc := range []struct {
		mechs []string
		want  string
	}{
		{[]string{"CRAM-MD5"}, "AUTH CRAM-MD5"},
		{[]string{"LOGIN", "CRAM-MD5"}, "AUTH LOGIN"},
	} {
		t.Run(strings.Join(tc.mechs, "+"), func(t *testing.T) {
			srv, a := sessionFixture(t, config.TLSImplicit, func(s *pop3test.Server) {
				s.Mechanisms = tc.mechs
				s.Faults.Respond = func(cmd string, _ []string) (string, bool) {
					return "-ERR [AUTH] Unsupported authentication mechanism.", cmd == "PASS"
				}
			})
			if _, err := Run(context.Background(), Options{Account: a, Credentials: staticCreds{password: "secret"}}); err != nil {
				t.Fatalf("auto against a server listing SASL %v and USER: %v (received %q)", tc.mechs, err, srv.Received())
			}
			if !slices.ContainsFunc(srv.Received(), func(l string) bool { return strings.HasPrefix(l, tc.want) }) {
				t.Errorf("received %q, want %s", srv.Received(), tc.want)
			}
		})
	}
}

// TestAutoOrder: what "auto" picks for each kind of server.
func TestAutoOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*pop3test.Server)
		want  string
	}{
		{"PLAIN listed", nil, "AUTH PLAIN"},
		{"no SASL", func(s *pop3test.Server) { s.Faults.HideCaps = []string{"SASL"} }, "USER alice"},
		{"no CAPA", func(s *pop3test.Server) { s.Faults.NoCAPA = true }, "USER alice"},
		{"no USER, no SASL", func(s *pop3test.Server) { s.Faults.HideCaps = []string{"USER", "SASL"} }, "APOP alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, a := sessionFixture(t, config.TLSImplicit, tc.setup)
			if _, err := Run(context.Background(), Options{Account: a, Credentials: staticCreds{password: "secret"}}); err != nil {
				t.Fatalf("%v (received %q)", err, srv.Received())
			}
			if !slices.ContainsFunc(srv.Received(), func(l string) bool { return strings.HasPrefix(l, tc.want) }) {
				t.Errorf("received %q, want %s", srv.Received(), tc.want)
			}
		})
	}
}

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// TestReceivedHeader: with received_header on (the default), every message
// delivered into a Maildir, an mbox or through an MDA starts with
// popfetch's Received field naming the server, the account and the TLS
// version (TLS 1.3 on Dovecot's implicit-TLS port); the rest is the
// message, unchanged.
func TestReceivedHeader(t *testing.T) {
	kinds := []string{"maildir", "mbox", "mda"}
	var opts []dovecottest.Option
	for _, k := range kinds {
		opts = append(opts, dovecottest.WithUser("rcv-"+k, "secret"))
	}
	srv := dovecottest.Start(t, opts...)
	local, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for i, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			user := "rcv-" + kind
			msgs := mailgen.Traps(10, uint64(60+i))
			srv.Populate(user, msgs)
			dir := t.TempDir()
			a := acctSpec{name: "acct-" + kind, user: user}
			md := filepath.Join(dir, "Maildir")
			var read func() [][]byte
			switch kind {
			case "maildir":
				a.deliver = maildirTo(md)
				read = func() [][]byte { return maildirMessages(t, md) }
			case "mbox":
				path := filepath.Join(dir, "mbox")
				a.deliver = mboxTo(path)
				read = func() [][]byte { return mboxBodies(readMbox(t, path)) }
			case "mda":
				a.deliver = mdaTo(procmailMDA(t, dir, md))
				read = func() [][]byte { return maildirMessages(t, md) }
			}
			cfg := writeAccount(t, srv, dir, a)
			before := time.Now().Add(-time.Second).Truncate(time.Second)
			mustRun(t, 0, "-c", cfg, "fetch")
			after := time.Now().Add(time.Second)

			got := read()
			for _, m := range got {
				body, ok := withoutReceived(m)
				if !ok {
					t.Fatalf("message does not start with popfetch's Received field: %q", m[:min(len(m), 80)])
				}
				field := string(m[:len(m)-len(body)])
				lines := strings.Split(strings.TrimSuffix(field, "\n"), "\n")
				if len(lines) != 4 {
					t.Fatalf("Received field of %d lines, want 4:\n%s", len(lines), field)
				}
				wantLines := []string{
					"Received: from 127.0.0.1 (127.0.0.1 [127.0.0.1])",
					"\tby " + local + " (popfetch",
					"\tfor <" + user + "> (account acct-" + kind + ");",
				}
				for k, w := range wantLines {
					if !strings.HasPrefix(lines[k], w) {
						t.Errorf("line %d of the Received field is %q, want it to start with %q", k+1, lines[k], w)
					}
				}
				if !strings.HasSuffix(lines[1], ") with POP3 (TLS1.3)") {
					t.Errorf("the Received field does not name POP3 over TLS 1.3: %q", lines[1])
				}
				when, err := time.Parse(time.RFC1123Z, strings.TrimPrefix(lines[3], "\t"))
				if err != nil || when.Before(before) || when.After(after) {
					t.Errorf("the Received field's date %q: %v, want a time of this run", lines[3], err)
				}
			}
			checkDelivered(t, got, msgs)
		})
	}
}

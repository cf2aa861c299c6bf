package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/internal/smtpsink"
)

// LMTP and SMTP delivery (issue 14) with the real servers: Dovecot's LMTP
// with Sieve, Postfix's smtp-sink.

func lmtpTo(addr, rcpt string) string {
	return fmt.Sprintf("lmtp = %q\nrecipient = %q", addr, rcpt)
}

func smtpTo(addr string) string { return fmt.Sprintf("smtp = %q", addr) }

// senderOf is the envelope sender popfetch must use for a message: the
// address of its Return-Path, or none.
func senderOf(msg []byte) string {
	for _, line := range strings.Split(string(mailgen.Canonical(msg)), "\n") {
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Return-Path: "); ok {
			return strings.Trim(v, "<>")
		}
	}
	return ""
}

// withoutLMTPReturnPath removes the Return-Path field Dovecot's LMTP puts
// on top of each message, after checking that it names the sender of the
// message sent with the same id.
func withoutLMTPReturnPath(t *testing.T, got [][]byte, sent map[string][]byte) [][]byte {
	t.Helper()
	out := make([][]byte, len(got))
	for i, g := range got {
		line, rest, ok := bytes.Cut(g, []byte("\n"))
		if !ok || !bytes.HasPrefix(line, []byte("Return-Path: <")) {
			t.Fatalf("a delivered message does not start with Dovecot's Return-Path: %q", g[:min(len(g), 80)])
		}
		id := mailgen.ID(rest)
		if want := "Return-Path: <" + senderOf(sent[id]) + ">"; string(line) != want {
			t.Errorf("message %s: %q, want %q (MAIL FROM the message's Return-Path)", id, line, want)
		}
		out[i] = rest
	}
	return out
}

func byID(msgs [][]byte) map[string][]byte {
	m := map[string][]byte{}
	for _, msg := range msgs {
		m[mailgen.ID(msg)] = msg
	}
	return m
}

// TestLMTPDovecotSieve fetches 300 trap messages from alice's mailbox and
// delivers them over LMTP, on Dovecot's socket, into bob's, where bob's
// Sieve script files one of them into a folder: every message arrives byte
// for byte, once, the filed one in its folder, and alice's mailbox is
// empty afterwards.
func TestLMTPDovecotSieve(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithLMTP(),
		dovecottest.WithUser("alice", "secret"), dovecottest.WithUser("bob", "secret"))
	msgs := mailgen.Traps(300, 21)
	filedID := mailgen.ID(msgs[42])
	srv.SetSieve("bob", fmt.Sprintf(`require "fileinto";
if header :is "%s" "%s" { fileinto "Filed"; }
`, mailgen.IDHeader, filedID))
	srv.Populate("alice", msgs)
	dir := t.TempDir()
	cfg := writeAccount(t, srv, dir, acctSpec{user: "alice", deliver: lmtpTo("unix:"+srv.LMTPSocket(), "bob")})
	mustRun(t, 0, "-c", cfg, "fetch")

	if n := srv.Count("alice"); n != 0 {
		t.Fatalf("alice's mailbox still holds %d messages", n)
	}
	sent := byID(msgs)
	inbox := withoutLMTPReturnPath(t, srv.Messages("bob"), sent)
	filed := withoutLMTPReturnPath(t, srv.MessagesIn("bob", "Filed"), sent)
	if len(filed) != 1 || mailgen.ID(stripReceived(t, filed[0])) != filedID {
		t.Fatalf("the folder Filed holds %d messages, want the one with id %s", len(filed), filedID)
	}
	if len(inbox) != len(msgs)-1 {
		t.Errorf("INBOX holds %d messages, want %d", len(inbox), len(msgs)-1)
	}
	checkDelivered(t, append(inbox, filed...), msgs)

	// A second run finds nothing to do.
	mustRun(t, 0, "-c", cfg, "fetch")
	if n := srv.Count("bob"); n != len(msgs)-1 {
		t.Fatalf("bob's INBOX holds %d messages after a second run", n)
	}
}

// TestLMTPOverTCP: the same over Dovecot's LMTP port, with the default
// recipient, the account's user.
func TestLMTPOverTCP(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithLMTP(), dovecottest.WithUser("carol", "secret"))
	msgs := mailgen.Traps(30, 22)
	srv.Populate("carol", msgs)
	dir := t.TempDir()
	cfg := writeAccount(t, srv, dir, acctSpec{user: "carol", keep: true,
		deliver: fmt.Sprintf("lmtp = %q", srv.LMTPAddr())})
	r := mustRun(t, 0, "-vv", "-c", cfg, "fetch")
	// -vv traces the LMTP exchange, never a message
	for _, want := range []string{"lmtp: C: MAIL FROM:<", "lmtp: C: RCPT TO:<carol>", "lmtp: S: 250 "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-vv does not show %q", want)
		}
	}
	for _, m := range msgs {
		for _, line := range strings.Split(string(m), "\n") {
			if len(line) > 30 && !strings.Contains(line, ":") && strings.Contains(r.stderr, line) {
				t.Fatalf("-vv shows a line of a message: %q", line)
			}
		}
	}
	// keep: carol's mailbox now holds her 30 messages and the 30 copies
	got := srv.Messages("carol")
	if len(got) != 2*len(msgs) {
		t.Fatalf("carol's mailbox holds %d messages, want %d", len(got), 2*len(msgs))
	}
	checkDelivered(t, withoutLMTPReturnPath(t, got[len(msgs):], byID(msgs)), msgs)
}

// TestSMTPSink forwards to Postfix's smtp-sink: byte-exact; a 4xx answer
// to the data exits 75 (quietly but at -v) and a 5xx exits 74, the
// messages staying on the server each time, and the next run, with a
// server that takes them, delivers them all.
func TestSMTPSink(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("dave", "secret"), dovecottest.WithUser("erin", "secret"))

	t.Run("byte-exact", func(t *testing.T) {
		msgs := mailgen.Traps(120, 23)
		srv.Populate("dave", msgs)
		sink := smtpsink.Start(t)
		dir := t.TempDir()
		cfg := writeAccount(t, srv, dir, acctSpec{user: "dave", deliver: smtpTo(sink.Addr())})
		mustRun(t, 0, "-c", cfg, "fetch")
		got := sink.Messages()
		var data [][]byte
		sent := byID(msgs)
		for _, m := range got {
			data = append(data, m.Data)
			id := mailgen.ID(stripReceived(t, m.Data))
			if want := "<" + senderOf(sent[id]) + ">"; !strings.HasPrefix(m.MailArgs, want+" ") {
				t.Errorf("message %s: MAIL FROM %s, want %s", id, m.MailArgs, want)
			}
			if len(m.Rcpts) != 1 || m.Rcpts[0] != "<dave>" {
				t.Errorf("message %s: RCPT TO %q, want <dave>", id, m.Rcpts)
			}
		}
		checkDelivered(t, data, msgs)
		if n := srv.Count("dave"); n != 0 {
			t.Fatalf("the server still holds %d messages", n)
		}
	})

	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"4xx", []string{"-r", "."}, 75, "450"},
		{"5xx", []string{"-f", "."}, 74, "500"},
		{"4xx to RCPT", []string{"-r", "RCPT"}, 75, "450"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msgs := mailgen.Traps(15, 24)
			srv.Populate("erin", msgs)
			refusing := smtpsink.Start(t, smtpsink.Args(c.args...))
			dir := t.TempDir()
			cfg := writeAccount(t, srv, dir, acctSpec{user: "erin", deliver: smtpTo(refusing.Addr())})
			r := mustRun(t, c.code, "-c", cfg, "fetch")
			if c.code == 75 {
				// a try later is a notice at -v: cron mails nothing
				if r.stderr != "" {
					t.Errorf("a try later printed without -v:\n%s", r.stderr)
				}
				r = mustRun(t, c.code, "-v", "-c", cfg, "fetch")
			}
			if !strings.Contains(r.stderr, c.says) || !strings.Contains(r.stderr, "stays on the server") {
				t.Errorf("stderr does not report the refusal:\n%s", r.stderr)
			}
			if n := srv.Count("erin"); n != len(msgs) {
				t.Fatalf("the server holds %d messages, want all %d", n, len(msgs))
			}
			// the same account, now with a server that takes them
			taking := smtpsink.Start(t)
			cfg = writeAccount(t, srv, dir, acctSpec{user: "erin", deliver: smtpTo(taking.Addr())})
			mustRun(t, 0, "-c", cfg, "fetch")
			var data [][]byte
			for _, m := range taking.Messages() {
				data = append(data, m.Data)
			}
			checkDelivered(t, data, msgs)
			if n := srv.Count("erin"); n != 0 {
				t.Fatalf("the server still holds %d messages", n)
			}
		})
	}

	t.Run("no server", func(t *testing.T) {
		msgs := mailgen.Traps(3, 25)
		srv.Populate("erin", msgs)
		gone := smtpsink.Start(t)
		gone.Stop()
		dir := t.TempDir()
		cfg := writeAccount(t, srv, dir, acctSpec{user: "erin", deliver: smtpTo(gone.Addr())})
		r := mustRun(t, 75, "-c", cfg, "fetch")
		if !strings.Contains(r.stderr, "connecting to") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if n := srv.Count("erin"); n != len(msgs) {
			t.Fatalf("the server holds %d messages, want all %d", n, len(msgs))
		}
	})
}

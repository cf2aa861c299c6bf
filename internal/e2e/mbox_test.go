package e2e

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// TestMboxTraps fetches 200 trap messages into an mbox and reads it back
// with Python's mailbox module: every message is there once, byte for
// byte once the mboxrd quoting is undone, and each From_ line carries the
// message's Return-Path address, or MAILER-DAEMON when it has none, and
// the time of delivery (CONTRACT §5).
func TestMboxTraps(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("mboxer", "secret"))
	msgs := mailgen.Traps(200, 71)
	srv.Populate("mboxer", msgs)
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	cfg := writeAccount(t, srv, dir, acctSpec{user: "mboxer", deliver: mboxTo(path)})
	before := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	mustRun(t, 0, "-c", cfg, "fetch")
	after := time.Now().Add(time.Second).UTC()

	got := readMbox(t, path)
	checkDelivered(t, mboxBodies(got), msgs)
	if n := srv.Count("mboxer"); n != 0 {
		t.Errorf("the server still holds %d messages", n)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dotlock is left behind: %v", err)
	}

	sender := map[string]string{}
	noReturnPath := 0
	for _, m := range msgs {
		s := returnPathOf(m)
		if s == "" {
			s = "MAILER-DAEMON"
			noReturnPath++
		}
		sender[mailgen.ID(m)] = s
	}
	if noReturnPath == 0 || noReturnPath == len(msgs) {
		t.Fatalf("%d of %d messages without Return-Path: the test wants both kinds", noReturnPath, len(msgs))
	}
	for _, m := range got {
		body, ok := withoutReceived(m.msg)
		if !ok {
			continue // checkDelivered said so
		}
		id := mailgen.ID(body)
		rest, ok := strings.CutPrefix(m.from, "From "+sender[id]+" ")
		if !ok {
			t.Errorf("%s: From_ line %q, want the sender %s", id, m.from, sender[id])
			continue
		}
		when, err := time.Parse("Mon Jan _2 15:04:05 2006", rest)
		if err != nil || when.Before(before) || when.After(after) {
			t.Errorf("%s: From_ line %q: date %v, want the time of this run in asctime form", id, m.from, err)
		}
	}
}

// returnPathOf returns the address in a message's Return-Path field, ""
// if it has none.
func returnPathOf(msg []byte) string {
	for _, line := range bytes.Split(msg, []byte("\n")) {
		if len(line) == 0 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Return-Path: ")); ok {
			return strings.Trim(string(v), "<> ")
		}
	}
	return ""
}

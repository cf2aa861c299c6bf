package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// TestDiskFull delivers 40 messages of 20 KB into a Maildir and into an
// mbox on a 256 KB file system: popfetch must stop with exit 74, having
// deleted on the server only what was delivered whole, and leave no part
// of a message behind; once there is room, a later run brings the rest,
// and every message is there exactly once (CONTRACT §4, §5).
func TestDiskFull(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("full-maildir", "secret"), dovecottest.WithUser("full-mbox", "secret"))
	for _, kind := range []string{"maildir", "mbox"} {
		t.Run(kind, func(t *testing.T) {
			user := "full-" + kind
			msgs := bigMessages(40, 20<<10, user)
			srv.Populate(user, msgs)
			fs := mountTmpfs(t, "256k")
			dir := t.TempDir() // the state stays on a disk with room
			a := acctSpec{user: user}
			var read func() [][]byte
			switch kind {
			case "maildir":
				md := filepath.Join(fs, "Maildir")
				a.deliver = maildirTo(md)
				read = func() [][]byte {
					// nothing of a message that did not fit stays behind
					if ents, err := os.ReadDir(filepath.Join(md, "tmp")); err != nil || len(ents) > 0 {
						t.Errorf("tmp/ holds %d files (%v)", len(ents), err)
					}
					return maildirMessages(t, md)
				}
			case "mbox":
				path := filepath.Join(fs, "mbox")
				a.deliver = mboxTo(path)
				read = func() [][]byte { return mboxBodies(readMbox(t, path)) }
			}
			cfg := writeAccount(t, srv, dir, a)

			// The first run fills the disk; the second finds it full.
			var delivered []string
			for run := 1; run <= 2; run++ {
				r := popfetch(t, nil, "-c", cfg, "fetch")
				if r.code != 74 {
					t.Fatalf("run %d on a full disk: exit %d, want 74\n%s", run, r.code, r.stderr)
				}
				if !strings.Contains(r.stderr, "no space left on device") {
					t.Errorf("run %d does not say the disk is full:\n%s", run, r.stderr)
				}
				// Run 1 ends without QUIT (a message retrieved was not
				// delivered): what it delivered stays on the server,
				// remembered, and run 2 deletes it first thing.
				got := checkPartial(t, srv.Messages(user), read(), msgs, run == 1)
				if run == 1 && (len(got) == 0 || len(got) == len(msgs)) {
					t.Fatalf("%d of %d messages fit on 256 KB; the test wants some, not all", len(got), len(msgs))
				}
				if run == 2 && len(got) != len(delivered) {
					t.Errorf("the run on a full disk delivered %d more", len(got)-len(delivered))
				}
				delivered = got
				t.Logf("run %d: %d of %d messages delivered before the disk was full", run, len(got), len(msgs))
			}

			resizeTmpfs(t, fs, "4m")
			mustRun(t, 0, "-c", cfg, "fetch")
			checkDelivered(t, read(), msgs)
			if n := srv.Count(user); n != 0 {
				t.Errorf("the server still holds %d messages", n)
			}
		})
	}
}

// checkPartial checks a destination after a delivery that stopped short:
// each message in it is whole and there once, the server (which holds
// onServer) holds every other one, and none of those unless pending
// (delivered in a session that ended without QUIT: CONTRACT §5). It
// returns the ids delivered.
func checkPartial(t *testing.T, onServer, got, msgs [][]byte, pending bool) []string {
	t.Helper()
	tl := count(got, msgs)
	if len(tl.damaged) > 0 {
		t.Fatalf("damaged or partial messages in the destination: %v", head(tl.damaged))
	}
	if tl.dups > 0 {
		t.Errorf("%d messages delivered twice", tl.dups)
	}
	held := map[string]bool{}
	for _, m := range onServer {
		held[mailgen.ID(m)] = true
	}
	var delivered, lost, both []string
	for _, m := range msgs {
		id := mailgen.ID(m)
		switch {
		case tl.copies[id] > 0 && held[id]:
			both = append(both, id)
			delivered = append(delivered, id)
		case tl.copies[id] > 0:
			delivered = append(delivered, id)
		case !held[id]:
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d deleted on the server but not delivered: %v", len(lost), head(lost))
	}
	if len(both) > 0 && !pending {
		t.Errorf("delivered but still on the server: %v", both)
	}
	sort.Strings(delivered)
	return delivered
}

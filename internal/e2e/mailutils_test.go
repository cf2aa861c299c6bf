package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/internal/mailutilstest"
)

// Retrieval is a commitment (issue 10, CONTRACT §5): GNU mailutils pop3d
// with "expire 0; delete-expired yes" removes every message retrieved by
// RETR or TOP in a session that ends with QUIT, DELE or not. popfetch must
// lose nothing there: a session in which a message was retrieved and not
// delivered ends without QUIT. Each test compares what the server holds
// (STAT, and the messages byte for byte) before and after, and what was
// delivered, byte-exact, with the messages as the server held them.

// muAccount writes dir/config.toml for user of srv (plain POP3 on
// loopback) delivering as deliver says, with its state in dir/state.
func muAccount(t *testing.T, srv *mailutilstest.Server, dir, user, deliver string) string {
	t.Helper()
	return writeAccount(t, nil, dir, acctSpec{user: srv.Login(user), addr: srv.Addr(), tls: "none", deliver: deliver})
}

// muPopulate puts msgs on the server and returns them as the server holds
// them (with the X-UIDL field it serves): what must be delivered.
func muPopulate(t *testing.T, srv *mailutilstest.Server, user string, msgs [][]byte) [][]byte {
	t.Helper()
	srv.Populate(user, msgs)
	held := srv.Messages(user)
	if len(held) != len(msgs) {
		t.Fatalf("the server holds %d messages, want %d", len(held), len(msgs))
	}
	return held
}

// sameOnServer fails unless the server holds exactly want, byte for byte,
// and STAT says so.
func sameOnServer(t *testing.T, srv *mailutilstest.Server, user string, want [][]byte, stat [2]int64, when string) {
	t.Helper()
	if got := srv.Messages(user); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("%s: the server holds %d messages, want the %d it held before, unchanged", when, len(got), len(want))
	}
	if n, octets := srv.Stat(user, "secret"); n != int(stat[0]) || octets != stat[1] {
		t.Fatalf("%s: STAT %d %d, want %d %d as before", when, n, octets, stat[0], stat[1])
	}
}

func statOf(srv *mailutilstest.Server, user string) [2]int64 {
	n, octets := srv.Stat(user, "secret")
	return [2]int64{int64(n), octets}
}

// fetchTheRest runs a fetch that must succeed and leave every message of
// want delivered exactly once into the Maildir md, and the server empty.
func fetchTheRest(t *testing.T, srv *mailutilstest.Server, user, cfg, md string, want [][]byte) {
	t.Helper()
	mustRun(t, 0, "-c", cfg, "fetch")
	checkDelivered(t, maildirMessages(t, md), want)
	if n := srv.Count(user); n != 0 {
		t.Fatalf("the server still holds %d messages", n)
	}
}

// TestMailutilsFetch: the baseline. Every trap message is delivered
// byte-exact, once, and the server is left empty.
func TestMailutilsFetch(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", mailgen.Traps(200, 71))
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	cfg := muAccount(t, srv, dir, "alice", maildirTo(md))
	fetchTheRest(t, srv, "alice", cfg, md, want)
}

// TestMailutilsCheckList: `check --list` reads each new message's header
// with TOP, which this server counts as retrieval: it must change nothing
// on the server (it removed 10 of 10 before issue 10). A fetch afterwards
// delivers them all.
func TestMailutilsCheckList(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", mailgen.Traps(10, 72))
	stat := statOf(srv, "alice")
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	cfg := muAccount(t, srv, dir, "alice", maildirTo(md))

	r := mustRun(t, 0, "-c", cfg, "check", "--list")
	if n := strings.Count(r.stdout, "\n"); n < 10 {
		t.Errorf("check --list printed %d lines, want one per message:\n%s", n, r.stdout)
	}
	sameOnServer(t, srv, "alice", want, stat, "after check --list")
	mustRun(t, 0, "-c", cfg, "check", "--json")
	sameOnServer(t, srv, "alice", want, stat, "after check --json")

	fetchTheRest(t, srv, "alice", cfg, md, want)
}

// TestMailutilsMDATempfail: an MDA that answers 75 (try later) for one
// message. The run exits 75 and the server keeps every message (the
// session hangs up instead of QUIT, which would remove the refused one);
// the next run deletes what was delivered, in a session that retrieves
// nothing, and keeps the refused one; once the MDA takes it, it is
// delivered, once.
func TestMailutilsMDATempfail(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", mailgen.Traps(10, 73))
	stat := statOf(srv, "alice")
	refused := want[3]
	others := slices.Concat(want[:3], want[4:])
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	bad := scriptMDA(t, filepath.Join(dir, "bad-mda"), md, mailgen.ID(refused), 75)
	good := scriptMDA(t, filepath.Join(dir, "good-mda"), md, "", 0)

	cfg := muAccount(t, srv, dir, "alice", mdaTo(bad+" -f %F"))
	// an MDA's "try later" is a notice, shown at -v (not cron mail)
	r := popfetch(t, nil, "-c", cfg, "-v", "fetch")
	checkExit(t, r, 75, "exited with status 75")
	checkDelivered(t, maildirMessages(t, md), others)
	sameOnServer(t, srv, "alice", want, stat, "after the run whose MDA said 75")

	r = popfetch(t, nil, "-c", cfg, "-v", "fetch")
	checkExit(t, r, 75, "exited with status 75")
	checkDelivered(t, maildirMessages(t, md), others)
	if got := srv.Messages("alice"); !slices.EqualFunc(got, [][]byte{refused}, bytes.Equal) {
		t.Fatalf("second run: the server holds %d messages, want only the refused one", len(got))
	}

	cfg = muAccount(t, srv, dir, "alice", mdaTo(good+" -f %F"))
	fetchTheRest(t, srv, "alice", cfg, md, want)
}

// TestMailutilsDiskFull: 40 messages of 20 KB, all pipelined at once (the
// server offers PIPELINING), into a Maildir on a 256 KB file system. The
// disk fills in the middle: exit 74, and messages retrieved after it (and
// the one cut by it) must stay on the server, which a QUIT would have
// removed. The next run deletes what was delivered and finds the disk
// still full; once there is room, a run brings the rest. Every message is
// delivered exactly once.
func TestMailutilsDiskFull(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", bigMessages(40, 20<<10, "mu"))
	stat := statOf(srv, "alice")
	fs := mountTmpfs(t, "256k")
	md := filepath.Join(fs, "Maildir")
	dir := t.TempDir() // the state stays on a disk with room
	cfg := muAccount(t, srv, dir, "alice", maildirTo(md))

	var delivered []string
	for run := 1; run <= 2; run++ {
		r := popfetch(t, nil, "-c", cfg, "fetch")
		checkExit(t, r, 74, "no space left on device")
		got := checkPartial(t, srv.Messages("alice"), maildirMessages(t, md), want, run == 1)
		switch {
		case run == 1 && (len(got) == 0 || len(got) == len(want)):
			t.Fatalf("%d of %d messages fit on 256 KB; the test wants some, not all", len(got), len(want))
		case run == 1:
			sameOnServer(t, srv, "alice", want, stat, "after the run that filled the disk")
		case len(got) != len(delivered):
			t.Errorf("the run on a full disk delivered %d more", len(got)-len(delivered))
		}
		delivered = got
	}
	if n := srv.Count("alice"); n != len(want)-len(delivered) {
		t.Errorf("after the second run the server holds %d, want the %d not delivered", n, len(want)-len(delivered))
	}

	resizeTmpfs(t, fs, "4m")
	fetchTheRest(t, srv, "alice", cfg, md, want)
}

// TestMailutilsSIGTERM: SIGTERM in the middle of a run of 300 messages,
// all retrieved ahead of a slow MDA. popfetch finishes the message in
// hand and exits 0 without QUIT (which would remove all 300): nothing is
// lost. Reruns complete, each message delivered exactly once.
func TestMailutilsSIGTERM(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", mailgen.Traps(300, 74))
	stat := statOf(srv, "alice")
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	slow := writeScript(t, filepath.Join(dir, "slow-mda"), "sleep 0.02\nexec "+scriptMDA(t, filepath.Join(dir, "mda"), md, "", 0)+"\n")
	cfg := muAccount(t, srv, dir, "alice", mdaTo(slow))

	cmd := exec.Command(popfetchBin, "-c", cfg, "fetch")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 messages delivered", func() bool { return countNew(md) >= 20 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
	}
	waitNoProcess(t, filepath.Join(dir, "mda"))
	got := checkPartial(t, srv.Messages("alice"), maildirMessages(t, md), want, true)
	if len(got) == len(want) {
		t.Fatal("the run delivered everything before the SIGTERM; the test wants it stopped midway")
	}
	t.Logf("%d of %d delivered before the stop", len(got), len(want))
	sameOnServer(t, srv, "alice", want, stat, "after SIGTERM")

	cfg = muAccount(t, srv, dir, "alice", maildirTo(md))
	fetchTheRest(t, srv, "alice", cfg, md, want)
}

// TestMailutilsExpireAdvertised: the server says EXPIRE0 in CAPA. In
// delete mode that is what the user wants, and popfetch says nothing; in
// keep mode the messages cannot stay, and popfetch warns (they are
// delivered all the same).
func TestMailutilsExpireAdvertised(t *testing.T) {
	srv := mailutilstest.Start(t, mailutilstest.WithUser("alice", "secret"))
	want := muPopulate(t, srv, "alice", mailgen.Traps(3, 75))
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	cfg := writeAccount(t, nil, dir, acctSpec{user: srv.Login("alice"), addr: srv.Addr(), tls: "none", deliver: maildirTo(md), keep: true})
	r := mustRun(t, 0, "-c", cfg, "fetch")
	if !strings.Contains(r.stderr, "EXPIRE 0") || !strings.Contains(r.stderr, "keep") {
		t.Errorf("keep mode on an EXPIRE 0 server: no warning:\n%s", r.stderr)
	}
	checkDelivered(t, maildirMessages(t, md), want)

	more := muPopulate(t, srv, "alice", mailgen.Traps(6, 75)[3:])
	cfg = muAccount(t, srv, dir, "alice", maildirTo(md))
	if r := mustRun(t, 0, "-c", cfg, "fetch"); r.stderr != "" {
		t.Errorf("delete mode on an EXPIRE 0 server: stderr %q, want nothing", r.stderr)
	}
	checkDelivered(t, maildirMessages(t, md), slices.Concat(want, more))
}

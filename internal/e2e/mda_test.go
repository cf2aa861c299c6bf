package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// scriptMDA writes a shell MDA that delivers into the Maildir md and, if
// failID is set, refuses the message with that X-Mailgen-Id by exiting
// with status code. It returns the MDA command.
func scriptMDA(t *testing.T, path, md, failID string, code int) string {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	refuse := ""
	if failID != "" {
		refuse = fmt.Sprintf("if LC_ALL=C grep -qx '%s: %s' \"$f\"; then rm -f \"$f\"; exit %d; fi\n", mailgen.IDHeader, failID, code)
	}
	return writeScript(t, path, fmt.Sprintf(`f=$(mktemp %q/tmp/m.XXXXXX) || exit 74
cat >"$f" || exit 74
%smv "$f" %q/new/ || exit 74
`, md, refuse, md))
}

// serverIDs returns the ids of the messages the server holds, sorted.
func serverIDs(srv *dovecottest.Server, user string) []string {
	var ids []string
	for _, m := range srv.Messages(user) {
		ids = append(ids, mailgen.ID(m))
	}
	sort.Strings(ids)
	return ids
}

// TestMDAExitStatus: a message the MDA refuses stays on the server, not
// marked retrieved, while the others are delivered and deleted; exit 74
// for a failure, 75 when the MDA says "try later" (EX_TEMPFAIL). A later
// run with an MDA that accepts it delivers it, once.
func TestMDAExitStatus(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("mda-fail", "secret"), dovecottest.WithUser("mda-tempfail", "secret"))
	for _, tc := range []struct {
		user       string
		mdaStatus  int
		wantStatus int
	}{
		{"mda-fail", 1, 74},
		{"mda-tempfail", 75, 75},
	} {
		t.Run(fmt.Sprintf("exit %d", tc.mdaStatus), func(t *testing.T) {
			msgs := mailgen.Traps(10, uint64(30+tc.mdaStatus))
			srv.Populate(tc.user, msgs)
			refused := mailgen.ID(msgs[3])
			others := slices.Concat(msgs[:3], msgs[4:])
			dir := t.TempDir()
			md := filepath.Join(dir, "Maildir")
			bad := scriptMDA(t, filepath.Join(dir, "bad-mda"), md, refused, tc.mdaStatus)
			good := scriptMDA(t, filepath.Join(dir, "good-mda"), md, "", 0)

			cfg := writeAccount(t, srv, dir, acctSpec{user: tc.user, deliver: mdaTo(bad + " -f %F")})
			for run := 1; run <= 2; run++ { // refused again: it was not marked retrieved
				// -v: an MDA's "try later" is a notice, not cron mail
				r := popfetch(t, nil, "-c", cfg, "-v", "fetch")
				if r.code != tc.wantStatus {
					t.Fatalf("run %d: exit %d, want %d\n%s", run, r.code, tc.wantStatus, r.stderr)
				}
				if !strings.Contains(r.stderr, fmt.Sprintf("exited with status %d", tc.mdaStatus)) {
					t.Errorf("run %d does not report the MDA's status:\n%s", run, r.stderr)
				}
				checkDelivered(t, maildirMessages(t, md), others)
				// CONTRACT §5: run 1 retrieved a message it did not
				// deliver, so it ends without QUIT and the server keeps
				// all; run 2 first deletes what run 1 delivered, in a
				// session that retrieves nothing.
				want := []string{refused}
				if run == 1 {
					want = serverIDs(srv, tc.user)[:0]
					for _, m := range msgs {
						want = append(want, mailgen.ID(m))
					}
					slices.Sort(want)
				}
				if ids := serverIDs(srv, tc.user); !slices.Equal(ids, want) {
					t.Fatalf("run %d: the server holds %v, want %v", run, ids, want)
				}
			}

			cfg = writeAccount(t, srv, dir, acctSpec{user: tc.user, deliver: mdaTo(good + " -f %F")})
			mustRun(t, 0, "-c", cfg, "fetch")
			checkDelivered(t, maildirMessages(t, md), msgs)
			if n := srv.Count(tc.user); n != 0 {
				t.Errorf("the server still holds %d messages", n)
			}
		})
	}
}

// TestMDAProcmail delivers 100 trap messages through real procmail with a
// private procmailrc into a Maildir, byte for byte.
func TestMDAProcmail(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("procmail", "secret"))
	msgs := mailgen.Traps(100, 41)
	srv.Populate("procmail", msgs)
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	cfg := writeAccount(t, srv, dir, acctSpec{user: "procmail", deliver: mdaTo(procmailMDA(t, dir, md))})
	mustRun(t, 0, "-c", cfg, "fetch")
	checkDelivered(t, maildirMessages(t, md), msgs)
	if n := srv.Count("procmail"); n != 0 {
		t.Errorf("the server still holds %d messages", n)
	}
}

// TestMDANoInjection: envelope senders full of shell syntax reach the MDA
// as one literal argument each, and nothing they spell is ever run
// (CONTRACT §6: the MDA command is never run by a shell).
func TestMDANoInjection(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUser("inject", "secret"))
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	if err := os.Mkdir(pwned, 0o700); err != nil {
		t.Fatal(err)
	}
	senders := []string{
		"$(touch " + pwned + "/dollar)@example.org",
		"`touch " + pwned + "/backtick`@example.org",
		"x;touch " + pwned + "/semicolon;@example.org",
		"a|touch " + pwned + "/pipe&&touch " + pwned + "/and||x@example.org",
		`"$(touch ` + pwned + `/dq)"'$(touch ` + pwned + `/sq)'@example.org`,
		"* ? [a] ~ $HOME ${PATH} \\n %T %F %% @example.org",
		"-oi@example.org",
		"", // none: MAILER-DAEMON
	}
	want := map[string]string{} // id → the sender the MDA must see
	var msgs [][]byte
	for i, s := range senders {
		id := fmt.Sprintf("inject-%d", i)
		rp := fmt.Sprintf("Return-Path: <%s>\n", s)
		want[id] = s
		if s == "" {
			rp = ""
			want[id] = "MAILER-DAEMON"
		}
		msgs = append(msgs, []byte(fmt.Sprintf("%s: %s\n%sFrom: x@example.org\nSubject: $(touch %s/subject); `id`\n\nbody $(touch %s/body)\n",
			mailgen.IDHeader, id, rp, pwned, pwned)))
	}
	srv.Populate("inject", msgs)

	calls := filepath.Join(dir, "calls")
	if err := os.Mkdir(calls, 0o700); err != nil {
		t.Fatal(err)
	}
	recorder := writeScript(t, filepath.Join(dir, "argv-recorder.sh"), fmt.Sprintf(`f=$(mktemp %q/call.XXXXXX) || exit 74
for a in "$@"; do printf '%%s\0' "$a"; done >"$f.args"
cat >"$f.msg"
`, calls))
	cfg := writeAccount(t, srv, dir, acctSpec{user: "inject", deliver: mdaTo(recorder + " -f %F")})
	mustRun(t, 0, "-c", cfg, "fetch")

	if ents, _ := os.ReadDir(pwned); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("a sender's shell syntax was run: %v", names)
	}
	argFiles, _ := filepath.Glob(filepath.Join(calls, "*.args"))
	if len(argFiles) != len(msgs) {
		t.Fatalf("the MDA ran %d times, want %d", len(argFiles), len(msgs))
	}
	var got [][]byte
	for _, af := range argFiles {
		b, err := os.ReadFile(af)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := os.ReadFile(strings.TrimSuffix(af, ".args") + ".msg")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg)
		id := mailgen.ID(stripReceived(t, msg))
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if wantArgs := []string{"-f", want[id]}; !slices.Equal(args, wantArgs) {
			t.Errorf("%s: the MDA got %q, want %q", id, args, wantArgs)
		}
	}
	checkDelivered(t, got, msgs)
	if !bytes.Contains(got[0], []byte("$(touch")) {
		t.Error("the messages lost their contents")
	}
}

package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMboxTargetUsesReturnPath(t *testing.T) {
	f := newFixture(t, 0)
	f.mb.Add([]byte("Return-Path: <bounce@lists.example.org>\nSubject: a\n\nFrom the start\n"))
	f.mb.Add([]byte("Subject: no return path\n\nbody\n"))
	mbox := filepath.Join(f.dir, "mbox")
	f.acct.Deliver = configDeliver("", mbox, "")
	if res, err := f.run(t, Options{}); err != nil || res.Fetched != 2 {
		t.Fatalf("%+v %v\n%s", res, err, f.logs)
	}
	b, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "From bounce@lists.example.org ") {
		t.Errorf("first From_ line does not name the Return-Path: %q", s[:60])
	}
	if !strings.Contains(s, "\n>From the start\n") {
		t.Error("body From line not quoted")
	}
	if !strings.Contains(s, "\n\nFrom MAILER-DAEMON ") {
		t.Error("second message's From_ line is not MAILER-DAEMON")
	}
}

func TestMDATargetFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"fails", 1}, {"tempfails", 75}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 3)
			script := filepath.Join(f.dir, "mda.sh")
			// deliver message 2 (by its subject) badly, the others fine
			body := "#!/bin/sh\nout=\"$1\"\nmsg=$(cat)\ncase \"$msg\" in *'message 1'*) exit " +
				itoa(tc.status) + ";; esac\nprintf '%s\\n' \"$msg\" > \"$out/$(date +%s%N)\"\n"
			if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(f.dir, "out")
			os.Mkdir(out, 0o700)
			f.acct.Deliver = configDeliver("", "", script+" "+out)
			res, err := f.run(t, Options{})
			if err == nil || res.Fetched != 2 || res.Failed != 1 {
				t.Fatalf("%+v %v", res, err)
			}
			// CONTRACT §5: a message retrieved and not delivered means no
			// QUIT; the two delivered are deleted by the next run.
			if f.mb.Len() != 3 || !res.HungUp {
				t.Fatalf("server holds %d (hung up: %v), want all 3 and no QUIT", f.mb.Len(), res.HungUp)
			}
			// the failed message is retried by the next run
			if err := os.WriteFile(script, []byte("#!/bin/sh\ncat > \"$1/retry\"\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			if res, err := f.run(t, Options{}); err != nil || res.Fetched != 1 || res.Deleted != 3 || f.mb.Len() != 0 {
				t.Fatalf("retry: %+v %v", res, err)
			}
		})
	}
}

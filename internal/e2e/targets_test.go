package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// Helpers shared by the delivery tests (crash, full disk, MDA, mbox,
// lock, Received): accounts with any target, and independent readers of
// what was delivered.

// acctSpec describes the one account of a configuration file.
type acctSpec struct {
	name    string // default "d"
	user    string
	addr    string // host:port; default the server's implicit-TLS port
	tls     string // default "implicit"
	timeout string // default "20s"
	keep    bool
	deliver string // the [account.deliver] line, from maildirTo, mboxTo or mdaTo
	extra   string // more account lines
}

func maildirTo(dir string) string { return fmt.Sprintf("maildir = %q", dir) }
func mboxTo(path string) string   { return fmt.Sprintf("mbox = %q", path) }
func mdaTo(cmd string) string     { return fmt.Sprintf("mda = %q", cmd) }

// writeAccount writes dir/config.toml (mode 0600) for one account of srv,
// with its state in dir/state, and returns its path. received_header is
// left to its default, on: checkDelivered and count expect the field.
func writeAccount(t *testing.T, srv *dovecottest.Server, dir string, a acctSpec) string {
	t.Helper()
	if a.name == "" {
		a.name = "d"
	}
	if a.addr == "" {
		a.addr = srv.TLSAddr()
	}
	if a.tls == "" {
		a.tls = "implicit"
	}
	if a.timeout == "" {
		a.timeout = "20s"
	}
	host, port, _ := strings.Cut(a.addr, ":")
	ca := ""
	if a.tls != "none" && srv != nil {
		ca = fmt.Sprintf("tls_ca_file = %q", srv.CAFile())
	}
	return writeConfig(t, dir, fmt.Sprintf(`
[defaults]
state_dir = %q
timeout = %q

[[account]]
name = %q
host = %q
port = %s
tls = %q
%s
user = %q
password = "secret"
keep = %t
%s

[account.deliver]
%s
`, filepath.Join(dir, "state"), a.timeout, a.name, host, port, a.tls, ca, a.user, a.keep, a.extra, a.deliver))
}

// procmailMDA writes a private procmailrc that delivers into the Maildir
// md and returns the MDA command running procmail with it. -m makes
// procmail a general-purpose filter: it reads only this rcfile and, run by
// root, keeps root's identity instead of switching to a recipient's.
func procmailMDA(t *testing.T, dir, md string) string {
	t.Helper()
	needTool(t, "procmail")
	rc := filepath.Join(dir, "procmailrc")
	body := fmt.Sprintf("LOGFILE=%s\nDEFAULT=%s/\n", filepath.Join(dir, "procmail.log"), md)
	if err := os.WriteFile(rc, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return "procmail -m -f %F " + rc
}

// mboxMessage is a message read back from an mbox.
type mboxMessage struct {
	from string // the From_ line, without its newline
	msg  []byte // the message, mboxrd quoting undone
}

// readMbox reads an mbox with Python's mailbox module (an independent
// reader: deliver/testdata/readmbox.py) and undoes the mboxrd quoting.
func readMbox(t *testing.T, path string) []mboxMessage {
	t.Helper()
	py := needTool(t, "python3")
	reader, err := filepath.Abs(filepath.Join("..", "..", "deliver", "testdata", "readmbox.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, reader, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 readmbox.py %s: %v\n%s", path, err, stderr.String())
	}
	var raw []struct{ From, Msg string }
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	msgs := make([]mboxMessage, len(raw))
	for i, r := range raw {
		f, err1 := base64.StdEncoding.DecodeString(r.From)
		m, err2 := base64.StdEncoding.DecodeString(r.Msg)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		msgs[i] = mboxMessage{from: string(f), msg: unquoteMboxrd(m)}
	}
	return msgs
}

// mboxBodies returns the messages of readMbox without their From_ lines.
func mboxBodies(msgs []mboxMessage) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.msg
	}
	return out
}

// unquoteMboxrd removes one '>' from every line matching ^>+From .
func unquoteMboxrd(msg []byte) []byte {
	lines := bytes.SplitAfter(msg, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) && l[0] == '>' {
			lines[i] = l[1:]
		}
	}
	return bytes.Join(lines, nil)
}

// withoutReceived returns msg without popfetch's Received field, or false
// if msg does not start with one (a fragment, say).
func withoutReceived(msg []byte) ([]byte, bool) {
	if !bytes.HasPrefix(msg, []byte("Received: from ")) {
		return nil, false
	}
	rest := msg
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			return rest, true
		}
	}
}

// tally is what a destination holds compared with what was sent.
type tally struct {
	copies    map[string]int // id → intact copies
	damaged   []string       // messages that are not an intact copy of one sent
	missing   []string       // ids sent but not delivered intact
	dups      int            // intact copies beyond the first
	fragments int            // damaged messages that are a cut copy of one sent
}

// count compares got with want (both as checkDelivered takes them), never
// failing the test: the caller decides what is acceptable.
func count(got, want [][]byte) tally {
	wantByID := map[string][]byte{}
	for _, m := range want {
		wantByID[mailgen.ID(m)] = mailgen.Canonical(m)
	}
	tl := tally{copies: map[string]int{}}
	for _, g := range got {
		body, ok := withoutReceived(g)
		id := ""
		if ok {
			id = mailgen.ID(body)
		}
		if w, found := wantByID[id]; ok && found && bytes.Equal(body, w) {
			tl.copies[id]++
			continue
		}
		if isFragment(g, want) {
			tl.fragments++
		}
		tl.damaged = append(tl.damaged, describe(g, wantByID))
	}
	for id := range wantByID {
		switch n := tl.copies[id]; {
		case n == 0:
			tl.missing = append(tl.missing, id)
		case n > 1:
			tl.dups += n - 1
		}
	}
	sort.Strings(tl.missing)
	return tl
}

// isFragment reports whether g is the start of a delivered message cut
// short: its Received field (or part of it) followed by a prefix of one
// sent. A message that does not end with a newline gets one in an mbox.
func isFragment(g []byte, want [][]byte) bool {
	body, ok := withoutReceived(g)
	if !ok {
		// cut inside the Received field
		return bytes.HasPrefix(g, []byte("Received: from ")) ||
			bytes.HasPrefix([]byte("Received: from "), bytes.TrimSuffix(g, []byte("\n")))
	}
	trimmed := bytes.TrimSuffix(body, []byte("\n"))
	for _, w := range want {
		c := mailgen.Canonical(w)
		if len(trimmed) < len(c) && bytes.HasPrefix(c, trimmed) {
			return true
		}
	}
	return false
}

func describe(g []byte, wantByID map[string][]byte) string {
	body, ok := withoutReceived(g)
	if !ok {
		return fmt.Sprintf("%d bytes without popfetch's Received field: %q", len(g), g[:min(len(g), 60)])
	}
	id := mailgen.ID(body)
	w, found := wantByID[id]
	if !found {
		return fmt.Sprintf("%d bytes, id %q, not sent", len(body), id)
	}
	return fmt.Sprintf("id %s: %d bytes, want %d, first difference at byte %d", id, len(body), len(w), firstDiff(body, w))
}

// waitNoProcess waits until no process has marker in its command line: an
// MDA left behind by a killed popfetch (it runs in its own process group)
// must be done before its work is counted.
func waitNoProcess(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for processWith(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("a process with %s in its command line is still running", marker)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processWith reports whether a live process (not a zombie) has marker in
// its command line.
func processWith(marker string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(marker)) {
			return true
		}
	}
	return false
}

// bigMessages returns n messages of about size bytes each, ids
// "big-TAG-i", with Return-Path and body lines an mbox must quote.
func bigMessages(n, size int, tag string) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s: big-%s-%d\nReturn-Path: <sender%d@example.org>\nFrom: sender%d@example.org\nSubject: big %d\n\n",
			mailgen.IDHeader, tag, i, i, i, i)
		for line := 0; b.Len() < size; line++ {
			switch line % 50 {
			case 7:
				b.WriteString("From the middle of a big message\n")
			case 19:
				b.WriteString(">From a quoted line\n")
			case 31:
				b.WriteString(".\n")
			default:
				fmt.Fprintf(&b, "line %06d of message %d: the quick brown fox jumps over the lazy dog\n", line, i)
			}
		}
		msgs[i] = b.Bytes()
	}
	return msgs
}

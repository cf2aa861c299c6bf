package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

func sizes(mb *pop3test.Mailbox) int64 {
	var n int64
	for _, m := range mb.Messages() {
		n += m.Size()
	}
	return n
}

func plainMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: sender%d@example.org\nSubject: message %d\nDate: Mon, 06 May 2024 10:%02d:00 +0200\n\nbody %d\n", i, i, i, i))
}

// commandsSince returns the command words the server received after the
// first n lines.
func commandsSince(srv *pop3test.Server, n int) []string {
	var cmds []string
	for _, l := range srv.Received()[n:] {
		w, _, _ := strings.Cut(l, " ")
		cmds = append(cmds, strings.ToUpper(w))
	}
	return cmds
}

func TestCheckCountsMessagesAndBytes(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	for i := range 3 {
		a.mb.Add(plainMessage(i))
	}
	b := e.add("work", "")
	b.mb.Add(bytes.Repeat([]byte("x"), 3000))

	out, errs := e.mustRun(0, "check")
	want := fmt.Sprintf("personal: 3 new messages, %s\nwork: 1 new message, 2.9 KiB\n", humanBytes(sizes(a.mb)))
	if out != want || errs != "" {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", out, want, errs)
	}
	// named accounts only
	out, _ = e.mustRun(0, "check", "work")
	if out != "work: 1 new message, 2.9 KiB\n" {
		t.Errorf("check work: %q", out)
	}
	// -q: the exit status alone answers
	out, errs = e.mustRun(0, "-q", "check")
	if out != "" || errs != "" {
		t.Errorf("check -q printed %q %q", out, errs)
	}
}

func TestCheckNoNewMailExits1(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	out, errs := e.mustRun(1, "check")
	if out != "personal: no new messages\n" || errs != "" {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}

func TestCheckNewMailInAnyAccountExits0(t *testing.T) {
	e := newCLIEnv(t)
	e.add("empty", "")
	a := e.add("full", "")
	a.mb.Add(plainMessage(1))
	out, _ := e.mustRun(0, "check")
	if !strings.Contains(out, "empty: no new messages\n") || !strings.Contains(out, "full: 1 new message,") {
		t.Errorf("stdout %q", out)
	}
}

func TestCheckUnknownAccountExits64(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	_, errs := e.mustRun(64, "check", "persnal")
	if !strings.Contains(errs, `unknown account "persnal" (did you mean "personal"?)`) {
		t.Errorf("stderr %q", errs)
	}
}

func TestCheckAfterKeepFetchFindsNothingNew(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "keep = true")
	for i := range 4 {
		a.mb.Add(plainMessage(i))
	}
	e.mustRun(0, "check")
	e.mustRun(0, "fetch")
	if e.delivered(a) != 4 || a.mb.Len() != 4 {
		t.Fatalf("fetch: %d delivered, %d on the server", e.delivered(a), a.mb.Len())
	}
	out, _ := e.mustRun(1, "check")
	if out != "personal: no new messages\n" {
		t.Errorf("check after fetch: %q", out)
	}
	a.mb.Add(plainMessage(9))
	out, _ = e.mustRun(0, "check")
	if !strings.HasPrefix(out, "personal: 1 new message, ") {
		t.Errorf("check after one more: %q", out)
	}
}

// The selection is fetch's: max_messages limits, max_size leaves out (and
// says so), fetch_all counts what was retrieved before.
func TestCheckSelectsAsFetchDoes(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "keep = true\nmax_messages = 2\nmax_size = \"1KiB\"")
	a.mb.Add(plainMessage(0))
	a.mb.Add(bytes.Repeat([]byte("y"), 2000)) // too large
	a.mb.Add(plainMessage(2))
	a.mb.Add(plainMessage(3))
	out, _ := e.mustRun(0, "check", "--json")
	got := decodeCheck(t, out)
	m := a.mb.Messages()
	if n := got.Accounts[0].New; n != 2 || got.Accounts[0].NewBytes != m[0].Size()+m[2].Size() {
		t.Errorf("max_messages/max_size: %+v", got.Accounts[0])
	}
	out, _ = e.mustRun(0, "check")
	if !strings.Contains(out, "(and 1 larger than max_size, which fetch leaves on the server)") {
		t.Errorf("human output does not mention the large message: %q", out)
	}
	e.mustRun(0, "fetch")
	if e.delivered(a) != 2 {
		t.Fatalf("fetch delivered %d, check said 2", e.delivered(a))
	}
	out, _ = e.mustRun(0, "check", "--json")
	if got := decodeCheck(t, out); got.Accounts[0].New != 1 {
		t.Errorf("after fetch: %+v, want the one max_messages held back", got.Accounts[0])
	}
	e.mustRun(0, "fetch")
	e.mustRun(1, "check")

	a.extra = "keep = true\nfetch_all = true"
	e.writeConfig()
	out, _ = e.mustRun(0, "check", "--json")
	if got := decodeCheck(t, out); got.Accounts[0].New != 4 || got.Accounts[0].NewBytes != sizes(a.mb) {
		t.Errorf("fetch_all: %+v", got.Accounts[0])
	}
}

// Messages delivered in a session whose QUIT never completed are deleted,
// not retrieved, by the next fetch: they are not new.
func TestCheckPendingDeletionsAreNotNew(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	u1 := a.mb.Add(plainMessage(1))
	a.mb.Add(plainMessage(2))
	c, err := uidcache.Open(e.state, e.key(a))
	if err != nil {
		t.Fatal(err)
	}
	c.Put(u1, uidcache.Entry{Seen: time.Now(), State: uidcache.Deleted})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	out, _ := e.mustRun(0, "check", "--json")
	got := decodeCheck(t, out)
	if got.Accounts[0].New != 1 || got.Accounts[0].NewBytes != a.mb.Messages()[1].Size() {
		t.Errorf("%+v", got.Accounts[0])
	}
}

// checkJSON is the contract's shape, decoded.
type checkJSON struct {
	Accounts []struct {
		Name     string  `json:"name"`
		New      int     `json:"new"`
		NewBytes int64   `json:"new_bytes"`
		Error    *string `json:"error"`
		Messages []struct {
			UID     string `json:"uid"`
			Size    int64  `json:"size"`
			Date    string `json:"date"`
			From    string `json:"from"`
			Subject string `json:"subject"`
		} `json:"messages"`
	} `json:"accounts"`
}

func decodeCheck(t *testing.T, out string) checkJSON {
	t.Helper()
	var got checkJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("check --json printed more than one value:\n%s", out)
	}
	return got
}

func TestCheckJSON(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	u1 := a.mb.Add(plainMessage(1))
	u2 := a.mb.Add([]byte("From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.org>\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?=\nDate: Tue, 7 May 2024 08:30:00 +0000\n\nhi\n"))
	e.addWithPassword("work", "right", "wrong", "")
	e.add("quiet", "")

	code, out, errs := e.run("check", "--json")
	if code != exitNoPerm {
		t.Errorf("exit %d, want %d (the failed account's)", code, exitNoPerm)
	}
	if !strings.Contains(errs, "popfetch: work: error: ") || strings.Count(errs, "\n") != 1 {
		t.Errorf("stderr: %q", errs)
	}
	got := decodeCheck(t, out)
	if len(got.Accounts) != 3 {
		t.Fatalf("%d accounts: %s", len(got.Accounts), out)
	}
	p, w, q := got.Accounts[0], got.Accounts[1], got.Accounts[2]
	if p.Name != "personal" || p.New != 2 || p.NewBytes != sizes(a.mb) || p.Error != nil || p.Messages != nil {
		t.Errorf("personal: %+v", p)
	}
	if w.Name != "work" || w.New != 0 || w.NewBytes != 0 || w.Error == nil || !strings.Contains(*w.Error, "refused") {
		t.Errorf("work: %+v", w)
	}
	if q.Name != "quiet" || q.New != 0 || q.Error != nil {
		t.Errorf("quiet: %+v", q)
	}
	// "error" and "messages" are left out, not null, when there is none.
	var raw map[string][]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for i, acct := range raw["accounts"] {
		if _, ok := acct["messages"]; ok {
			t.Errorf("account %d: messages without --list", i)
		}
		if _, ok := acct["error"]; ok != (i == 1) {
			t.Errorf("account %d: error present = %v", i, ok)
		}
	}

	out, _ = e.mustRun(0, "check", "--json", "--list", "personal", "quiet")
	got = decodeCheck(t, out)
	if len(got.Accounts) != 2 {
		t.Fatalf("%d accounts: %s", len(got.Accounts), out)
	}
	msgs := got.Accounts[0].Messages
	sz := a.mb.Messages()
	if len(msgs) != 2 {
		t.Fatalf("messages: %+v", msgs)
	}
	if m := msgs[0]; m.UID != u1 || m.Size != sz[0].Size() || m.Date != "2024-05-06T10:01:00+02:00" ||
		m.From != "sender1@example.org" || m.Subject != "message 1" {
		t.Errorf("message 1: %+v", m)
	}
	if m := msgs[1]; m.UID != u2 || m.Size != sz[1].Size() || m.Date != "2024-05-07T08:30:00Z" ||
		m.From != "Jürgen <j@example.org>" || m.Subject != "Grüße" {
		t.Errorf("message 2: %+v", m)
	}
	if !strings.Contains(out, `"name":"quiet","new":0,"new_bytes":0,"messages":[]`) {
		t.Errorf("an account without new mail has no empty messages list: %s", out)
	}
}

func TestCheckListDecodesHeaders(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "")
	a.mb.Add([]byte("Date: Wed, 8 May 2024 09:15:00 +0200\nFrom: =?UTF-8?B?w4lsb2RpZQ==?= <elodie@example.org>\n" +
		"Subject: =?UTF-8?B?8J+TrCBOZXVlIE5hY2hyaWNodA==?=\n\nbody\n"))
	a.mb.Add([]byte("From: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.org>\n" +
		"Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\n =?UTF-8?Q?_und_Kuchen?=\n\nbody\n"))
	// unknown charset and a broken word: shown raw, never an error; a
	// terminal escape in a decoded word is defused
	a.mb.Add([]byte("From: =?X-NO-SUCH-CHARSET?Q?abc?= <x@example.org>\nSubject: =?UTF-8?B?G1szMW1yZWQ=?= and =?UTF-8?Q?broken\nDate: not a date\n\n"))
	// no header at all, and raw Latin-1 bytes
	a.mb.Add([]byte("\nno header\n"))
	a.mb.Add([]byte("Subject: caf\xe9\n\n"))

	out, errs := e.mustRun(0, "check", "--list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		fmt.Sprintf("personal: 5 new messages, %s", humanBytes(sizes(a.mb))),
		"  2024-05-08 09:15  Élodie <elodie@example.org>  📬 Neue Nachricht  (",
		"  (no date)  François <f@example.org>  Café crème und Kuchen  (",
		"  not a date  =?X-NO-SUCH-CHARSET?Q?abc?= <x@example.org>  \\x1b[31mred and =?UTF-8?Q?broken  (",
		"  (no date)  (no sender)  (no subject)  (",
		"  (no date)  (no sender)  caf\\xe9  (",
	}
	if len(lines) != len(want) || errs != "" {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, errs)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d:\n got %q\nwant %q...", i, lines[i], want[i])
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape character reached the terminal")
	}
}

// TOP is optional (RFC 1939 §7): without it, --list still counts and lists
// the messages, without their headers.
func TestCheckListWithoutTOP(t *testing.T) {
	e := newCLIEnv(t, serverSetup(func(s *pop3test.Server) { s.Faults.HideCaps = []string{"TOP"} }))
	a := e.add("personal", "")
	u := a.mb.Add(plainMessage(1))
	out, errs := e.mustRun(0, "check", "--list")
	if want := fmt.Sprintf("personal: 1 new message, %[1]s\n  (no date)  (no sender)  (no subject)  (%[1]s)\n", humanBytes(sizes(a.mb))); out != want || errs != "" {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", out, want, errs)
	}
	out, _ = e.mustRun(0, "check", "--list", "--json")
	got := decodeCheck(t, out)
	if m := got.Accounts[0].Messages; len(m) != 1 || m[0].UID != u || m[0].Subject != "" {
		t.Errorf("%s", out)
	}
}

// check retrieves nothing, deletes nothing and records nothing: the server
// sees no RETR or DELE, and the state directory is as it was, except for
// the lock file.
func TestCheckChangesNothing(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("personal", "max_size = \"1KiB\"")
	u1 := a.mb.Add(plainMessage(1))
	u2 := a.mb.Add(plainMessage(2))
	a.mb.Add(plainMessage(3))
	a.mb.Add(bytes.Repeat([]byte("z"), 5000)) // too large: fetch would record it as Skipped
	// The cache knows a message retrieved in keep mode (a fetch without
	// keep would delete it), one whose QUIT never completed (a fetch would
	// delete it), and one no longer on the server (a fetch would forget it).
	c, err := uidcache.Open(e.state, e.key(a))
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Put(u1, uidcache.Entry{Seen: seen, State: uidcache.Retrieved})
	c.Put(u2, uidcache.Entry{Seen: seen, State: uidcache.Deleted})
	c.Put("gone", uidcache.Entry{Seen: seen, State: uidcache.Retrieved})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(e.cachePath(a), old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(e.cachePath(a))
	if err != nil {
		t.Fatal(err)
	}
	n := len(e.srv.Received())

	for _, args := range [][]string{{"check"}, {"check", "--list"}, {"check", "--json", "--list"}} {
		e.mustRun(0, args...)
	}

	for _, cmd := range commandsSince(e.srv, n) {
		switch cmd {
		case "CAPA", "AUTH", "UIDL", "LIST", "TOP", "QUIT":
		default:
			t.Errorf("check sent %s", cmd)
		}
	}
	if !slices.Contains(commandsSince(e.srv, n), "TOP") {
		t.Errorf("check --list sent no TOP")
	}
	after, err := os.ReadFile(e.cachePath(a))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the cache changed:\n%s\nnow:\n%s", before, after)
	}
	if fi, err := os.Stat(e.cachePath(a)); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the cache was rewritten: %v", err)
	}
	ents, _ := os.ReadDir(e.state)
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	wantNames := []string{uidcache.EscapeKey(e.key(a)) + ".lock", uidcache.FileName(e.key(a))}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("state dir holds %q, want %q", names, wantNames)
	}
	if a.mb.Len() != 4 {
		t.Errorf("%d messages left on the server, want 4", a.mb.Len())
	}
	if _, err := os.Stat(e.maildir(a)); !os.IsNotExist(err) {
		t.Errorf("check created the Maildir: %v", err)
	}
}

// A locked account fails with 75 like fetch; the others are still checked,
// and the first failure in configuration order decides the exit status.
func TestCheckLockedAccount(t *testing.T) {
	e := newCLIEnv(t)
	a := e.add("first", "")
	b := e.add("second", "")
	c := e.addWithPassword("third", "right", "wrong", "")
	b.mb.Add(plainMessage(1))
	c.mb.Add(plainMessage(1))
	unlock := e.lock(a)
	code, out, errs := e.run("check")
	if code != exitTempFail {
		t.Errorf("exit %d, want %d", code, exitTempFail)
	}
	if !strings.Contains(out, "second: 1 new message,") || strings.Contains(out, "first") || strings.Contains(out, "third") {
		t.Errorf("stdout %q", out)
	}
	errLines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if len(errLines) != 2 || !strings.HasPrefix(errLines[0], "popfetch: first: error: another popfetch is fetching this account") ||
		!strings.HasPrefix(errLines[1], "popfetch: third: error: login") {
		t.Errorf("stderr %q", errs)
	}
	unlock()
	if code, _, _ := e.run("check"); code != exitNoPerm {
		t.Errorf("unlocked: exit %d, want %d", code, exitNoPerm)
	}
}

func TestHelpEndsWithExitStatus(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	for _, args := range [][]string{
		{"check", "--help"}, {"config", "--help"}, {"config", "check", "--help"},
		{"cache", "--help"}, {"cache", "list", "--help"}, {"cache", "forget", "--help"},
	} {
		out, _ := e.mustRun(0, args...)
		if !strings.Contains(out, "EXIT STATUS") || !strings.HasSuffix(out, "78  configuration error, or no credential found\n") {
			t.Errorf("popfetch %s does not end with the exit statuses:\n%s", strings.Join(args, " "), out)
		}
	}
}

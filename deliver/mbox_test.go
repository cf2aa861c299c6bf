package deliver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/popfetch/popfetch/internal/testtool"
	"github.com/popfetch/popfetch/internal/vfs"
)

// testMessages are the awkward messages every target must keep byte for
// byte.
var testMessages = []struct {
	name, msg string
}{
	{"plain", "Subject: plain\n\nhello\n"},
	{"From lines", "Subject: from\n\nFrom me\n>From you\n>>From them\nFromage\nFrom\n >From x\nFrom  two\n"},
	{"From: header", "From: a@example.org\nSubject: x\n\nbody\n"},
	{"quoted header line", "X-Test: 1\n>From header\nSubject: y\n\nbody\n"},
	{"8-bit NUL CR", "Subject: bin\n\n\x00\xff\xfe caf\xc3\xa9\r\n bare\rcr\nFrom \x00\n"},
	{"100 KB line", "Subject: long\n\n" + strings.Repeat("x", 100<<10) + "\nend\n"},
	{"long > run", "Subject: gt\n\n" + strings.Repeat(">", 70000) + "From x\n" + strings.Repeat(">", 600) + "Fro\n"},
	{"no final newline", "Subject: nonl\n\nlast line"},
	{"ends in From", "Subject: t\n\nFrom "},
	{"ends with empty line", "Subject: empty-end\n\nbody\n\n"},
	{"ends with empty lines", "Subject: empty-end2\n\nbody\n\n\n"},
	{"empty body", "Subject: empty-body\n\n"},
	{"headers only", "Subject: only\n"},
	{"empty", ""},
}

var (
	quoteRE   = regexp.MustCompile(`(?m)^(>*From )`)
	unquoteRE = regexp.MustCompile(`(?m)^>(>*From )`)
)

// refQuote is mboxrd quoting written the obvious way, to check the
// streaming writer against: one more '>' on each ^>*From line, and a final
// newline.
func refQuote(msg string) string {
	q := quoteRE.ReplaceAllString(msg, ">$1")
	if q != "" && !strings.HasSuffix(q, "\n") {
		q += "\n"
	}
	return q
}

// refUnquote undoes mboxrd quoting: one '>' less on each ^>+From line.
func refUnquote(q string) string { return unquoteRE.ReplaceAllString(q, "$1") }

// withNewline is what an mbox gives back of msg: msg with a final newline.
func withNewline(msg string) string {
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		return msg + "\n"
	}
	return msg
}

var (
	pythonOnce sync.Once
	pythonPath string
)

// python3 returns the Python interpreter itself, not a wrapper such as a
// pyenv shim, which costs a shell per call; or skips the test.
func python3(t testing.TB) string {
	t.Helper()
	requireTool(t, "python3")
	pythonOnce.Do(func() {
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if p := strings.TrimSpace(string(out)); err == nil && p != "" {
			pythonPath = p
		} else {
			pythonPath = "python3"
		}
	})
	return pythonPath
}

// requireTool is testtool.Need: the program, or a failed test under make
// test, a skipped one elsewhere.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Need(t, name)
}

type pyMessage struct {
	From string // the From_ line, without its newline
	Msg  string // the message, still quoted
}

// readMboxPython reads the mbox with Python's mailbox module.
func readMboxPython(t testing.TB, path string) []pyMessage {
	t.Helper()
	out, err := exec.Command(python3(t), "testdata/readmbox.py", path).Output()
	if err != nil {
		t.Fatalf("python3 readmbox.py: %v\n%s", err, stderrOf(err))
	}
	var raw []struct{ From, Msg string }
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	msgs := make([]pyMessage, len(raw))
	for i, r := range raw {
		f, err1 := base64.StdEncoding.DecodeString(r.From)
		m, err2 := base64.StdEncoding.DecodeString(r.Msg)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		msgs[i] = pyMessage{string(f), string(m)}
	}
	return msgs
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func openMbox(t testing.TB, path string, opts MboxOptions) *Mbox {
	t.Helper()
	m, err := OpenMbox(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestMboxrdWriter checks the streaming quoting against refQuote, with the
// message written whole, a byte at a time, and split at every offset.
func TestMboxrdWriter(t *testing.T) {
	extra := []string{">From", "From", ">>>From \n", "\nFrom \n\n>From", "F\nFr\nFro\nFrom\nFrom ", ">\n>>\n>F\n"}
	var cases []string
	for _, tm := range testMessages {
		cases = append(cases, tm.msg)
	}
	cases = append(cases, extra...)
	quote := func(r io.Reader) string {
		var b bytes.Buffer
		var q mboxrdWriter
		q.reset(&b)
		if _, err := copyMessage(&q, r, make([]byte, 7)); err != nil {
			t.Fatal(err)
		}
		if err := q.finish(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, msg := range cases {
		want := refQuote(msg) + "\n"
		if got := quote(strings.NewReader(msg)); got != want {
			t.Errorf("quote(%.40q) = %.80q, want %.80q", msg, got, want)
		}
		if got := quote(iotest.OneByteReader(strings.NewReader(msg))); got != want {
			t.Errorf("one byte at a time: quote(%.40q) = %.80q, want %.80q", msg, got, want)
		}
		if len(msg) > 200 {
			continue
		}
		for i := 0; i <= len(msg); i++ {
			r := io.MultiReader(strings.NewReader(msg[:i]), strings.NewReader(msg[i:]))
			if got := quote(r); got != want {
				t.Errorf("split at %d: quote(%q) = %q, want %q", i, msg, got, want)
			}
		}
	}
}

// FuzzMboxrdRoundTrip: quoting then unquoting gives back the message (with
// a final newline), and the quoted form has no line a reader would take
// for a From_ line.
func FuzzMboxrdRoundTrip(f *testing.F) {
	for _, tm := range testMessages {
		if len(tm.msg) < 1000 {
			f.Add([]byte(tm.msg), 3)
		}
	}
	f.Add([]byte(">>From \n>From\nFrom "), 1)
	f.Fuzz(func(t *testing.T, msg []byte, chunk int) {
		var b bytes.Buffer
		var q mboxrdWriter
		q.reset(&b)
		if chunk < 1 || chunk > 1<<16 {
			chunk = 1
		}
		if _, err := copyMessage(&q, bytes.NewReader(msg), make([]byte, chunk)); err != nil {
			t.Fatal(err)
		}
		if err := q.finish(); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("no final newline: %q", out)
		}
		quoted := out[:len(out)-1]
		if strings.HasPrefix(quoted, "From ") || strings.Contains(quoted, "\nFrom ") {
			t.Fatalf("unquoted From line in %q", quoted)
		}
		if got, want := refUnquote(quoted), withNewline(string(msg)); got != want {
			t.Fatalf("round trip of %q gave %q", want, got)
		}
	})
}

func TestMboxFromLine(t *testing.T) {
	at := time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("X", 3600))
	for _, c := range []struct{ sender, want string }{
		{"", "From MAILER-DAEMON Tue Mar  5 06:08:09 2024\n"},
		{"<>", "From MAILER-DAEMON Tue Mar  5 06:08:09 2024\n"},
		{"  ", "From MAILER-DAEMON Tue Mar  5 06:08:09 2024\n"},
		{"a@example.org", "From a@example.org Tue Mar  5 06:08:09 2024\n"},
		{"<a@example.org>", "From a@example.org Tue Mar  5 06:08:09 2024\n"},
		{"\"john doe\"@x\r\n\x00\x7f", "From \"john_doe\"@x____ Tue Mar  5 06:08:09 2024\n"},
		{"a\tb", "From a_b Tue Mar  5 06:08:09 2024\n"},
		{"caf\xc3\xa9\xff@x", "From caf\xc3\xa9\xff@x Tue Mar  5 06:08:09 2024\n"},
	} {
		if got := mboxFromLine(c.sender, at); got != c.want {
			t.Errorf("mboxFromLine(%q) = %q, want %q", c.sender, got, c.want)
		}
	}
}

var fromLineRE = regexp.MustCompile(`^From (\S+) [A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}$`)

// TestMboxPythonReadsBack writes the awkward messages and reads them back
// with Python's mailbox module.
func TestMboxPythonReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{})
	for i, tm := range testMessages {
		sender := fmt.Sprintf("s%d@example.org", i)
		if i%3 == 0 {
			sender = ""
		}
		if err := m.Deliver(Envelope{Sender: sender, Recipient: "me"}, strings.NewReader(tm.msg)); err != nil {
			t.Fatalf("%s: %v", tm.name, err)
		}
		if i%4 == 3 { // several batches
			if err := m.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	msgs := readMboxPython(t, path)
	if len(msgs) != len(testMessages) {
		t.Fatalf("python reads %d messages, want %d", len(msgs), len(testMessages))
	}
	for i, tm := range testMessages {
		got := msgs[i]
		sm := fromLineRE.FindStringSubmatch(got.From)
		wantSender := fmt.Sprintf("s%d@example.org", i)
		if i%3 == 0 {
			wantSender = "MAILER-DAEMON"
		}
		if sm == nil || sm[1] != wantSender {
			t.Errorf("%s: From_ line %q, want sender %s", tm.name, got.From, wantSender)
		}
		if want := refQuote(tm.msg); got.Msg != want {
			t.Errorf("%s: python reads %.100q, want %.100q", tm.name, got.Msg, want)
		}
		if got, want := refUnquote(got.Msg), withNewline(tm.msg); got != want {
			t.Errorf("%s: unquoted %.100q, want %.100q", tm.name, got, want)
		}
	}
	assertNoLockLeft(t, path)
}

// TestMboxFormailReadsBack splits the mbox with procmail's formail -s,
// which keeps each message's From_ line and final empty line. Left out:
// the empty message (formail does not split off a message without a
// header) and the one with a >From header line (formail ends the header
// before a line that is not a header field).
func TestMboxFormailReadsBack(t *testing.T) {
	requireTool(t, "formail")
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	m := openMbox(t, path, MboxOptions{})
	msgs := testMessages[:0:0]
	for _, tm := range testMessages {
		if tm.msg != "" && !strings.HasPrefix(tm.msg, "X-Test: 1\n>From") {
			msgs = append(msgs, tm)
		}
	}
	for i, tm := range msgs {
		if err := m.Deliver(Envelope{Sender: fmt.Sprint("a", i)}, strings.NewReader(tm.msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	split := filepath.Join(dir, "split")
	if err := os.Mkdir(split, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("formail", "-s", "sh", "-c", `cat >"$0/$FILENO"`, split)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("formail: %v %s", err, out)
	}
	ents, _ := os.ReadDir(split)
	if len(ents) != len(msgs) {
		t.Fatalf("formail splits into %d messages, want %d", len(ents), len(msgs))
	}
	for i, tm := range msgs {
		b, err := os.ReadFile(filepath.Join(split, fmt.Sprintf("%03d", i)))
		if err != nil {
			t.Fatal(err)
		}
		from, msg, _ := strings.Cut(string(b), "\n")
		if sm := fromLineRE.FindStringSubmatch(from); sm == nil || sm[1] != fmt.Sprint("a", i) {
			t.Errorf("%s: From_ line %q", tm.name, from)
		}
		if want := refQuote(tm.msg) + "\n"; msg != want {
			t.Errorf("%s: formail splits off %.100q, want %.100q", tm.name, msg, want)
		}
	}
}

// assertNoLockLeft checks that neither the dotlock nor a temporary file of
// the link trick is left, and that the fcntl lock is free.
func assertNoLockLeft(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path + ".lock"); err == nil {
		t.Errorf("%s.lock left behind", path)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".lk") {
			t.Errorf("temporary lock file %s left behind", e.Name())
		}
	}
	if fcntlLockedElsewhere(t, path) {
		t.Errorf("%s still fcntl-locked", path)
	}
}

// fcntlLockedElsewhere reports whether another process finds the file's
// fcntl lock taken.
func fcntlLockedElsewhere(t testing.TB, path string) bool {
	t.Helper()
	err := exec.Command(python3(t), "testdata/fcntllock.py", "--try", path).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

// holdFcntlLock has a child process take the fcntl lock of path; calling
// the returned function makes it let go.
func holdFcntlLock(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(python3(t), "testdata/fcntllock.py", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder said %q, %v", line, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func TestMboxHoldsLocksDuringBatch(t *testing.T) {
	requireTool(t, "lockfile")
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: a\n\nx\n")); err != nil {
		t.Fatal(err)
	}
	if !fcntlLockedElsewhere(t, path) {
		t.Error("fcntl lock not held during the batch")
	}
	// procmail's lockfile(1), without retrying, must fail to take the dotlock
	if err := exec.Command("lockfile", "-r", "0", path+".lock").Run(); err == nil {
		t.Error("lockfile(1) could take the dotlock during the batch")
		os.Remove(path + ".lock")
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	assertNoLockLeft(t, path)
	// and lockfile(1) can now
	if out, err := exec.Command("lockfile", "-r", "0", path+".lock").CombinedOutput(); err != nil {
		t.Errorf("lockfile(1) after Commit: %v %s", err, out)
	}
	os.Remove(path + ".lock")
}

func TestMboxDotlockHeld(t *testing.T) {
	requireTool(t, "lockfile")
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{LockTimeout: 200 * time.Millisecond})
	if out, err := exec.Command("lockfile", "-r", "0", path+".lock").CombinedOutput(); err != nil {
		t.Fatalf("lockfile: %v %s", err, out)
	}
	err := m.Deliver(Envelope{}, strings.NewReader("Subject: a\n\nx\n"))
	var de *Error
	if !errors.As(err, &de) || !errors.Is(err, ErrLocked) || de.Target != "mbox" || de.Source || de.MessageOnly {
		t.Fatalf("Deliver with the dotlock held: %#v, want an *Error wrapping ErrLocked", err)
	}
	if got := fileSize(t, path); got != 0 {
		t.Errorf("file size %d, want 0", got)
	}
	if fcntlLockedElsewhere(t, path) {
		t.Error("fcntl lock kept after failing to lock")
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("the other program's dotlock: %v", err)
	}

	// released while we wait: Deliver gets it
	m2 := openMbox(t, path, MboxOptions{LockTimeout: time.Minute})
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Remove(path + ".lock")
	}()
	if err := m2.Deliver(Envelope{}, strings.NewReader("Subject: a\n\nx\n")); err != nil {
		t.Fatal(err)
	}
	if err := m2.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(readMboxPython(t, path)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestMboxFcntlHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{LockTimeout: 200 * time.Millisecond})
	release := holdFcntlLock(t, path)
	err := m.Deliver(Envelope{}, strings.NewReader("Subject: a\n\nx\n"))
	var de *Error
	if !errors.As(err, &de) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Deliver with the fcntl lock held: %v, want an *Error wrapping ErrLocked", err)
	}
	if _, err := os.Lstat(path + ".lock"); err == nil {
		t.Error("dotlock kept after failing to lock")
	}

	m2 := openMbox(t, path, MboxOptions{LockTimeout: time.Minute})
	go func() {
		time.Sleep(100 * time.Millisecond)
		release()
	}()
	if err := m2.Deliver(Envelope{}, strings.NewReader("Subject: a\n\nx\n")); err != nil {
		t.Fatal(err)
	}
	if err := m2.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(readMboxPython(t, path)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	assertNoLockLeft(t, path)
}

func TestMboxStaleDotlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	lock := path + ".lock"
	if err := os.WriteFile(lock, []byte("12345\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	// younger than StaleLockAge: it holds
	m := openMbox(t, path, MboxOptions{LockTimeout: 100 * time.Millisecond, StaleLockAge: 2 * time.Hour})
	if err := m.Deliver(Envelope{}, strings.NewReader("x\n")); !errors.Is(err, ErrLocked) {
		t.Fatalf("Deliver with a 1 h old lock and StaleLockAge 2 h: %v, want ErrLocked", err)
	}
	// older than the default of 5 minutes: removed
	m = openMbox(t, path, MboxOptions{LockTimeout: 100 * time.Millisecond})
	if err := m.Deliver(Envelope{}, strings.NewReader("x\n")); err != nil {
		t.Fatalf("Deliver with a stale lock: %v", err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	assertNoLockLeft(t, path)
}

// TestMboxDotlockRefreshed: a long batch keeps its dotlock fresh, so that
// nobody takes it as stale.
func TestMboxDotlockRefreshed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{StaleLockAge: 500 * time.Millisecond})
	if err := m.Deliver(Envelope{}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path+".lock", old, old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fi, err := os.Stat(path + ".lock")
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(fi.ModTime()) < time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dotlock not refreshed")
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	assertNoLockLeft(t, path)
}

// TestMboxKeepsOthersDotlock: when our dotlock was taken as stale and
// replaced by another program's, we do not remove theirs.
func TestMboxKeepsOthersDotlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".lock", nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("the other program's dotlock was removed: %v", err)
	}
}

// TestMboxRepairsSeparator: messages written before ours without the
// final empty line (procmail does not write it) or even a final newline
// stay whole.
func TestMboxRepairsSeparator(t *testing.T) {
	for _, prev := range []string{
		"From a Mon Jan  1 00:00:00 2024\nSubject: p\n\nbody\n",
		"From a Mon Jan  1 00:00:00 2024\nSubject: p\n\nbody",
		"From a Mon Jan  1 00:00:00 2024\nSubject: p\n\nbody\n\n",
		"\n",
	} {
		path := filepath.Join(t.TempDir(), "mbox")
		if err := os.WriteFile(path, []byte(prev), 0o600); err != nil {
			t.Fatal(err)
		}
		m := openMbox(t, path, MboxOptions{})
		if err := m.Deliver(Envelope{}, strings.NewReader("Subject: ours\n\nours\n")); err != nil {
			t.Fatal(err)
		}
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
		msgs := readMboxPython(t, path)
		if prev == "\n" {
			if len(msgs) != 1 || msgs[0].Msg != "Subject: ours\n\nours\n" {
				t.Errorf("after %q: %q", prev, msgs)
			}
			continue
		}
		if len(msgs) != 2 || msgs[0].Msg != "Subject: p\n\nbody\n" || msgs[1].Msg != "Subject: ours\n\nours\n" {
			t.Errorf("after %q: python reads %q", prev, msgs)
		}
	}
}

// failingReader returns data, then an error.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

var errSource = errors.New("connection lost")

func TestMboxReaderFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	prev := "From a Mon Jan  1 00:00:00 2024\nSubject: p\n\nbody\n"
	if err := os.WriteFile(path, []byte(prev), 0o600); err != nil {
		t.Fatal(err)
	}
	m := openMbox(t, path, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 1\n\none\n")); err != nil {
		t.Fatal(err)
	}
	size1 := fileSize(t, path)
	// big enough to be partly written before the failure
	big := "Subject: 2\n\n" + strings.Repeat("From line\n", 20000)
	err := m.Deliver(Envelope{}, &failingReader{strings.NewReader(big), errSource})
	var de *Error
	if !errors.As(err, &de) || !de.Source || !errors.Is(err, errSource) {
		t.Fatalf("Deliver with a failing reader: %v, want a Source *Error wrapping errSource", err)
	}
	if got := fileSize(t, path); got != size1 {
		t.Errorf("size after the failed message %d, want %d", got, size1)
	}
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 3\n\nthree\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	msgs := readMboxPython(t, path)
	var subjects []string
	for _, pm := range msgs {
		subjects = append(subjects, strings.SplitN(pm.Msg, "\n", 2)[0])
	}
	if got := strings.Join(subjects, ","); got != "Subject: p,Subject: 1,Subject: 3" {
		t.Errorf("messages %s", got)
	}
	assertNoLockLeft(t, path)
}

// failSyncFS is the real file system, but Sync of a file fails with
// syncErr when set.
type failSyncFS struct {
	vfs.FS
	syncErr error
}

type failSyncFile struct {
	vfs.File
	fs *failSyncFS
}

func (f *failSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return failSyncFile{file, f}, nil
}

func (f failSyncFile) Sync() error {
	if f.fs.syncErr != nil {
		return f.fs.syncErr
	}
	return f.File.Sync()
}

func TestMboxCommitFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	fsys := &failSyncFS{FS: vfs.OS}
	m := openMbox(t, path, MboxOptions{FS: fsys})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 1\n\none\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	size1 := fileSize(t, path)
	for i := 0; i < 3; i++ {
		if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 2\n\ntwo\n")); err != nil {
			t.Fatal(err)
		}
	}
	errSync := syscall.EIO
	fsys.syncErr = errSync
	err := m.Commit()
	var de *Error
	if !errors.As(err, &de) || !errors.Is(err, errSync) || de.Source {
		t.Fatalf("Commit with fsync failing: %v", err)
	}
	if got := fileSize(t, path); got != size1 {
		t.Errorf("size after the failed Commit %d, want %d", got, size1)
	}
	assertNoLockLeft(t, path)
	fsys.syncErr = nil
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 3\n\nthree\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(readMboxPython(t, path)); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestMboxCloseDiscardsBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	m := openMbox(t, path, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 1\n\none\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, path); got != 0 {
		t.Errorf("size after Close %d, want 0", got)
	}
	assertNoLockLeft(t, path)
	err := m.Deliver(Envelope{}, strings.NewReader("x\n"))
	var de *Error
	if !errors.As(err, &de) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Deliver after Close: %v", err)
	}
}

// TestMboxConcurrentInProcess: two Mbox of one process on one file (two
// accounts delivering to one mbox) exclude each other.
func TestMboxConcurrentInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := OpenMbox(path, MboxOptions{})
			if err != nil {
				errs <- err
				return
			}
			defer m.Close()
			for i := 0; i < n; i++ {
				if err := m.Deliver(Envelope{}, strings.NewReader(numberedMessage("go", w*n+i))); err != nil {
					errs <- err
					return
				}
				if i%3 == 2 || i == n-1 {
					if err := m.Commit(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkNumbered(t, readMboxPython(t, path), map[string]int{"go": 2 * n})
}

// numberedMessage is a message of some lines that all say who wrote it,
// so that an interleaving would show.
func numberedMessage(who string, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: %s-%d\n\n", who, i)
	for k := 0; k < 40; k++ {
		fmt.Fprintf(&b, "%s-%d line %d %s\n", who, i, k, strings.Repeat("z", 100))
	}
	return b.String()
}

// checkNumbered checks that msgs are exactly the numbered messages, each
// whole.
func checkNumbered(t *testing.T, msgs []pyMessage, want map[string]int) {
	t.Helper()
	total := 0
	for _, n := range want {
		total += n
	}
	if len(msgs) != total {
		t.Errorf("%d messages, want %d", len(msgs), total)
	}
	seen := map[string]bool{}
	for _, pm := range msgs {
		var who string
		var i int
		if _, err := fmt.Sscanf(pm.Msg, "Subject: %s", &who); err != nil {
			t.Errorf("bad message %.200q", pm.Msg)
			continue
		}
		k := strings.LastIndexByte(who, '-')
		fmt.Sscan(who[k+1:], &i)
		who = who[:k]
		if pm.Msg != numberedMessage(who, i) {
			t.Errorf("message %s-%d is not whole: %.300q", who, i, pm.Msg)
		}
		if seen[pm.Msg] {
			t.Errorf("message %s-%d twice", who, i)
		}
		seen[pm.Msg] = true
	}
}

// TestMboxConcurrentWithProcmail appends to one mbox from popfetch and
// from real procmail processes at the same time.
func TestMboxConcurrentWithProcmail(t *testing.T) {
	requireTool(t, "procmail")
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	rc := filepath.Join(dir, "procmailrc")
	// DEFAULT delivery takes $DEFAULT.lock and an fcntl lock; LOCKSLEEP
	// shortens procmail's pause between lock attempts (8 s by default).
	if err := os.WriteFile(rc, []byte("LOCKSLEEP=0\nDEFAULT="+path+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 50
	const procmails = 2
	var wg sync.WaitGroup
	errs := make(chan error, procmails+1)
	for p := 0; p < procmails; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += procmails {
				cmd := exec.Command("procmail", "-f", "pm@example.org", "-m", rc)
				cmd.Stdin = strings.NewReader(numberedMessage("pm", i))
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("procmail: %v %s", err, out)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m, err := OpenMbox(path, MboxOptions{})
		if err != nil {
			errs <- err
			return
		}
		defer m.Close()
		for i := 0; i < n; i++ {
			if err := m.Deliver(Envelope{Sender: "pf@example.org"}, strings.NewReader(numberedMessage("pf", i))); err != nil {
				errs <- err
				return
			}
			if i%2 == 1 {
				if err := m.Commit(); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs := readMboxPython(t, path)
	checkNumbered(t, msgs, map[string]int{"pm": n, "pf": n})
	for _, pm := range msgs {
		if !strings.HasPrefix(pm.From, "From pm@example.org ") && !strings.HasPrefix(pm.From, "From pf@example.org ") {
			t.Errorf("From_ line %q", pm.From)
		}
	}
	assertNoLockLeft(t, path)
}

// TestMboxDanglingSymlink: an mbox that is a symbolic link to a file not
// yet there is refused, and nothing is created where the link points
// (issue 16: a link planted in a shared directory, pointing to
// ~/.ssh/authorized_keys, had popfetch create that file).
func TestMboxDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	link := filepath.Join(dir, "mbox")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, err := OpenMbox(link, MboxOptions{})
	var unsafe *UnsafeMboxError
	if !errors.As(err, &unsafe) || !strings.Contains(err.Error(), "symbolic link to a file that does not exist") {
		t.Fatalf("OpenMbox of a dangling link: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
}

// failRemoveFS is the real file system, but the removal of one name
// fails with EIO, once.
type failRemoveFS struct {
	vfs.FS
	name   string
	failed bool
}

func (f *failRemoveFS) Remove(name string) error {
	if name == f.name && !f.failed {
		f.failed = true
		return syscall.EIO
	}
	return f.FS.Remove(name)
}

// TestMboxOwnLockLeft: a release whose unlink failed leaves the dotlock in
// this process's name; the next lock of the same process takes it as
// nobody's at once (as a lock of a dead process), instead of waiting for
// itself until LockTimeout (found by the simulator, seed 1312).
func TestMboxOwnLockLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	fsys := &failRemoveFS{FS: vfs.OS, name: path + ".lock"}
	m := openMbox(t, path, MboxOptions{FS: fsys, LockTimeout: 2 * time.Second})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: one\n\none\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err == nil || !strings.Contains(err.Error(), "unlocking") {
		t.Fatalf("commit with the lock's removal failing: %v, want an unlocking error", err)
	}
	if _, err := os.Lstat(path + ".lock"); err != nil {
		t.Fatalf("the failed removal left no lock: %v", err)
	}
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: two\n\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatalf("the next commit, its own lock left: %v", err)
	}
	if n := len(readMboxPython(t, path)); n != 2 {
		t.Fatalf("%d messages in the mbox, want 2", n)
	}
	assertNoLockLeft(t, path)
}

package deliver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSplitCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"procmail", []string{"procmail"}},
		{"  /usr/bin/procmail   -d  %T  ", []string{"/usr/bin/procmail", "-d", "%T"}},
		{"a\tb\nc", []string{"a", "b", "c"}},
		{`a 'b c' d`, []string{"a", "b c", "d"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a''b`, []string{"ab"}},
		{`'' ""`, []string{"", ""}},
		{`x ''`, []string{"x", ""}},
		{`a'b'"c"d`, []string{"abcd"}},
		{`'a\b' "a\b"`, []string{`a\b`, `a\b`}},
		{`"\$ \` + "`" + ` \" \\ \a \n"`, []string{"$ ` \" \\ \\a \\n"}},
		{`"it's"`, []string{"it's"}},
		{`'say "hi"'`, []string{`say "hi"`}},
		{`a\ b \'c \"d \\e`, []string{"a b", "'c", `"d`, `\e`}},
		{"a\\\nb", []string{"ab"}},
		{"\"a\\\nb\"", []string{"ab"}},
		{"'a\\\nb'", []string{"a\\\nb"}},
		{`$HOME $(id) ` + "`id`" + ` a;b a|b a&b >x <y * ? [a] ~ #c`,
			[]string{"$HOME", "$(id)", "`id`", "a;b", "a|b", "a&b", ">x", "<y", "*", "?", "[a]", "~", "#c"}},
		{"caf\xc3\xa9 \xff", []string{"caf\xc3\xa9", "\xff"}},
	} {
		got, err := splitCommand(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "   ", "\t\n", `a 'b`, `a "b`, `a "b\"`, `a\`, `"a\`, "a\x00b", `'`, `"`} {
		if got, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) = %q, want an error", bad, got)
		}
	}
}

func TestExpandPlaceholders(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"%F", "S"},
		{"-f%F", "-fS"},
		{"%T@%F", "R@S"},
		{"%%", "%"},
		{"%%F", "%F"},
		{"%%%F", "%S"},
		{"100%", "100%"},
		{"+%Y-%m", "+%Y-%m"},
		{"%", "%"},
		{"no placeholder", "no placeholder"},
	} {
		if got := expandPlaceholders(c.in, "S", "R"); got != c.want {
			t.Errorf("expandPlaceholders(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// the replacement is not scanned again
	if got := expandPlaceholders("%F", "%T%%", "R"); got != "%T%%" {
		t.Errorf("expandPlaceholders with sender %%T%%%% = %q", got)
	}
}

func TestNewMDAErrors(t *testing.T) {
	for _, bad := range []string{
		"", "  ", "procmail 'x", `procmail "x`, `procmail x\`,
		"%F -x", "/bin/%T",
		"/nonexistent/popfetch-mda", "popfetch-no-such-program-anywhere",
	} {
		_, err := NewMDA(bad, MDAOptions{})
		var de *Error
		if !errors.As(err, &de) || de.Target != "mda" {
			t.Errorf("NewMDA(%q) = %v, want an *Error", bad, err)
		}
	}
	if _, err := NewMDA("/bin/echo %%F 100%", MDAOptions{}); err != nil {
		t.Errorf("NewMDA with %%%%: %v", err)
	}
}

func newMDA(t *testing.T, command string, opts MDAOptions) *MDA {
	t.Helper()
	m, err := NewMDA(command, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// shellQuote quotes s for splitCommand (and sh).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestMDAProcmailMaildir delivers with real procmail into a Maildir
// (procmail's DEFAULT with a trailing slash): every message arrives byte
// for byte.
func TestMDAProcmailMaildir(t *testing.T) {
	requireTool(t, "procmail")
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	rc := filepath.Join(dir, "procmailrc")
	if err := os.WriteFile(rc, []byte("DEFAULT="+md+"/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMDA(t, "procmail -f %F -m "+shellQuote(rc), MDAOptions{})
	seen := map[string]bool{}
	for _, tm := range testMessages {
		if err := m.Deliver(Envelope{Sender: "a@example.org", Recipient: "me"}, strings.NewReader(tm.msg)); err != nil {
			t.Fatalf("%s: %v", tm.name, err)
		}
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(filepath.Join(md, "new"))
		if err != nil {
			t.Fatal(err)
		}
		var fresh []string
		for _, e := range ents {
			if !seen[e.Name()] {
				seen[e.Name()] = true
				fresh = append(fresh, e.Name())
			}
		}
		if len(fresh) != 1 {
			t.Fatalf("%s: %d new files in new/, want 1", tm.name, len(fresh))
		}
		b, err := os.ReadFile(filepath.Join(md, "new", fresh[0]))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tm.msg {
			t.Errorf("%s: procmail delivered %.100q, want %.100q", tm.name, b, tm.msg)
		}
	}
}

func TestMDAExitStatus(t *testing.T) {
	for _, c := range []struct {
		name, command string
		status        int
		temporary     bool
		stderr        string
	}{
		{"exit 1", `sh -c 'cat >/dev/null; echo "no such user" >&2; exit 1'`, 1, false, "no such user\n"},
		{"exit 75", `sh -c 'cat >/dev/null; echo "try later" >&2; exit 75'`, 75, true, "try later\n"},
		{"exit 3 without reading", `sh -c 'exit 3'`, 3, false, ""},
		{"exit 67 reading half", `sh -c 'head -c 1000 >/dev/null; exit 67'`, 67, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMDA(t, c.command, MDAOptions{})
			msg := "Subject: x\n\n" + strings.Repeat("body line\n", 100000) // 1 MB: more than a pipe holds
			err := m.Deliver(Envelope{}, strings.NewReader(msg))
			var de *Error
			var xe *ExitError
			if !errors.As(err, &de) || !errors.As(err, &xe) {
				t.Fatalf("Deliver: %v, want an *Error wrapping an *ExitError", err)
			}
			if !de.MessageOnly || de.Temporary != c.temporary || de.Source || de.Target != "mda" {
				t.Errorf("Error %+v: want MessageOnly, Temporary=%v", de, c.temporary)
			}
			if xe.Status != c.status || xe.Signal != 0 || xe.TimedOut {
				t.Errorf("ExitError %+v, want status %d", xe, c.status)
			}
			if string(xe.Stderr) != c.stderr {
				t.Errorf("Stderr %q, want %q", xe.Stderr, c.stderr)
			}
			if !strings.Contains(err.Error(), fmt.Sprint("status ", c.status)) || !strings.Contains(err.Error(), strings.TrimSpace(c.stderr)) {
				t.Errorf("message %q lacks the status or stderr", err)
			}
		})
	}
}

func TestMDAKilledBySignal(t *testing.T) {
	m := newMDA(t, `sh -c 'kill -TERM $$'`, MDAOptions{})
	err := m.Deliver(Envelope{}, strings.NewReader("x\n"))
	var de *Error
	var xe *ExitError
	if !errors.As(err, &de) || !errors.As(err, &xe) || !de.MessageOnly || de.Temporary {
		t.Fatalf("Deliver: %v", err)
	}
	if xe.Signal != syscall.SIGTERM || xe.Status != -1 {
		t.Errorf("ExitError %+v, want killed by SIGTERM", xe)
	}
}

func TestMDAStderrBounded(t *testing.T) {
	m := newMDA(t, `sh -c 'cat >/dev/null; head -c 1000000 /dev/zero | tr "\0" e >&2; exit 1'`, MDAOptions{})
	err := m.Deliver(Envelope{}, strings.NewReader("x\n"))
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Deliver: %v", err)
	}
	if len(xe.Stderr) != mdaStderrLimit {
		t.Errorf("kept %d bytes of stderr, want %d", len(xe.Stderr), mdaStderrLimit)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("message of %d bytes", len(err.Error()))
	}
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestMDANotReading: an MDA that exits 0 without reading a large message
// has accepted it; we do not hang, and the source is read to its end.
func TestMDANotReading(t *testing.T) {
	m := newMDA(t, "true", MDAOptions{})
	msg := strings.Repeat("x", 8<<20)
	r := &countingReader{r: strings.NewReader(msg)}
	if err := m.Deliver(Envelope{}, r); err != nil {
		t.Fatal(err)
	}
	if r.n != int64(len(msg)) {
		t.Errorf("read %d bytes of the message, want %d", r.n, len(msg))
	}
	// and a source failure after the MDA stopped reading is still reported
	err := m.Deliver(Envelope{}, &failingReader{strings.NewReader(msg), errSource})
	var de *Error
	if !errors.As(err, &de) || !de.Source || !errors.Is(err, errSource) {
		t.Errorf("Deliver with a failing source: %v, want a Source *Error", err)
	}
}

func TestMDATimeout(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, command, msg string }{
		// takes the message, then hangs: the wait for its exit times out
		{"hangs after reading", `sh -c 'cat >/dev/null; sleep 60'`, "x\n"},
		// reads nothing of a message far larger than a pipe: its exit
		// is waited for, and times out
		{"never reads", "sleep 60", strings.Repeat("x", 4<<20)},
		// a grandchild holding stderr dies with the process group
		{"grandchild", `sh -c 'sleep 60 & echo $! >` + filepath.Join(dir, "pid") + `; wait'`, "x\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMDA(t, c.command, MDAOptions{Timeout: 300 * time.Millisecond})
			err := m.Deliver(Envelope{}, strings.NewReader(c.msg))
			var de *Error
			var xe *ExitError
			if !errors.As(err, &de) || !errors.As(err, &xe) || !xe.TimedOut || !de.MessageOnly || de.Temporary {
				t.Fatalf("Deliver: %v, want a MessageOnly *Error with a timed-out *ExitError", err)
			}
			if !strings.Contains(err.Error(), "killed after waiting 300ms") {
				t.Errorf("message %q", err)
			}
		})
	}
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	// the grandchild is dead (or a zombie waiting for a reaper)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still running: %s", pid, st)
		}
	}
}

// TestMDASourceFails: the MDA is not started with a message whose source
// failed, so it never delivers a truncated message.
func TestMDASourceFails(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "delivered")
	m := newMDA(t, "sh -c "+shellQuote(`cat >"$0.tmp" && mv "$0.tmp" "$0"`)+" "+shellQuote(out), MDAOptions{})
	msg := "Subject: x\n\n" + strings.Repeat("y", 1<<20)
	err := m.Deliver(Envelope{}, &failingReader{strings.NewReader(msg), errSource})
	var de *Error
	if !errors.As(err, &de) || !de.Source || !errors.Is(err, errSource) || de.Target != "mda" {
		t.Fatalf("Deliver: %v, want a Source *Error wrapping errSource", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the MDA delivered the truncated message")
	}
	// the same MDA works for the next message
	if err := m.Deliver(Envelope{}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != msg {
		t.Errorf("delivered %d bytes, want %d", len(b), len(msg))
	}
}

// TestMDANoInjection: whatever the sender holds, it is one literal
// argument; no shell ever sees it.
func TestMDANoInjection(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "argv.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nout=$1; shift\n: >\"$out\"\nfor a do printf '[%s]\\n' \"$a\" >>\"$out\"; done\ncat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "argv")
	x, y, z := filepath.Join(dir, "x"), filepath.Join(dir, "y"), filepath.Join(dir, "z")
	m := newMDA(t, shellQuote(script)+" "+shellQuote(out)+` -f %F -d %T "<%F>" ; $(touch `+x+`) | 100%`, MDAOptions{})
	for _, c := range []struct {
		sender, recipient string
		wantF, wantT      string
	}{
		{"$(touch " + x + ")", "me", "$(touch " + x + ")", "me"},
		{"`touch " + y + "`", "me", "`touch " + y + "`", "me"},
		{"a;touch " + z, "me;touch " + z, "a;touch " + z, "me;touch " + z},
		{"'\"; touch " + z + "; \"'", "me", "'\"; touch " + z + "; \"'", "me"},
		{"<a@example.org>", "me", "a@example.org", "me"},
		{"", "me", "MAILER-DAEMON", "me"},
		{"<>", "", "MAILER-DAEMON", ""},
		{"a\nX-Evil: 1\r\x00", "m\ne", "a_X-Evil: 1__", "m_e"},
		{"-d root", "%F", "-d root", "%F"},
	} {
		if err := m.Deliver(Envelope{Sender: c.sender, Recipient: c.recipient}, strings.NewReader("x\n")); err != nil {
			t.Fatalf("sender %q: %v", c.sender, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("[-f]\n[%s]\n[-d]\n[%s]\n[<%s>]\n[;]\n[$(touch]\n[%s)]\n[|]\n[100%%]\n", c.wantF, c.wantT, c.wantF, x)
		if string(b) != want {
			t.Errorf("sender %q: argv\n%s\nwant\n%s", c.sender, b, want)
		}
	}
	for _, f := range []string{x, y, z} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was created: a shell ran", f)
		}
	}
}

// TestMDAEcho: the placeholders with /bin/echo, the brief's own example.
func TestMDAEcho(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// echo writes to stdout, which the MDA discards: let sh put it in a file
	m := newMDA(t, `sh -c '/bin/echo "$@" >"$0"; cat >/dev/null' `+shellQuote(out)+` %F`, MDAOptions{})
	if err := m.Deliver(Envelope{Sender: "$(touch " + filepath.Join(dir, "x") + ")"}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if want := "$(touch " + filepath.Join(dir, "x") + ")\n"; string(b) != want {
		t.Errorf("echo printed %q, want %q", b, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a shell ran the sender")
	}
}

func TestMDAStartFails(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "mda")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := newMDA(t, prog, MDAOptions{})
	os.Remove(prog)
	err := m.Deliver(Envelope{}, strings.NewReader("x\n"))
	var de *Error
	if !errors.As(err, &de) || de.MessageOnly || de.Source || de.Temporary {
		t.Fatalf("Deliver with the program gone: %v, want an *Error for every message", err)
	}
}

// An MDA may leave a process behind that keeps its standard input and
// goes on reading it. That process must never see another message: each
// MDA gets its own message on its own descriptor, read-only, with its own
// offset. Here each MDA copies its input, then leaves a reader that waits
// for the next MDA to start and reads what its own stdin gives then (on
// fd 3: sh gives a background job /dev/null as its fd 0); the
// next MDA waits for that reader to be done before reading. Sharing one
// spool file (one offset) among messages, the reader ate the next message
// whole and the next MDA got nothing.
func TestMDALeftBehindReaderGetsNoOtherMessage(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "mda.sh")
	body := `#!/bin/sh
d=$1
n=$(( $(cat "$d/count" 2>/dev/null || echo 0) + 1 ))
echo $n >"$d/count"
: >"$d/started.$n"
if [ $n -gt 1 ]; then
	i=0
	while [ ! -e "$d/done.$((n-1))" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
fi
cat >"$d/msg.$n"
exec 3<&0
(
	i=0
	while [ ! -e "$d/started.$((n+1))" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
	cat <&3 >"$d/eaten.$n"
	: >"$d/done.$n"
) >/dev/null 2>&1 &
echo $! >>"$d/pids"
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pids, _ := os.ReadFile(filepath.Join(dir, "pids"))
		for _, p := range strings.Fields(string(pids)) {
			var pid int
			fmt.Sscan(p, &pid)
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	m := newMDA(t, "/bin/sh "+shellQuote(script)+" "+shellQuote(dir), MDAOptions{})
	var msgs [][]byte
	for i := 1; i <= 5; i++ {
		msg := []byte(fmt.Sprintf("Subject: message %d\n\n%s\n", i, strings.Repeat(fmt.Sprintf("line %d\n", i), 20*i)))
		msgs = append(msgs, msg)
		if err := m.Deliver(Envelope{}, strings.NewReader(string(msg))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range msgs {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("msg.%d", i+1)))
		if err != nil || string(got) != string(want) {
			t.Errorf("MDA %d read %d bytes, want its message of %d (%v)", i+1, len(got), len(want), err)
		}
	}
	for i := 1; i < len(msgs); i++ {
		if eaten, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("eaten.%d", i))); len(eaten) > 0 {
			t.Errorf("the reader left by MDA %d read %d bytes meant for another", i, len(eaten))
		}
	}
}

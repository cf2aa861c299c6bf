package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/mailgen"
)

// The tests of this file run the real binary on a terminal (issue 12:
// popfetch in daily use), where what it prints depends on being on one.

// ptyServer is a daemonServer with account "personal" holding n messages.
func ptyServer(t *testing.T, n int) *daemonServer {
	t.Helper()
	d := newDaemonServer(t)
	mb := d.srv.AddUser("personal", "secret")
	for _, m := range mailgen.Realistic(n, 7) {
		mb.Add(m)
	}
	d.write(t, "personal")
	return d
}

// TestTerminalGlobalFlagsAfterCommand: on a terminal, `fetch -v` says what
// the account did, and `fetch --progress never` draws no bar (issue 12,
// point 3: both were refused with 64).
func TestTerminalGlobalFlagsAfterCommand(t *testing.T) {
	d := ptyServer(t, 3)
	tm := startTerm(t, nil, popfetchBin, "fetch", "-c", d.cfg, "-v", "--progress", "never")
	code, out := tm.wait()
	if code != 0 {
		t.Fatalf("fetch -c CONFIG -v --progress never: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "popfetch: personal: 3 new, 3 fetched") {
		t.Errorf("no summary at -v:\n%s", out)
	}
	if strings.Contains(out, "msgs") {
		t.Errorf("a progress bar with --progress never:\n%s", out)
	}
}

// TestTerminalBashCompletion types in an interactive bash, with the
// completion script of popfetch completion bash loaded: TAB completes a
// partial flag (it panicked inside urfave/cli), the account names after
// any command that takes one, and file names after -c.
func TestTerminalBashCompletion(t *testing.T) {
	needTool(t, "bash")
	d := ptyServer(t, 1)
	home := t.TempDir()
	tm := startTerm(t, []string{"PATH=" + filepath.Dir(popfetchBin) + ":" + os.Getenv("PATH"), "HOME=" + home,
		"PS1=$ ", "INPUTRC=/dev/null"}, "bash", "--norc", "--noprofile", "-i")
	tm.expect(`\$ $`)
	tm.send("source <(popfetch completion bash)\n")
	tm.expect(`\$ $`)
	// Lines shorter than the terminal: where readline wraps a line it
	// redraws around the margin, and the expected text would not show
	// in one piece (the temporary directory's name varies in length).
	tm.send("cd " + filepath.Dir(d.cfg) + "\n")
	tm.expect(`\$ $`)
	cfg := filepath.Base(d.cfg)
	for _, tc := range []struct{ typed, want string }{
		{"popfetch fetch --ke\t", "popfetch fetch --keep "},
		{"popfetch -c " + cfg + " check pers\t", "check personal "},
		{"popfetch serverinfo -c " + cfg + " pers\t", "serverinfo -c " + cfg + " personal "},
		{"popfetch -c " + cfg + " cache forget pe\t", "cache forget personal "},
		{"popfetch --tls star\t", "popfetch --tls starttls "},
		{"popfetch -c conf\t", "-c " + cfg + " "},
	} {
		t.Run(strings.Fields(tc.typed)[1], func(t *testing.T) {
			tm.t = t
			tm.send(tc.typed)
			tm.expect(regexpQuote(tc.want) + `$`)
			tm.send("\x15") // ^U: erase the line
		})
	}
	tm.t = t
	tm.send("\x15exit\n")
	if code, out := tm.wait(); code != 0 {
		t.Errorf("bash: exit %d\n%s", code, out)
	}
}

// TestFishCompletion asks fish what popfetch completes to, with the
// script of popfetch completion fish: no description shows a literal
// backtick, and -c and --maildir complete file names.
func TestFishCompletion(t *testing.T) {
	needTool(t, "fish")
	d := ptyServer(t, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config-work.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	complete := func(line string) []string {
		t.Helper()
		cmd := exec.Command("fish", "--no-config", "-c", "popfetch completion fish | source; complete -C"+fishQuote(line))
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(popfetchBin)+":"+os.Getenv("PATH"), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "`") {
			t.Errorf("%q: a backtick in\n%s", line, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	for _, tc := range []struct {
		line string
		want string
	}{
		{"popfetch fetch --ke", "--keep"},
		{"popfetch -c " + d.cfg + " check pe", "personal"},
		{"popfetch -c " + dir + "/conf", dir + "/config-work.toml"},
		{"popfetch fetch --maildir " + dir + "/conf", dir + "/config-work.toml"},
		{"popfetch completion f", "fish"},
	} {
		got := complete(tc.line)
		found := false
		for _, g := range got {
			found = found || strings.TrimSpace(strings.SplitN(g, "\t", 2)[0]) == tc.want
		}
		if !found {
			t.Errorf("%q completes to %q, want %q among them", tc.line, got, tc.want)
		}
	}
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestTerminalSummaryAfterBars: on a terminal, -v's summary comes after
// the progress bar (it vanished under the bar's last drawing), and a run
// with nothing new says so in one line — which cron never sees (issue
// 12, point 6).
func TestTerminalSummaryAfterBars(t *testing.T) {
	d := ptyServer(t, 3)
	tm := startTerm(t, nil, popfetchBin, "-c", d.cfg, "-v")
	code, out := tm.wait()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	bar := strings.LastIndex(out, "3/3 msgs")
	summary := strings.LastIndex(out, "popfetch: personal: 3 new, 3 fetched")
	if bar < 0 || summary < bar {
		t.Errorf("want the bar, then the summary after it:\n%s", out)
	}

	tm = startTerm(t, nil, popfetchBin, "-c", d.cfg)
	code, out = tm.wait()
	if code != 0 || strings.TrimSpace(out) != "popfetch: personal: no new mail" {
		t.Errorf("nothing new on a terminal: exit %d, said %q", code, out)
	}
	if r := mustRun(t, 0, "-c", d.cfg); r.stdout != "" || r.stderr != "" {
		t.Errorf("nothing new without a terminal said %q %q", r.stdout, r.stderr)
	}
	tm = startTerm(t, nil, popfetchBin, "-c", d.cfg, "-q")
	if code, out = tm.wait(); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("-q on a terminal: exit %d, said %q", code, out)
	}
}

// TestTerminalOneOffFlagWithoutHost: on a terminal as anywhere, a one-off
// flag without --host is refused naming it, instead of being ignored
// (issue 12, point 4).
func TestTerminalOneOffFlagWithoutHost(t *testing.T) {
	d := ptyServer(t, 1)
	mbox := filepath.Join(d.dir, "mbox")
	tm := startTerm(t, nil, popfetchBin, "-c", d.cfg, "fetch", "--mbox", mbox, "personal")
	code, out := tm.wait()
	if code != 64 || !strings.Contains(out, "popfetch: error: --mbox needs --host") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if _, err := os.Stat(mbox); err == nil {
		t.Error("the mbox was written")
	}
}

// TestTerminalOneOffHint: a one-off fetch on a terminal asks for the
// password; its certificate is not trusted, and the hint's command, typed
// as printed, shows the certificate (issue 12, point 5: it named an
// unknown account).
func TestTerminalOneOffHint(t *testing.T) {
	d := ptyServer(t, 1)
	tm := startTerm(t, []string{"XDG_STATE_HOME=" + d.dir + "/state"}, popfetchBin, "fetch", "--host", d.host, "--port", d.port,
		"--user", "personal", "--maildir", d.dir+"/one-off")
	code, out := tm.wait()
	if code != 69 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	m := regexp.MustCompile("popfetch: hint: `popfetch (serverinfo [^`]*)`").FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no serverinfo hint:\n%s", out)
	}
	tm = startTerm(t, nil, popfetchBin, strings.Fields(m[1])...)
	code, out = tm.wait()
	if code != 69 || !strings.Contains(out, "NOT TRUSTED") || !strings.Contains(out, d.pin) {
		t.Errorf("popfetch %s: exit %d\n%s", m[1], code, out)
	}
}

// TestTerminalTLSModeMistake: tls = "starttls" on a port of implicit TLS
// says so at once — the timeout is an hour — instead of waiting the
// timeout out (issue 12, point 8).
func TestTerminalTLSModeMistake(t *testing.T) {
	d := ptyServer(t, 1)
	b, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "timeout = \"10s\"", "timeout = \"1h\"", 1)
	cfg = strings.Replace(cfg, "tls_fingerprint", "tls = \"starttls\"\ntls_fingerprint", 1)
	if err := os.WriteFile(d.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tm := startTerm(t, nil, popfetchBin, "-c", d.cfg)
	code, out := tm.wait()
	want := "popfetch: personal: error: port " + d.port + " speaks TLS from the first byte"
	if code != 78 || !strings.Contains(out, want) || !strings.Contains(out, `set tls = "implicit"`) {
		t.Errorf("exit %d\n%s\nwant %s", code, out, want)
	}
}

package deliver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStaleTmp(t *testing.T) {
	alive := func(pid int) bool { return pid == 200 }
	names := []string{
		"popfetch.1733241600.M123P100Q1Rdeadbeef.mail.example.org", // dead: stale
		"popfetch.1733241600.M123P200Q2Rdeadbeef.mail.example.org", // alive
		"popfetch.1733241600.M123P300Q3Rdeadbeef.mail.example.org", // ours
		"popfetch.1733241600.M123P100Q4Rdeadbeef.other.host",       // another host's
		"1733241600.M123P100Q1Rdeadbeef.mail.example.org",          // not ours: another program's
		"popfetch.x.M123P100Q1R00.mail.example.org",                // malformed
		"popfetch.1733241600.M123PQ1R00.mail.example.org",          // no PID
		"popfetch.1733241600.M123P100Q1R00",                        // no host
	}
	got := staleTmp(names, "mail.example.org", 300, alive)
	want := []string{names[0]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestOpenMaildirRemovesStaleTmp: what a killed popfetch of this host
// left in tmp/ goes at the next open; a live writer's file, another
// program's and another host's stay.
func TestOpenMaildirRemovesStaleTmp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	m, err := OpenMaildir(dir, MaildirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// a PID that ran and is gone
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	names := map[string]bool{ // name: stays
		fmt.Sprintf("popfetch.1733241600.M1P%dQ1R00.%s", dead, m.host):        false,
		fmt.Sprintf("popfetch.1733241600.M1P%dQ2R00.%s", 1, m.host):           true, // init runs
		fmt.Sprintf("popfetch.1733241600.M1P%dQ3R00.elsewhere", dead):         true,
		fmt.Sprintf("1733241600.M1P%dQ4R00.%s", dead, m.host):                 true, // not ours
		fmt.Sprintf("popfetch.1733241600.M1P%dQ5R00.%s", os.Getpid(), m.host): true, // ours, running
	}
	for name := range names {
		if err := os.WriteFile(filepath.Join(dir, "tmp", name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenMaildir(dir, MaildirOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, stays := range names {
		_, err := os.Stat(filepath.Join(dir, "tmp", name))
		if stays != (err == nil) {
			t.Errorf("%s: stays %v, stat %v", name, stays, err)
		}
	}
}

package deliver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of this file need Linux: a tmpfs for a full disk, a user
// namespace.

// mountTmpfs mounts a small tmpfs, or skips the test where it cannot
// (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs for a full disk: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

func TestMboxDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "64k")
	path := filepath.Join(dir, "mbox")
	m := openMbox(t, path, MboxOptions{})
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 1\n\none\n")); err != nil {
		t.Fatal(err)
	}
	size1 := fileSize(t, path)
	err := m.Deliver(Envelope{}, strings.NewReader("Subject: 2\n\n"+strings.Repeat("y", 200<<10)+"\n"))
	var de *Error
	if !errors.As(err, &de) || de.Source || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Deliver to a full disk: %v, want an *Error wrapping ENOSPC", err)
	}
	if got := fileSize(t, path); got != size1 {
		t.Errorf("size after the failed message %d, want %d", got, size1)
	}
	// the space is free again
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: 3\n\nthree\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	msgs := readMboxPython(t, path)
	if len(msgs) != 2 || msgs[0].Msg != "Subject: 1\n\none\n" || msgs[1].Msg != "Subject: 3\n\nthree\n" {
		t.Errorf("python reads %q", msgs)
	}
	assertNoLockLeft(t, path)
}

func TestMaildirDiskFull(t *testing.T) {
	dir := filepath.Join(mountTmpfs(t, "64k"), "Maildir")
	md, err := OpenMaildir(dir, MaildirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	if err := md.Deliver(Envelope{}, strings.NewReader("Subject: 1\n\none\n")); err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(); err != nil {
		t.Fatal(err)
	}
	err = md.Deliver(Envelope{}, strings.NewReader("Subject: 2\n\n"+strings.Repeat("y", 200<<10)+"\n"))
	var de *Error
	if !errors.As(err, &de) || de.Source || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Deliver to a full disk: %v, want an *Error wrapping ENOSPC", err)
	}
	if err := md.Commit(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d files", len(ents))
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 1 {
		t.Fatalf("new/ holds %d files, want 1", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "new", ents[0].Name())); string(b) != "Subject: 1\n\none\n" {
		t.Errorf("new/ holds %q", b)
	}
}

// TestMboxNoDotlockPermission: in a directory where we may not create a
// dotlock (a system spool such as /var/mail, group mail 2775), the fcntl
// lock alone is taken, after a fresh dotlock of another program is gone.
// The test runs as root, whom modes do not stop, so the Mbox runs in a
// child process in a new user namespace: there root is an ordinary owner
// of its files, bound by their modes.
func TestMboxNoDotlockPermission(t *testing.T) {
	if dir := os.Getenv("POPFETCH_TEST_NODOTLOCK"); dir != "" {
		noDotlockChild(t, dir)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: the directory must be one root, in a user namespace, cannot write")
	}
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(spool, "mbox")
	if err := os.WriteFile(path, []byte("From a Mon Jan  1 00:00:00 2024\nSubject: p\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// a fresh dotlock of another program, removed a little later
	if err := os.WriteFile(path+".lock", nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(spool, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(spool, 0o755)
	size := fileSize(t, path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMboxNoDotlockPermission$", "-test.v")
	cmd.Env = append(os.Environ(), "POPFETCH_TEST_NODOTLOCK="+spool)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process in a new user namespace: %v", err)
	}
	out := bufio.NewReader(stdout)
	var log strings.Builder
	for {
		line, err := out.ReadString('\n')
		log.WriteString(line)
		if strings.Contains(line, "waiting for the locks") {
			break
		}
		if err != nil {
			cmd.Wait()
			if strings.Contains(log.String(), "--- SKIP") {
				t.Skipf("child skipped:\n%s", log.String())
			}
			t.Fatalf("child:\n%s", log.String())
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := fileSize(t, path); got != size {
		t.Fatal("the child appended while another program held the dotlock")
	}
	// now the other program's fcntl lock alone
	release := holdFcntlLock(t, path)
	os.Chmod(spool, 0o755)
	os.Remove(path + ".lock")
	os.Chmod(spool, 0o555)
	time.Sleep(100 * time.Millisecond)
	if got := fileSize(t, path); got != size {
		t.Fatal("the child appended while another program held the fcntl lock")
	}
	release()
	rest, _ := io.ReadAll(out)
	log.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "--- PASS") {
		t.Fatalf("child did not pass:\n%s", log.String())
	}
	msgs := readMboxPython(t, path)
	if len(msgs) != 2 || msgs[1].Msg != "Subject: ours\n\nours\n" {
		t.Errorf("python reads %q", msgs)
	}
}

func noDotlockChild(t *testing.T, spool string) {
	path := filepath.Join(spool, "mbox")
	if f, err := os.CreateTemp(spool, "probe"); err == nil {
		os.Remove(f.Name())
		t.Skip("the user namespace does not stop us from writing the directory")
	}
	m := openMbox(t, path, MboxOptions{LockTimeout: time.Minute})
	fmt.Println("waiting for the locks")
	if err := m.Deliver(Envelope{}, strings.NewReader("Subject: ours\n\nours\n")); err != nil {
		t.Fatal(err)
	}
	if !m.noDotlock {
		t.Error("took a dotlock in a directory we cannot write")
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
}

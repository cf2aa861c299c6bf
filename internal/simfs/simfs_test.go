package simfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/internal/vfs"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func mustDisk(t *testing.T) (*FS, *Proc) {
	t.Helper()
	d := New(Options{})
	if err := d.MkdirAll("/m", 0o700); err != nil {
		t.Fatal(err)
	}
	return d, d.NewProcess()
}

func write(t *testing.T, p vfs.FS, name, data string, flag int) vfs.File {
	t.Helper()
	f, err := p.OpenFile(name, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, data); err != nil {
		t.Fatal(err)
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readOrMissing(d *FS, name string) string {
	b, err := d.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestFileSemantics(t *testing.T) {
	d, p := mustDisk(t)
	f := write(t, p, "/m/a", "hello", os.O_EXCL)
	must(t, f.Close())
	if _, err := p.OpenFile("/m/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	f = write(t, p, "/m/a", " world", os.O_APPEND)
	must(t, f.Close())
	if got := readOrMissing(d, "/m/a"); got != "hello world" {
		t.Fatalf("after append: %q", got)
	}
	f, err := p.OpenFile("/m/a", os.O_RDWR, 0)
	must(t, err)
	buf := make([]byte, 5)
	if n, err := f.ReadAt(buf, 6); n != 5 || err != nil || string(buf) != "world" {
		t.Fatalf("ReadAt: %d %v %q", n, err, buf)
	}
	if n, err := f.ReadAt(buf, 8); n != 3 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d %v", n, err)
	}
	must(t, f.Truncate(5))
	if b, _ := io.ReadAll(f); string(b) != "hello" {
		t.Fatalf("read after truncate: %q", b)
	}
	info, err := f.Stat()
	must(t, err)
	if info.Size != 5 || !info.IsRegular() || info.Links != 1 || info.Mode.Perm() != 0o600 || info.UID != os.Geteuid() {
		t.Fatalf("stat: %+v", info)
	}
	must(t, f.Close())
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}

	must(t, p.Link("/m/a", "/m/b"))
	if info, _ := p.Stat("/m/b"); info.Links != 2 {
		t.Fatalf("links after link: %d", info.Links)
	}
	if err := p.Link("/m/a", "/m/b"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("link over an existing name: %v", err)
	}
	if err := p.RenameNoReplace("/m/a", "/m/b"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("RenameNoReplace over an existing name: %v", err)
	}
	must(t, p.RenameNoReplace("/m/a", "/m/c"))
	must(t, p.Remove("/m/b"))
	names, err := p.ReadDir("/m")
	must(t, err)
	if strings.Join(names, ",") != "c" {
		t.Fatalf("ReadDir: %q", names)
	}
	if info, _ := p.Stat("/m/c"); info.Links != 1 {
		t.Fatalf("links after remove: %d", info.Links)
	}
	if _, err := p.Stat("/m/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a renamed name: %v", err)
	}
	if err := p.Remove("/m"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("remove of a full directory: %v", err)
	}
	if err := p.Mkdir("/x/y", 0o700); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mkdir without a parent: %v", err)
	}
	if _, err := p.OpenFile("/m/c/d", os.O_RDONLY, 0); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("a file as a directory: %v", err)
	}
}

func TestUnlinkedFileStaysOpen(t *testing.T) {
	d, p := mustDisk(t)
	f := write(t, p, "/m/a", "data", 0)
	must(t, p.Remove("/m/a"))
	if got := d.Used(); got != 4 {
		t.Fatalf("used while open: %d", got)
	}
	if info, _ := f.Stat(); info.Links != 0 {
		t.Fatalf("links of an unlinked file: %d", info.Links)
	}
	must(t, f.Close())
	if got := d.Used(); got != 0 {
		t.Fatalf("used after the last close: %d", got)
	}
}

func TestSymlinks(t *testing.T) {
	d, p := mustDisk(t)
	must(t, d.WriteFile("/m/real", []byte("x"), 0o600))
	must(t, d.Symlink("real", "/m/link"))
	must(t, d.Symlink("/m/nowhere", "/m/dangling"))
	must(t, d.Symlink("/m", "/dirlink"))

	if b, err := vfs.ReadFile(p, "/dirlink/link"); err != nil || string(b) != "x" {
		t.Fatalf("through two links: %q %v", b, err)
	}
	if info, err := p.Lstat("/m/link"); err != nil || !info.IsSymlink() {
		t.Fatalf("lstat of a link: %+v %v", info, err)
	}
	if info, err := p.Stat("/m/link"); err != nil || !info.IsRegular() {
		t.Fatalf("stat of a link: %+v %v", info, err)
	}
	if _, err := p.OpenFile("/m/link", os.O_RDONLY|vfs.O_NOFOLLOW, 0); !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("O_NOFOLLOW on a link: %v", err)
	}
	if _, err := p.OpenFile("/m/dangling", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on a dangling link: %v", err)
	}
	// As on a real system: O_CREAT without O_EXCL creates the target.
	must(t, write(t, p, "/m/dangling", "y", 0).Close())
	if got := readOrMissing(d, "/m/nowhere"); got != "y" {
		t.Fatalf("the dangling link's target: %q", got)
	}
	must(t, d.Symlink("loop2", "/m/loop1"))
	must(t, d.Symlink("loop1", "/m/loop2"))
	if _, err := p.Stat("/m/loop1"); !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("a loop of links: %v", err)
	}
	must(t, d.Lchown("/m/link", 4242))
	if info, _ := p.Lstat("/m/link"); info.UID != 4242 {
		t.Fatalf("lchown: %d", info.UID)
	}
	if info, _ := p.Stat("/m/link"); info.UID == 4242 {
		t.Fatal("lchown changed the target")
	}
}

// A write that was never synced can be lost, kept, or torn by a power cut.
func TestUnsyncedWriteCanBeLost(t *testing.T) {
	outcomes := map[string]int{}
	for seed := range uint64(200) {
		d, p := mustDisk(t)
		f := write(t, p, "/m/a", "old", os.O_EXCL)
		must(t, f.Sync())
		must(t, p.SyncDir("/m"))
		if _, err := io.WriteString(f, " and new"); err != nil {
			t.Fatal(err)
		}
		d.CrashPower(rng(seed))
		got := readOrMissing(d, "/m/a")
		if !strings.HasPrefix("old and new", got) || len(got) < 3 {
			t.Fatalf("seed %d: %q is not a prefix of the writes keeping the synced data", seed, got)
		}
		switch got {
		case "old":
			outcomes["lost"]++
		case "old and new":
			outcomes["kept"]++
		default:
			outcomes["torn"]++
		}
	}
	if outcomes["lost"] == 0 || outcomes["kept"] == 0 || outcomes["torn"] == 0 {
		t.Fatalf("outcomes over 200 seeds: %v", outcomes)
	}
}

// A file created and written but neither synced nor made durable in its
// directory can vanish.
func TestUnsyncedCreateCanVanish(t *testing.T) {
	vanished := 0
	for seed := range uint64(100) {
		d, p := mustDisk(t)
		f := write(t, p, "/m/a", "data", os.O_EXCL)
		must(t, f.Sync()) // the data, not the name
		d.CrashPower(rng(seed))
		switch got := readOrMissing(d, "/m/a"); got {
		case "<missing>":
			vanished++
		case "data":
		default:
			t.Fatalf("seed %d: %q", seed, got)
		}
	}
	if vanished == 0 {
		t.Fatal("a name never made durable survived every crash")
	}
}

// Written, synced, and named durably: every crash keeps it.
func TestSyncedSurvivesEveryCrash(t *testing.T) {
	for seed := range uint64(500) {
		d, p := mustDisk(t)
		created, err := vfs.MkdirAll(p, "/m/box/new", 0o700)
		if err != nil || len(created) != 2 {
			t.Fatalf("MkdirAll: %v %v", created, err)
		}
		f := write(t, p, "/m/box/new/msg", "message", os.O_EXCL)
		must(t, f.Sync())
		must(t, f.Close())
		must(t, p.SyncDir("/m/box/new"))
		// later writes, not made durable, must not disturb it
		g := write(t, p, "/m/box/new/other", "other", os.O_EXCL)
		must(t, p.Rename("/m/box/new/other", "/m/box/other"))
		_ = g
		d.CrashPower(rng(seed))
		if got := readOrMissing(d, "/m/box/new/msg"); got != "message" {
			t.Fatalf("seed %d: %q", seed, got)
		}
		if dc, files := d.Pending(); dc != 0 || files != 0 {
			t.Fatalf("seed %d: after a crash everything is durable; pending %d, %d", seed, dc, files)
		}
	}
}

// A directory made without syncing its parent can take durable files with
// it: why vfs.MkdirAll syncs the parent.
func TestDirectoryNotDurableTakesItsFiles(t *testing.T) {
	lost := 0
	for seed := range uint64(100) {
		d, p := mustDisk(t)
		must(t, p.Mkdir("/m/box", 0o700))
		f := write(t, p, "/m/box/msg", "message", os.O_EXCL)
		must(t, f.Sync())
		must(t, p.SyncDir("/m/box"))
		d.CrashPower(rng(seed))
		if readOrMissing(d, "/m/box/msg") == "<missing>" {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("a directory never synced into its parent survived every crash")
	}
}

// The atomic replacement pattern (write, fsync, rename, fsync the
// directory) leaves the old or the new file at every point, never a mix;
// without the fsync before the rename, a crash can show a cut file.
func TestRenameReplacement(t *testing.T) {
	for _, syncFirst := range []bool{true, false} {
		mixed := 0
		for seed := range uint64(300) {
			d, p := mustDisk(t)
			must(t, d.WriteFile("/m/cache", []byte("old contents"), 0o600))
			f := write(t, p, "/m/.tmp", "new contents", os.O_EXCL)
			if syncFirst {
				must(t, f.Sync())
			}
			must(t, f.Close())
			must(t, p.Rename("/m/.tmp", "/m/cache"))
			d.CrashPower(rng(seed))
			got := readOrMissing(d, "/m/cache")
			if got != "old contents" && got != "new contents" {
				mixed++
				if syncFirst {
					t.Fatalf("seed %d: %q", seed, got)
				}
			}
		}
		if !syncFirst && mixed == 0 {
			t.Fatal("a rename of unsynced data never showed a cut file")
		}
	}
}

// A rename moves the name or does not: never both names, never none.
func TestRenameIsAtomic(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(200) {
		d, p := mustDisk(t)
		must(t, d.MkdirAll("/m/tmp", 0o700))
		must(t, d.MkdirAll("/m/new", 0o700))
		must(t, d.WriteFile("/m/tmp/x", []byte("x"), 0o600))
		must(t, p.Rename("/m/tmp/x", "/m/new/x"))
		must(t, p.SyncDir("/m/tmp")) // the source: does not make the rename durable
		d.CrashPower(rng(seed))
		state := readOrMissing(d, "/m/tmp/x") + "|" + readOrMissing(d, "/m/new/x")
		seen[state]++
	}
	if len(seen) != 2 || seen["x|<missing>"] == 0 || seen["<missing>|x"] == 0 {
		t.Fatalf("states after crashes: %v", seen)
	}
}

func dump(d *FS) string {
	var b strings.Builder
	d.Walk("/", func(name string, info vfs.Info) error {
		data, _ := d.ReadFile(name)
		fmt.Fprintf(&b, "%s %v %d %q\n", name, info.Mode, info.Links, data)
		return nil
	})
	return b.String()
}

// workload makes a mix of durable and undurable changes.
func workload(t *testing.T, p vfs.FS) {
	for i := range 20 {
		name := fmt.Sprintf("/m/f%d", i)
		f := write(t, p, name, strings.Repeat(fmt.Sprint(i), 10+i), os.O_EXCL)
		if i%3 == 0 {
			must(t, f.Sync())
		}
		if i%4 == 0 {
			must(t, p.SyncDir("/m"))
		}
		if i%5 == 1 {
			must(t, p.Rename(name, name+"r"))
		} else if i%7 == 2 {
			must(t, p.Remove(name))
		}
		must(t, f.Close())
	}
}

func TestCrashDeterministic(t *testing.T) {
	differ := false
	var first string
	for seed := range uint64(20) {
		var got [2]string
		for i := range got {
			d, p := mustDisk(t)
			workload(t, p)
			got[i] = dump(d.CrashClone(rng(seed)))
			d.CrashPower(rng(seed))
			if dump(d) != got[i] {
				t.Fatalf("seed %d: CrashPower and CrashClone differ", seed)
			}
		}
		if got[0] != got[1] {
			t.Fatalf("seed %d: two crashes differ:\n%s\n%s", seed, got[0], got[1])
		}
		if seed == 0 {
			first = got[0]
		} else if got[0] != first {
			differ = true
		}
	}
	if !differ {
		t.Fatal("every seed gives the same crash")
	}
}

func TestCrashCloneLeavesTheDisk(t *testing.T) {
	d, p := mustDisk(t)
	workload(t, p)
	before := dump(d)
	d.CrashClone(rng(1))
	if dump(d) != before {
		t.Fatal("CrashClone changed the disk")
	}
	if _, err := p.Stat("/m"); err != nil {
		t.Fatalf("the process died in a CrashClone: %v", err)
	}
}

func TestCrashProcessKeepsWrites(t *testing.T) {
	d, p := mustDisk(t)
	f := write(t, p, "/m/a", "never synced", os.O_EXCL)
	ok, err := f.TryLock(vfs.LockFlock)
	if !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	d.CrashProcess()
	if got := readOrMissing(d, "/m/a"); got != "never synced" {
		t.Fatalf("after kill -9: %q", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrDead) {
		t.Fatalf("a dead process's write: %v", err)
	}
	if _, err := p.Stat("/m/a"); !errors.Is(err, ErrDead) {
		t.Fatalf("a dead process's stat: %v", err)
	}
	if p.ProcessAlive(p.Pid()) {
		t.Fatal("the dead process is alive")
	}
	q := d.NewProcess()
	if q.Pid() == p.Pid() || !q.ProcessAlive(q.Pid()) || q.ProcessAlive(p.Pid()) {
		t.Fatalf("pids: %d %d", p.Pid(), q.Pid())
	}
	g, err := q.OpenFile("/m/a", os.O_RDWR, 0)
	must(t, err)
	if ok, err := g.TryLock(vfs.LockFlock); !ok || err != nil {
		t.Fatalf("the lock of a killed process is still held: %v %v", ok, err)
	}
	// a power cut now can still lose what was never synced
	lost := false
	for seed := range uint64(50) {
		if got := readOrMissing(d.CrashClone(rng(seed)), "/m/a"); got != "never synced" {
			lost = true
		}
	}
	if !lost {
		t.Fatal("data that survived a process crash was taken as durable")
	}
}

func TestLocks(t *testing.T) {
	d, p := mustDisk(t)
	must(t, d.WriteFile("/m/box", nil, 0o600))
	q := d.NewProcess()
	open := func(p vfs.FS) vfs.File {
		f, err := p.OpenFile("/m/box", os.O_RDWR, 0)
		must(t, err)
		return f
	}
	lock := func(f vfs.File, k vfs.LockKind) bool {
		ok, err := f.TryLock(k)
		must(t, err)
		return ok
	}
	a, b, c := open(p), open(p), open(q)
	if !lock(a, vfs.LockFcntl) {
		t.Fatal("first lock refused")
	}
	if !lock(a, vfs.LockFcntl) {
		t.Fatal("the holder's second lock refused")
	}
	if lock(b, vfs.LockFcntl) || lock(c, vfs.LockFcntl) {
		t.Fatal("a second open got the lock")
	}
	if !lock(b, vfs.LockFlock) {
		t.Fatal("a flock conflicts with an fcntl lock")
	}
	if lock(c, vfs.LockFlock) {
		t.Fatal("two flocks")
	}
	must(t, a.Close())
	if !lock(c, vfs.LockFcntl) {
		t.Fatal("the lock outlived its file")
	}
	q.Kill()
	if !lock(b, vfs.LockFcntl) {
		t.Fatal("the lock outlived its process")
	}
	r, err := p.OpenFile("/m/box", os.O_RDONLY, 0)
	must(t, err)
	if _, err := r.TryLock(vfs.LockFcntl); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("a write lock on a read-only file: %v", err)
	}
}

func TestRules(t *testing.T) {
	d, p := mustDisk(t)
	d.Inject(Rule{Kind: OpWrite, Path: "/m/*.mbox", Nth: 2, Err: syscall.ENOSPC})
	d.Inject(Rule{Kind: OpSyncDir, Err: syscall.EROFS})
	d.Inject(Rule{Path: "victim", Err: syscall.EIO})
	f := write(t, p, "/m/x.mbox", "first", 0)
	if _, err := f.Write([]byte("second")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %v", err)
	}
	if _, err := f.Write([]byte("third")); err != nil {
		t.Fatalf("third write: %v", err)
	}
	if got := readOrMissing(d, "/m/x.mbox"); got != "firstthird" {
		t.Fatalf("a failed write wrote: %q", got)
	}
	for range 2 {
		if err := p.SyncDir("/m"); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("sync dir: %v", err)
		}
	}
	if _, err := p.OpenFile("/m/victim", os.O_RDWR|os.O_CREATE, 0o600); !errors.Is(err, syscall.EIO) {
		t.Fatalf("open victim: %v", err)
	}
	var pe *fs.PathError
	if _, err := p.Stat("/m/victim"); !errors.As(err, &pe) || pe.Path != "/m/victim" || pe.Op != "stat" {
		t.Fatalf("error shape: %#v", err)
	}
	d.ClearRules()
	n := d.Ops()
	d.Inject(Rule{At: n + 2})
	must(t, p.SyncDir("/m"))
	if err := p.SyncDir("/m"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("op %d: %v", n+2, err)
	}
	must(t, p.SyncDir("/m"))
	if c := d.Counts(); c[OpSyncDir] != 5 || c[OpWrite] != 3 || c[OpCreate] != 2 {
		t.Fatalf("counts: %v", c)
	}
}

func TestSpace(t *testing.T) {
	d, p := mustDisk(t)
	d.SetSpace(10)
	f := write(t, p, "/m/a", "0123456", 0)
	n, err := f.Write([]byte("789abc"))
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the space: %d %v", n, err)
	}
	if err := f.Truncate(20); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("truncate past the space: %v", err)
	}
	must(t, f.Truncate(4))
	must(t, f.Close())
	f = write(t, p, "/m/a", "xyz", os.O_APPEND)
	must(t, f.Close())
	if got := readOrMissing(d, "/m/a"); got != "0123xyz" || d.Used() != int64(len(got)) {
		t.Fatalf("contents %q, used %d", got, d.Used())
	}
}

// OnOp can crash the disk at any call: a simulator's "death at op N".
func TestOnOpCrash(t *testing.T) {
	d, p := mustDisk(t)
	var seen []Op
	d.OnOp(func(op Op) error {
		seen = append(seen, op)
		if op.N == 4 {
			d.CrashProcess()
		}
		return nil
	})
	f := write(t, p, "/m/a", "x", 0) // 1 create, 2 write
	must(t, f.Sync())                // 3
	if err := f.Close(); !errors.Is(err, ErrDead) {
		t.Fatalf("the call that met the crash: %v", err)
	}
	if len(seen) != 4 || seen[0].Kind != OpCreate || seen[3].Kind != OpClose || seen[3].Path != "/m/a" || seen[3].Pid != p.Pid() {
		t.Fatalf("ops: %v", seen)
	}
	if _, err := p.Stat("/m"); !errors.Is(err, ErrDead) {
		t.Fatalf("after the crash: %v", err)
	}
	if len(seen) != 4 {
		t.Fatal("a dead process's call was counted")
	}
}

func TestTornZeros(t *testing.T) {
	zeros := false
	for seed := range uint64(100) {
		d := New(Options{TornZeros: true})
		p := d.NewProcess()
		must(t, d.MkdirAll("/m", 0o700))
		f := write(t, p, "/m/a", "synced", os.O_EXCL)
		must(t, f.Sync())
		must(t, p.SyncDir("/m"))
		io.WriteString(f, "unsynced")
		got, _ := d.CrashClone(rng(seed)).ReadFile("/m/a")
		if !bytes.HasPrefix(got, []byte("synced")) {
			t.Fatalf("seed %d: %q", seed, got)
		}
		if bytes.Contains(got, []byte{0}) {
			zeros = true
		}
	}
	if !zeros {
		t.Fatal("no torn write showed zeros")
	}
}

// The disk is used from several goroutines at once (the engine saves its
// cache while it delivers): the race detector watches this one.
func TestConcurrentCalls(t *testing.T) {
	d, p := mustDisk(t)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 50 {
				name := fmt.Sprintf("/m/g%d-%d", g, i)
				f, e := p.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if e != nil {
					err = e
					break
				}
				f.Write([]byte(name))
				f.Sync()
				f.Close()
				p.SyncDir("/m")
				p.Rename(name, name+".done")
			}
			done <- err
		}()
	}
	go d.CrashClone(rng(1))
	for range 4 {
		must(t, <-done)
	}
	names, _ := d.ReadDir("/m")
	if len(names) != 200 {
		t.Fatalf("%d files", len(names))
	}
}

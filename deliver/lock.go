package deliver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/vfs"
)

// ErrLocked is wrapped by the *Error of an mbox delivery that could not get
// the mailbox's locks within MboxOptions.LockTimeout: another program
// (a mail reader, procmail, the system MDA) held them all that time.
var ErrLocked = errors.New("mailbox is locked by another program")

// errNoDotlock says that the directory does not let us create a dotlock.
var errNoDotlock = errors.New("cannot create a dotlock here")

// dotlock is a held lock file PATH.lock, the oldest mailbox lock: procmail,
// mutt, liblockfile and the system MDAs take it before writing a mailbox.
// It is created with the link trick, as procmail and liblockfile do: a
// unique file is written in the same directory and hard-linked to the lock
// name; the link count of the unique file tells whether we won, which stays
// true on NFS where link may report a failure that did in fact succeed.
//
// While held, the lock file's time is refreshed regularly, so that others
// (and we) can take a lock not refreshed for a long time as left by a
// crashed process (liblockfile's lockfile_touch).
type dotlock struct {
	fs      vfs.FS
	path    string
	content string // "PID TOKEN HOST\n": liblockfile reads the PID, the token is ours alone
	token   string
	id      vfs.FileID
	stop    chan struct{}
	done    chan struct{}
}

// heldTokens are the tokens of the dotlocks this process holds. A lock
// file in our name (our PID, our host) with another token is nobody's: a
// release of ours failed to remove it (an I/O error), or a process of an
// earlier boot had our PID (a power cut) — without this, we would wait
// for ourselves until the lock is stale.
var heldTokens = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

func holdToken(token string, held bool) {
	heldTokens.Lock()
	defer heldTokens.Unlock()
	if held {
		heldTokens.m[token] = true
	} else {
		delete(heldTokens.m, token)
	}
}

func tokenHeld(token string) bool {
	heldTokens.Lock()
	defer heldTokens.Unlock()
	return heldTokens.m[token]
}

// tryDotlock tries once to create the dotlock path. It returns nil, nil when
// someone else holds it; errNoDotlock when the directory does not let us
// create files (a system spool such as /var/mail, writable only by the
// group mail); any other error is a failure.
//
// A lock whose time is older than staleAge is removed first: its holder is
// taken to be dead (procmail does the same after LOCKTIMEOUT, 17 minutes;
// liblockfile after 5 minutes). So is, at once, a lock of ours whose
// process is gone: one left by a popfetch killed in the middle of a batch
// (liblockfile's L_PID check).
func tryDotlock(fsys vfs.FS, path string, staleAge, refresh time.Duration) (*dotlock, error) {
	var r [8]byte
	rand.Read(r[:])
	token := hex.EncodeToString(r[:])
	// held from before its unique file exists, so that no other lock of
	// this process takes that file as left over (removeStaleLinkFiles)
	holdToken(token, true)
	taken := false
	defer func() {
		if !taken {
			holdToken(token, false)
		}
	}()
	content := fmt.Sprintf("%d %s %s\n", fsys.Getpid(), token, lockHost())
	// A short name: the mailbox's name may already be near NAME_MAX.
	tmp := filepath.Join(filepath.Dir(path), ".lk"+token)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%w: %v", errNoDotlock, err)
		}
		return nil, err
	}
	defer fsys.Remove(tmp)
	_, werr := io.WriteString(f, content)
	if werr == nil {
		// Durable before it is linked: a lock that a power cut leaves
		// behind then always says whose it was, and the next run removes
		// it as its holder's, instead of waiting for it to be stale.
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, werr
	}

	for attempt := 0; attempt < 2; attempt++ {
		lerr := fsys.Link(tmp, path)
		st, err := fsys.Stat(tmp)
		if err != nil {
			return nil, err
		}
		if lerr == nil || st.Links == 2 {
			taken = true
			return startDotlock(fsys, path, content, token, st.ID, refresh), nil
		}
		switch {
		case errors.Is(lerr, fs.ErrExist):
		case errors.Is(lerr, syscall.EPERM), errors.Is(lerr, syscall.EOPNOTSUPP), errors.Is(lerr, syscall.EMLINK):
			// A file system without hard links (FAT, some FUSE): O_EXCL is
			// atomic on every local file system and on NFSv3 and later.
			l, err := tryDotlockExcl(fsys, path, content, token, refresh)
			taken = l != nil
			return l, err
		default:
			return nil, lerr
		}
		if attempt > 0 || !removeIfStale(fsys, path, staleAge) {
			return nil, nil
		}
	}
	return nil, nil
}

func tryDotlockExcl(fsys vfs.FS, path, content, token string, refresh time.Duration) (*dotlock, error) {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(f, content)
	if err == nil {
		err = f.Sync() // see tryDotlock
	}
	var st vfs.Info
	if err == nil {
		st, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fsys.Remove(path)
		return nil, err
	}
	return startDotlock(fsys, path, content, token, st.ID, refresh), nil
}

// removeIfStale removes the lock file path if it has not been modified for
// staleAge, or if it is ours and its process is dead, and reports whether
// it did.
func removeIfStale(fsys vfs.FS, path string, staleAge time.Duration) bool {
	fi, err := fsys.Lstat(path)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) // gone already: try again
	}
	if time.Since(fi.ModTime) < staleAge && !holderDead(fsys, path) {
		return false
	}
	return fsys.Remove(path) == nil
}

// holderDead reports whether the dotlock path was made by a process of
// this host, in our format, that no longer exists, or by this process
// with a token it does not hold (see heldTokens). A kill -9 leaves the
// lock behind; without this, every program would wait StaleLockAge for it.
// A lock of another host (an mbox on NFS) is never judged by its PID.
func holderDead(fsys vfs.FS, path string) bool {
	f, err := fsys.OpenFile(path, os.O_RDONLY|vfs.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [256]byte
	n, _ := io.ReadFull(f, b[:])
	fields := strings.Fields(string(b[:n]))
	host := lockHost()
	if len(fields) != 3 || host == "" || fields[2] != host {
		return false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == fsys.Getpid() {
		return !tokenHeld(fields[1])
	}
	return !fsys.ProcessAlive(pid)
}

// removeStaleLinkFiles removes, from the directory dir, the files a
// popfetch of this host killed while it took a dotlock left behind: the
// unique files (".lk" and a token) it links to the lock's name, which say
// whose they are as the lock does. Other programs' files are never
// touched. It is housekeeping: a failure changes nothing else.
func removeStaleLinkFiles(fsys vfs.FS, dir string) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, name := range names {
		if len(name) != len(".lk")+16 || !strings.HasPrefix(name, ".lk") {
			continue
		}
		if p := filepath.Join(dir, name); holderDead(fsys, p) {
			fsys.Remove(p)
		}
	}
}

// lockHost names this host in our dotlocks; "" if it has no name.
func lockHost() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, h)
}

// startDotlock starts the refresh of a lock taken; its token is held
// (heldTokens) until release.
func startDotlock(fsys vfs.FS, path, content, token string, id vfs.FileID, refresh time.Duration) *dotlock {
	l := &dotlock{fs: fsys, path: path, content: content, token: token, id: id,
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.refresh(refresh)
	return l
}

// refresh touches the lock file every interval until release.
func (l *dotlock) refresh(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if l.ours() {
				now := time.Now()
				l.fs.Chtimes(l.path, now, now)
			}
		}
	}
}

// ours reports whether the lock file is still the one we created, and not
// one another process made after taking ours as stale. The inode alone
// could tell wrong: a file system may give a new file the number just
// freed.
func (l *dotlock) ours() bool {
	st, err := l.fs.Lstat(l.path)
	if err != nil || st.ID != l.id {
		return false
	}
	b, err := vfs.ReadFile(l.fs, l.path)
	return err == nil && string(b) == l.content
}

// release removes the lock file, if it is still ours.
func (l *dotlock) release() error {
	close(l.stop)
	<-l.done
	holdToken(l.token, false) // from now on, a lock file left is nobody's
	if !l.ours() {
		return nil
	}
	if err := l.fs.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// lockPause returns the pause after a failed lock attempt and the next
// one's: growing from 10 ms to half a second, with jitter so that two
// waiters do not stay in step.
func lockPause(prev time.Duration) (pause, next time.Duration) {
	if prev == 0 {
		prev = 10 * time.Millisecond
	}
	var r [1]byte
	rand.Read(r[:])
	return prev/2 + prev*time.Duration(r[0])/512, min(2*prev, 500*time.Millisecond)
}

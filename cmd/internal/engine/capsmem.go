package engine

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/uidcache"
)

// The capabilities a server listed before login are remembered in the
// state directory, next to the mailbox's UID cache, when they include
// PIPELINING: the next session then sends its login, CAPA, UIDL and LIST
// together right after the greeting, which saves the round trip of the
// first CAPA (CONTRACT §7). The memory is a hint, never trusted for
// safety:
//
//   - it is used only for the same server as far as the session can tell
//     (the TLS mode and the greeting, less its APOP timestamp), and only
//     once TLS is established and its certificate verified (implicit
//     TLS), or for a session without TLS that may send credentials
//     anyway;
//   - the CAPA sent with the login says what the server lists now: a
//     login the server refuses because its methods changed is made again
//     with what it lists now, which costs a round trip, and the memory is
//     written anew (or removed, without PIPELINING);
//   - only logins that take one exchange are pipelined (USER/PASS, APOP,
//     AUTH PLAIN with its initial response); others wait as always.
//
// The file holds no secret: an id of the server and its capability
// lines. It is replaced atomically (written aside, renamed), not synced:
// a memory lost in a crash costs a round trip.

// capsMemoryLimit bounds the file read: real servers list a dozen or two
// capabilities.
const capsMemoryLimit = 16 << 10

func capsPath(a *config.Account) string {
	return filepath.Join(a.StateDir, uidcache.EscapeKey(a.Key())+".caps")
}

// serverID names a server as a session sees it before login: its TLS mode
// and its greeting without the APOP timestamp, which changes every time.
func serverID(a *config.Account, c *pop3.Client) string {
	g := c.Greeting()
	if ts := c.APOPTimestamp(); ts != "" {
		g = strings.Replace(g, ts, "", 1)
	}
	sum := sha256.Sum256([]byte(string(a.TLS) + "\n" + g))
	return hex.EncodeToString(sum[:])
}

// rememberedCaps returns the capabilities remembered for the account's
// server, if they are for the server c is connected to and list
// PIPELINING; else nil.
func rememberedCaps(fsys vfs.FS, a *config.Account, c *pop3.Client) pop3.Caps {
	f, err := vfs.OrOS(fsys).OpenFile(capsPath(a), os.O_RDONLY|vfs.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, capsMemoryLimit+1))
	if err != nil || len(data) > capsMemoryLimit {
		return nil
	}
	want := "id " + serverID(a, c)
	caps := pop3.Caps{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 0; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case n == 0 && !strings.HasPrefix(line, "#"):
			return nil
		case n == 0:
		case n == 1 && line != want:
			return nil
		case n == 1:
		default:
			f := strings.Fields(strings.TrimPrefix(line, "cap "))
			if !strings.HasPrefix(line, "cap ") || len(f) == 0 {
				return nil
			}
			caps[strings.ToUpper(f[0])] = f[1:]
		}
	}
	if sc.Err() != nil || !caps.Has("PIPELINING") {
		return nil
	}
	return caps
}

// rememberCaps writes the memory of the server's capabilities before
// login, or removes it when they do not list PIPELINING. It does nothing
// when the memory says that already. Failures are only logged: the
// memory is a hint.
func (r *run) rememberCaps(c *pop3.Client, caps, remembered pop3.Caps) {
	if r.acct.TLS == config.TLSStartTLS || r.readOnly {
		return // its login waits for STLS anyway (see run.login); check writes nothing
	}
	path := capsPath(r.acct)
	fsys := vfs.OrOS(r.opts.FS)
	if !caps.Has("PIPELINING") {
		if remembered != nil || caps != nil {
			if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.log.Info("could not remove the remembered server capabilities", "error", err)
			}
		}
		return
	}
	if remembered != nil && maps.EqualFunc(caps, remembered, slices.Equal) {
		return
	}
	var b strings.Builder
	b.WriteString("# popfetch: the server's capabilities before login, to pipeline the next login (deleting this file is harmless)\n")
	b.WriteString("id " + serverID(r.acct, c) + "\n")
	for _, k := range slices.Sorted(maps.Keys(caps)) {
		b.WriteString("cap " + strings.Join(append([]string{k}, caps[k]...), " ") + "\n")
	}
	if b.Len() > capsMemoryLimit {
		return
	}
	if err := writeAside(fsys, path, []byte(b.String())); err != nil {
		r.log.Info("could not remember the server's capabilities", "error", err)
	}
}

// writeAside replaces a file with data atomically: a temporary file in the
// same directory (mode 0600), renamed over it. It does not sync.
func writeAside(fsys vfs.FS, path string, data []byte) error {
	var r [6]byte
	rand.Read(r[:])
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-"+hex.EncodeToString(r[:]))
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		fsys.Remove(tmp)
	}
	return err
}

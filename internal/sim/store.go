package sim

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Disk is what the checker reads a delivery target through: the OS's
// file system (OSDisk), or a simulated one (internal/simfs's FS has these
// two methods).
type Disk interface {
	// ReadFile returns the contents of the named file.
	ReadFile(name string) ([]byte, error)
	// ReadDir returns the names in a directory, sorted.
	ReadDir(name string) ([]string, error)
}

// OSDisk is the operating system's file system.
type OSDisk struct{}

// ReadFile implements Disk.
func (OSDisk) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// ReadDir implements Disk.
func (OSDisk) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

// Stored is a message found in a delivery target.
type Stored struct {
	Where string // file, or file and message number for an mbox
	Data  []byte // as stored, the format's own quoting undone
}

// readStore reads every message a target holds, with the formats' own
// rules written here anew (not the deliver package's), so the checker
// shares no code with the client it checks. A missing target holds
// nothing.
func readStore(d Disk, t Target, path string) ([]Stored, error) {
	switch t {
	case Maildir:
		var out []Stored
		for _, sub := range []string{"new", "cur"} {
			got, err := readDir(d, filepath.Join(path, sub), "")
			if err != nil {
				return nil, err
			}
			out = append(out, got...)
		}
		return out, nil
	case Mbox:
		data, err := d.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return splitMboxrd(path, data)
	case MDA, LMTP, SMTP:
		// the MDA and the mail server write outside any simulated disk
		return readDir(OSDisk{}, path, "msg.")
	}
	return nil, errors.New("unknown target")
}

// readDir reads the files of a directory whose names start with prefix,
// in name order.
func readDir(d Disk, dir, prefix string) ([]Stored, error) {
	names, err := d.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		p := filepath.Join(dir, name)
		data, err := d.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, Stored{Where: p, Data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Where < out[j].Where })
	return out, nil
}

// errTornMbox is an mbox that does not split into whole messages.
var errTornMbox = errors.New("mbox does not start with a From line, or its last message lacks the empty line after it")

// splitMboxrd splits an mboxrd file: a message starts at a "From " line
// at the start of the file or after an empty line, and ends with the
// empty line before the next one (or the end of the file); one '>' is
// removed from every line matching ^>+From . A file whose end is not a
// message's empty line ends with a cut-off message: it is returned with
// errTornMbox, the torn message included as it is.
func splitMboxrd(path string, data []byte) ([]Stored, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var out []Stored
	var cur *bytes.Buffer
	prevEmpty := true
	flush := func() error {
		if cur == nil {
			return nil
		}
		b := cur.Bytes()
		var err error
		if !bytes.HasSuffix(b, []byte("\n\n")) && !(len(b) == 1 && b[0] == '\n') {
			err = errTornMbox
		} else {
			b = b[:len(b)-1] // the separator's empty line
		}
		out = append(out, Stored{Where: path + "#" + itoa(len(out)+1), Data: b})
		return err
	}
	rest := data
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if prevEmpty && bytes.HasPrefix(line, []byte("From ")) {
			if err := flush(); err != nil {
				return out, err
			}
			cur = &bytes.Buffer{}
			prevEmpty = false
			continue
		}
		if cur == nil {
			return nil, errTornMbox
		}
		prevEmpty = string(line) == "\n"
		if unq := bytes.TrimLeft(line, ">"); len(unq) < len(line) && bytes.HasPrefix(unq, []byte("From ")) {
			line = line[1:]
		}
		cur.Write(line)
	}
	return out, flush()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

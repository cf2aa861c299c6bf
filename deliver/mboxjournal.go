package deliver

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// An mbox append is journaled so that a crash in the middle of it never
// leaves a cut-off message in the mailbox (CONTRACT §5). A batch is
// written first to a spool file of popfetch's own; at Commit, under the
// mailbox's locks, the spool and then a journal describing the append are
// made durable, and only then is the spool appended to the mbox. After a
// crash, the next run compares the end of the mbox with the spool: what
// matches is popfetch's, so a cut-off tail is truncated away and the
// messages that made it whole are reported, to be recorded rather than
// fetched again; if anything else follows (another program appended after
// the crash), the file is left as it is.

// journalMagic is the first line of a journal file.
const journalMagic = "popfetch mbox append v1"

// appendJournal describes one append of a spool to an mbox.
type appendJournal struct {
	Mbox  string // the mbox's path
	Dev   uint64 // the mbox file's identity when the append began
	Ino   uint64
	Start int64  // the mbox's size when the append began
	Sep   string // written before the spool: the end of an earlier message ("", "\n" or "\n\n")
	Msgs  []spooledMessage
}

// spooledMessage is a message of the spool: its ID (the UID) and where it
// ends in the spool; it begins where the one before it ends.
type spooledMessage struct {
	ID     string
	End    int64
	Listed int64 // Envelope.ListedSize; 0 unknown
}

// size is the number of octets the append adds to the mbox.
func (j *appendJournal) size() int64 {
	if len(j.Msgs) == 0 {
		return int64(len(j.Sep))
	}
	return int64(len(j.Sep)) + j.Msgs[len(j.Msgs)-1].End
}

// marshal writes the journal as text lines; every field that could hold
// any byte is hex.
func (j *appendJournal) marshal() []byte {
	var b bytes.Buffer
	b.WriteString(journalMagic + "\n")
	fmt.Fprintf(&b, "mbox %s\n", hex.EncodeToString([]byte(j.Mbox)))
	fmt.Fprintf(&b, "file %d %d\n", j.Dev, j.Ino)
	fmt.Fprintf(&b, "start %d\n", j.Start)
	fmt.Fprintf(&b, "sep %s\n", hex.EncodeToString([]byte(j.Sep)))
	for _, m := range j.Msgs {
		id := hex.EncodeToString([]byte(m.ID))
		if id == "" {
			id = "-" // no ID: a field all the same
		}
		fmt.Fprintf(&b, "m %d %s %d\n", m.End, id, m.Listed)
	}
	b.WriteString("end\n")
	return b.Bytes()
}

// errJournal is a journal that cannot be read: never acted on.
var errJournal = errors.New("malformed mbox append journal")

// parseJournal reads a journal written by marshal. A journal cut short (no
// "end" line) or malformed is an error: it was not durable when the
// append began, so no append followed it.
func parseJournal(data []byte) (*appendJournal, error) {
	j := &appendJournal{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	bad := func(what string) (*appendJournal, error) {
		return nil, fmt.Errorf("%w: %s", errJournal, what)
	}
	if !sc.Scan() || sc.Text() != journalMagic {
		return bad("no header")
	}
	var last int64
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			return bad("empty line")
		}
		var err error
		switch {
		case f[0] == "mbox" && len(f) == 2:
			var p []byte
			p, err = hex.DecodeString(f[1])
			j.Mbox = string(p)
		case f[0] == "file" && len(f) == 3:
			j.Dev, err = strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				j.Ino, err = strconv.ParseUint(f[2], 10, 64)
			}
		case f[0] == "start" && len(f) == 2:
			j.Start, err = strconv.ParseInt(f[1], 10, 64)
		case f[0] == "sep" && len(f) <= 2:
			if len(f) == 2 {
				var s []byte
				s, err = hex.DecodeString(f[1])
				j.Sep = string(s)
			}
		case f[0] == "m" && len(f) >= 2 && len(f) <= 4:
			var m spooledMessage
			m.End, err = strconv.ParseInt(f[1], 10, 64)
			if err == nil && len(f) >= 3 && f[2] != "-" {
				var id []byte
				id, err = hex.DecodeString(f[2])
				m.ID = string(id)
			}
			if err == nil && len(f) == 4 {
				m.Listed, err = strconv.ParseInt(f[3], 10, 64)
			}
			if err == nil && m.End <= last {
				err = errors.New("message ends out of order")
			}
			last = m.End
			j.Msgs = append(j.Msgs, m)
		case f[0] == "end" && len(f) == 1:
			if j.Mbox == "" || j.Start < 0 {
				return bad("incomplete")
			}
			return j, nil
		default:
			return bad(fmt.Sprintf("unknown line %q", f[0]))
		}
		if err != nil {
			return bad(err.Error())
		}
	}
	return bad("cut short")
}

// recovery is what recover found of an interrupted append.
type recovery struct {
	// Whole are the IDs of the messages that are in the mbox whole.
	Whole []string
	// TruncateTo is the size to cut the mbox back to, -1 for none: the
	// mbox ends with a cut-off part of the append.
	TruncateTo int64
	// Foreign is true when the mbox, after the part of the append that is
	// there, holds something else: it is left as it is.
	Foreign bool
}

// recoverAppend compares the mbox (of size size) from the journal's start
// with the separator and the spool, and decides. It reads at most the
// append's size from each.
func recoverAppend(j *appendJournal, mbox io.ReaderAt, size int64, spool io.ReaderAt) (recovery, error) {
	rec := recovery{TruncateTo: -1}
	total := j.size()
	if size < j.Start {
		// The mbox is shorter than when the append began: rewritten by a
		// mail reader (messages deleted). Nothing here is known.
		rec.Foreign = true
		return rec, nil
	}
	want := io.MultiReader(strings.NewReader(j.Sep), io.NewSectionReader(spool, 0, total-int64(len(j.Sep))))
	have := io.NewSectionReader(mbox, j.Start, min(size-j.Start, total))
	match, err := commonPrefix(have, want)
	if err != nil {
		return rec, err
	}
	// The messages that made it whole.
	end := j.Start // where the last whole message ends
	for _, m := range j.Msgs {
		e := j.Start + int64(len(j.Sep)) + m.End
		if e > j.Start+match {
			break
		}
		rec.Whole = append(rec.Whole, m.ID)
		end = e
	}
	switch {
	case match == total:
		// the whole append is there; anything after it is another's
	case j.Start+match == size:
		// the mbox ends inside the append: a cut-off tail of ours
		if end < size {
			rec.TruncateTo = end
		}
	default:
		// it differs from the append before its end: something else was
		// written there, or after a cut-off part of ours
		rec.Foreign = true
	}
	return rec, nil
}

// commonPrefix returns how many octets a and b have in common from their
// start.
func commonPrefix(a, b io.Reader) (int64, error) {
	var n int64
	ba, bb := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, erra := io.ReadFull(a, ba)
		if erra != nil && erra != io.EOF && erra != io.ErrUnexpectedEOF {
			return n, erra
		}
		nb, errb := io.ReadFull(b, bb[:na])
		if errb != nil && errb != io.EOF && errb != io.ErrUnexpectedEOF {
			return n, errb
		}
		k := min(na, nb)
		for i := 0; i < k; i++ {
			if ba[i] != bb[i] {
				return n + int64(i), nil
			}
		}
		n += int64(k)
		if k < len(ba) {
			return n, nil
		}
	}
}

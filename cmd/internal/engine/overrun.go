package engine

import (
	"fmt"
	"io"

	"github.com/popfetch/popfetch/pop3"
)

// overrunSlack is what a message may run past twice its LIST size.
const overrunSlack = 16 << 20

// overrunLimit is how many octets a message listed at size may run to
// before the session is given up. LIST sizes are often only approximate
// (RFC 1939 §5 lists each message's size in octets, counted as §11 says;
// servers that convert messages on the fly miss it), and CONTRACT §5
// delivers such messages as received.
// But a server whose message never ends must not fill the disk: twice the
// listed size plus 16 MiB lets every real mismatch through, and bounds the
// rest. The bound counts octets as LIST does (see pop3.MessageReader.Octets).
func overrunLimit(size int64) int64 { return 2*size + overrunSlack }

// boundedBody reads a message within overrunLimit of its LIST size. Past
// it, the connection is dropped: the rest of the message cannot be skipped,
// for it may never end; so no QUIT follows and nothing is deleted.
type boundedBody struct {
	body  *pop3.MessageReader
	c     *pop3.Client
	m     message
	limit int64
	err   error
}

func newBoundedBody(c *pop3.Client, m message, body *pop3.MessageReader) *boundedBody {
	return &boundedBody{body: body, c: c, m: m, limit: overrunLimit(m.size)}
}

// Read implements io.Reader.
func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if got := b.body.Octets(); got > b.limit {
		b.c.Close()
		b.err = &pop3.ProtocolError{Command: "RETR", Msg: fmt.Sprintf(
			"message %d (uid %q) runs past %d octets, and LIST gave its size as %d: "+
				"given up at twice that plus %d MiB", b.m.num, b.m.uid, got, b.m.size, overrunSlack>>20)}
		return 0, b.err
	}
	return n, err
}

// Close reads and discards the rest of the message, within the bound, so
// that the session can go on.
func (b *boundedBody) Close() error {
	if _, err := io.Copy(io.Discard, b); err != nil {
		return err
	}
	return b.body.Close()
}

// Octets returns the size of the message read so far, as LIST counts it.
func (b *boundedBody) Octets() int64 { return b.body.Octets() }

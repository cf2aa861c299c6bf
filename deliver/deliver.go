// Package deliver writes messages to their destination: a Maildir, an mbox
// file, a mail delivery agent (MDA) reading the message on its stdin, or a
// server taking it over LMTP (RFC 2033) or SMTP (RFC 5321).
//
// A Target takes the bytes of a message and an Envelope; it never parses or
// re-encodes a message, and changes no byte but those its format demands
// (mboxrd quoting). Delivery is in two steps, so that the cost of making
// messages durable can be shared by several: Deliver writes one message,
// Commit makes every message delivered since the last Commit durable. Only
// once Commit has returned nil may the caller consider those messages
// delivered (and, say, delete them from a server). A message whose reader
// fails midway is aborted: nothing of it is kept.
package deliver

import (
	"errors"
	"fmt"
	"io"
)

// Envelope is what a target needs to know of a message besides its bytes.
type Envelope struct {
	// Sender is the envelope sender, from the message's Return-Path; ""
	// when unknown (an mbox then says MAILER-DAEMON).
	Sender string
	// Recipient is the local recipient: the account's user name.
	Recipient string
	// ID names the message for a target that journals its writes (an
	// mbox with MboxOptions.Journal): the UID, so that a crash recovery
	// can say which messages it found whole. "" when there is none.
	ID string
	// ListedSize is the size the server listed for the message (LIST),
	// journaled with ID: a server may give the UID of a message it
	// deleted to a new one, which only the size tells apart. 0: unknown.
	ListedSize int64
}

// Target is a destination for messages. A Target is used by one goroutine.
type Target interface {
	// Deliver writes one message read from r to its end. On error nothing of
	// the message is kept, and the error is an *Error; if reading r failed,
	// the *Error wraps r's error and its Source field is true.
	Deliver(env Envelope, r io.Reader) error
	// Commit makes the messages delivered since the last Commit durable. If
	// it fails, none of them may be taken as delivered.
	Commit() error
	// Close releases the target. Messages delivered but not committed are
	// discarded where the format allows it.
	Close() error
}

// Error is a failed delivery.
type Error struct {
	Target string // "maildir", "mbox", "mda", "lmtp" or "smtp"
	Op     string // what failed, e.g. "writing /home/a/Mail/new/x"
	Err    error
	// Source is true when reading the message failed, not writing it.
	Source bool
	// Temporary is true when the destination asked to try again later
	// (an MDA exit status of 75, EX_TEMPFAIL; a 4xx answer of an LMTP or
	// SMTP server), or could not be reached.
	Temporary bool
	// MessageOnly is true when only this message was refused (an MDA that
	// failed, a server that refused it) and later messages may well be
	// delivered.
	MessageOnly bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s delivery: %s: %v", e.Target, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// sourceError marks an error of the message reader, so that a copy loop can
// tell it from a write error.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// copyMessage copies r to w with buf, and nothing else: no ReadFrom or
// WriteTo that would allocate a buffer of their own. A read error is
// returned as a sourceError.
func copyMessage(w io.Writer, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		nr, rerr := r.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, sourceError{rerr}
		}
	}
}

// wrap turns an error of a copy into an *Error.
func wrap(target, op string, err error) *Error {
	var se sourceError
	if errors.As(err, &se) {
		return &Error{Target: target, Op: "reading the message", Err: se.err, Source: true}
	}
	return &Error{Target: target, Op: op, Err: err}
}

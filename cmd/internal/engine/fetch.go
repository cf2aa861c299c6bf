package engine

import (
	"errors"
	"fmt"
	"io"

	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/pop3"
)

// Retrieval is pipelined ahead of delivery: at most this many RETRs, and
// about this many bytes, are asked for beyond the message being delivered.
// Enough to cover a long round trip; bounded so that memory stays flat.
const (
	aheadMessages = 1000
	aheadBytes    = 8 << 20
)

// fetcher retrieves and delivers the messages of one session.
type fetcher struct {
	r        *run
	c        *pop3.Client
	l        *ledger
	target   deliver.Target
	kind     *targetKind
	env      deliver.Envelope
	recv     receivedHeader
	envelope envelopeReader
}

// fetch retrieves and delivers msgs, committing in batches as the
// ledger's limits say. It returns at the first error that must stop the
// run; a failure of one message alone is reported and the run goes on.
// After a stop, it returns once the message in hand is delivered.
//
// With oneByOne, each RETR waits for the message before it: after a
// session broke, so that if this one breaks too, it is at the message
// that breaks it. Pipelined, a server that drops the connection when it
// reads the RETR of a poison message drops the responses still in flight
// with it (a reset discards what the client has not read), and the
// message in hand would be blamed instead.
func (r *run) fetch(s *session, l *ledger, target deliver.Target, kind *targetKind, msgs []message, oneByOne bool) error {
	if r.opts.Progress != nil {
		var total int64
		for _, m := range msgs {
			total += m.size
		}
		r.opts.Progress.Begin(len(msgs), total)
	}
	f := &fetcher{r: r, c: s.c, l: l, target: target, kind: kind,
		env: deliver.Envelope{Recipient: r.acct.User}, recv: newReceivedHeader(r.acct, s.c, r.opts.Version)}
	retrs := make([]pop3.RetrCommand, len(msgs))
	issued, ahead := 0, int64(0)
	window := aheadMessages
	if oneByOne {
		window = 1
	}
	for i, m := range msgs {
		for issued < len(msgs) && (issued == i || issued-i < window && ahead < aheadBytes) {
			l.retrieving(msgs[issued])
			retrs[issued] = f.c.Retr(msgs[issued].num)
			ahead += msgs[issued].size
			issued++
		}
		ahead -= m.size
		refused, err := f.one(m, retrs[i])
		retrs[i] = pop3.RetrCommand{}
		if err != nil {
			return err
		}
		if refused && issued > i+1 && f.c.Pipelining() {
			if err := f.resync(msgs[i+1:issued], retrs[i+1:issued]); err != nil {
				return err
			}
			// ask again for what was dropped
			issued, ahead = i+1, 0
		}
		if l.due() {
			if err := l.commit(); err != nil {
				return err
			}
		}
		if err := l.reap(false); err != nil {
			return err
		}
		if r.stopping() {
			break
		}
	}
	return nil
}

// one retrieves and delivers one message. It reports whether the server
// refused to send it. An error stops the run; a failure of this message
// alone is recorded and nil returned.
func (f *fetcher) one(m message, retr pop3.RetrCommand) (refused bool, err error) {
	r := f.r
	r.inHand = &m
	msg, err := retr.Body()
	if err != nil {
		if isRefusal(err) {
			f.l.refused(m)
			r.inHand = nil
			r.messageFailed(m, err)
			return true, nil
		}
		return false, fmt.Errorf("retrieving message %d (uid %q): %w", m.num, m.uid, err)
	}
	// Every read of the message, and the draining of what is left after
	// a failure, stays within overrunLimit of its LIST size.
	body := newBoundedBody(f.c, m, msg)
	defer body.Close()
	src, env := f.prepare(m, body)
	if err := f.target.Deliver(env, src); err != nil {
		var de *deliver.Error
		if errors.As(err, &de) && de.Source {
			return false, fmt.Errorf("retrieving message %d (uid %q): %w", m.num, m.uid, de.Err)
		}
		if errors.As(err, &de) && de.MessageOnly {
			if cerr := body.Close(); cerr != nil {
				return false, cerr
			}
			r.inHand = nil
			// Retrieved and not delivered: the ledger keeps it
			// unsettled, so the session ends without QUIT.
			r.messageFailed(m, err)
			return false, nil
		}
		r.inHand = nil
		return false, fmt.Errorf("delivering message %d (uid %q): %w", m.num, m.uid, err)
	}
	r.inHand = nil
	if got := body.Octets(); got != m.size {
		r.log.Info("message size differs from the server's LIST size; delivered as received",
			"uid", m.uid, "listed", m.size, "received", got)
	}
	f.l.delivered(m, body.Octets())
	if r.opts.Progress != nil {
		r.opts.Progress.Delivered(m.size)
	}
	return false, nil
}

// resync follows a refused RETR while more RETRs are in flight. A -ERR
// is one line with no body (RFC 1939 §3), so a -ERR that the server sent
// unasked looks just like a refusal, and then each message in flight is
// the answer to the RETR before its own: delivering it would record it
// under the next message's UID, which a later run deletes unseen. So the
// messages in flight are read and dropped, undelivered, and a NOOP goes
// out: once every command sent has its answer, the pop3 client fails if
// more has come (an out-of-step session leaves a whole message over).
// If the NOOP comes back clean, the session is in step and the dropped
// messages are asked for again: a refusal costs a round trip and at most
// what was in flight (aheadBytes). Lock-step, the client checks after
// every answer, and this is not needed.
func (f *fetcher) resync(msgs []message, inflight []pop3.RetrCommand) error {
	for i, rc := range inflight {
		inflight[i] = pop3.RetrCommand{}
		msg, err := rc.Body()
		if isRefusal(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("retrieving message %d (uid %q) after the refusal of another: %w", msgs[i].num, msgs[i].uid, err)
		}
		if err := newBoundedBody(f.c, msgs[i], msg).Close(); err != nil {
			return fmt.Errorf("retrieving message %d (uid %q) after the refusal of another: %w", msgs[i].num, msgs[i].uid, err)
		}
	}
	if err := f.c.Noop().Wait(); err != nil {
		return fmt.Errorf("checking that the session is in step after a refused RETR: %w", err)
	}
	return nil
}

// prepare returns the reader of the message to deliver, with the Received
// header in front, and its envelope. Only targets that need the envelope
// sender look for it.
func (f *fetcher) prepare(m message, body io.Reader) (io.Reader, deliver.Envelope) {
	env := f.env
	env.ID, env.ListedSize = m.uid, m.size
	var src io.Reader = body
	if f.kind.needsSender {
		env.Sender, src = f.envelope.open(body)
	}
	if f.r.acct.ReceivedHeader {
		return io.MultiReader(f.recv.reader(f.r.now()), src), env
	}
	return src, env
}

package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/popfetch/popfetch/pop3"
)

// NewMessage is a message that a fetch would retrieve now.
type NewMessage struct {
	Number int    // message number, valid in the session that listed it only
	UID    string // as the server sent it (opaque bytes)
	Size   int64  // octets, as LIST says
}

// CheckResult is what Check found.
type CheckResult struct {
	Listed   int          // messages on the server
	New      []NewMessage // what a fetch would retrieve, in server order
	NewBytes int64        // their size, as LIST says
	// Skipped counts new messages larger than max_size: a fetch would
	// leave them on the server (and report them once).
	Skipped int
}

// HeaderFunc is given the header of a new message, as TOP n 0 returns it
// (RFC 1939 §7): the header lines with LF endings, then the empty line.
// header is nil when the server refused TOP for that message. It must not
// keep header after it returns; it need not read it to its end. An error
// ends the check with that error.
type HeaderFunc func(m NewMessage, header io.Reader) error

// Check tells what Run would retrieve now, with the same settings, without
// retrieving, delivering, deleting or recording anything: it takes the
// account's lock (so it never runs beside a fetch of the same mailbox, and
// fails with ErrLocked when one is running), connects, logs in, lists, and
// decides what is new exactly as Run does. The UID cache is read and
// never written; no DELE, RETR or other changing command is sent. With
// header set, the header of each new message is asked for with TOP n 0,
// pipelined when the server allows, and handed to header in server order.
//
// Errors are those of Run: ErrLocked, *StateError, *ConfigError,
// *AuthError, *CacheMismatchError (the tripwire, unless
// Options.AcceptAllAsNew), *pop3.Error, *pop3.ProtocolError, and network
// errors. Options.Progress, Stop and Version are not used.
func Check(ctx context.Context, opts Options, header HeaderFunc) (CheckResult, error) {
	r := newRun(opts)
	r.readOnly = true
	var res CheckResult
	release, err := r.openMailbox()
	if err != nil {
		return res, err
	}
	defer release()
	s, err := r.openSession(ctx)
	if err != nil {
		return res, err
	}
	defer s.close()
	res.Listed = s.list.Len()

	// The plan is Run's own decision, so "new" means what a fetch would
	// retrieve. Check only reads it: the cache is not changed, and the
	// warnings are a fetch's to give, once, when it records them.
	p, err := makePlan(r.acct, r.cache, s.list, r.noUIDL, r.opts.AcceptAllAsNew, r.now())
	if err != nil {
		return res, err
	}
	res.Skipped = len(p.tooLarge)
	for _, m := range p.fetch {
		res.New = append(res.New, NewMessage{Number: m.num, UID: m.uid, Size: m.size})
		res.NewBytes += m.size
	}
	if header != nil && len(res.New) > 0 {
		// CONTRACT §5: TOP may count as retrieval (GNU mailutils with
		// expire 0 removes what TOP showed, at QUIT), so a session that
		// sent TOP ends by hanging up, which commits nothing.
		if err := r.headers(s.c, res.New, header); err != nil {
			return res, err
		}
		if err := s.c.Hangup(hangupWait); err != nil {
			r.log.Info("the server did not end the session at once after the hang-up", "error", err)
		}
		return res, nil
	}
	// RFC 1939 §6: nothing was marked deleted, so QUIT commits nothing. The
	// answer is known already: a QUIT that fails changes nothing of it.
	if err := s.c.Quit(); err != nil {
		r.log.Info("the session ended before the server confirmed QUIT; nothing was changed on the server", "error", err)
	}
	return res, nil
}

// headers asks for the header of each message with TOP n 0, at most
// aheadMessages ahead of the one being read, and hands each to fn.
func (r *run) headers(c *pop3.Client, msgs []NewMessage, fn HeaderFunc) error {
	tops := make([]pop3.RetrCommand, len(msgs))
	issued := 0
	for i, m := range msgs {
		for issued < len(msgs) && issued-i < aheadMessages {
			tops[issued] = c.Top(msgs[issued].Number, 0)
			issued++
		}
		body, err := tops[i].Body()
		tops[i] = pop3.RetrCommand{}
		if err != nil {
			if !isRefusal(err) {
				return fmt.Errorf("reading the header of message %d (uid %q): %w", m.Number, m.UID, err)
			}
			// RFC 1939 §7: TOP is optional; the count stands without it.
			if err := fn(m, nil); err != nil {
				return err
			}
			continue
		}
		// A header is not a message: a server that sends more than
		// maxTopOctets for TOP n 0 is cut off there, and the session
		// dropped, rather than read for as long as it sends.
		lr := &io.LimitedReader{R: body, N: maxTopOctets + 1}
		err = fn(m, lr)
		var rerr error
		if err == nil {
			_, rerr = io.Copy(io.Discard, lr)
		}
		if lr.N == 0 {
			c.Close()
			return &pop3.ProtocolError{Command: "TOP", Msg: fmt.Sprintf("the header of message %d (uid %q) "+
				"is longer than %d octets: the session was dropped", m.Number, m.UID, maxTopOctets)}
		}
		if cerr := body.Close(); rerr == nil {
			rerr = cerr
		}
		if err != nil {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("reading the header of message %d (uid %q): %w", m.Number, m.UID, rerr)
		}
	}
	return nil
}

// maxTopOctets bounds the header of a message read with TOP n 0: far more
// than any real header (MTAs refuse headers of a few hundred KiB), and
// little enough to read.
const maxTopOctets = 1 << 20

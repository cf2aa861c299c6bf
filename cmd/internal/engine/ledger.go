package engine

import (
	"errors"
	"time"

	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/uidcache"
)

// ledger is the commit protocol of one fetch session (CONTRACT §5), in
// one place. Every message the session retrieves goes through these
// steps, in this order:
//
//	retrieved  RETR was sent: from then on the server may count the
//	           message as retrieved (EXPIRE 0, mailutils, Gmail)
//	delivered  the target took it (deliver.Target.Deliver returned nil)
//	durable    the target made it durable (deliver.Target.Commit)
//	recorded   a saved cache names it (Retrieved, or Deleted in delete mode)
//	marked     DELE was sent (delete mode)
//	deleted    QUIT was answered +OK: the cache forgets it
//
// The invariants, kept here and nowhere else:
//   - a message is put in the cache only once durable, and marked for
//     deletion only once the cache that names it is saved (or, for a server
//     without UIDL, where nothing can be recorded, once durable);
//   - the session may end with QUIT only when every message it retrieved is
//     recorded (mayQuit): otherwise it hangs up, and RFC 1939 §6 says a
//     session that ends without QUIT changes nothing on the server, so a
//     server for which retrieval is a commitment keeps what was not
//     delivered. What was delivered is in the cache as Deleted, and a later
//     run deletes it unseen.
//
// A ledger is used by the goroutine of the run; the cache saves it starts
// run beside the next deliveries (see startSave) and hand their outcome
// back through a channel.
type ledger struct {
	cache  *uidcache.Cache
	c      *pop3.Client
	target deliver.Target
	limits batchLimits
	keep   bool // record as Retrieved and send no DELE
	noUIDL bool // nothing can be recorded: DELE once durable
	now    func() time.Time
	res    *Result

	// unsettled holds the numbers of the messages retrieved (RETR sent,
	// not refused) and not yet recorded. QUIT waits for it to be empty.
	unsettled map[int]bool

	batch      []delivered // delivered, not yet durable
	batchAt    time.Time   // when the batch's first message was delivered
	batchBytes int64

	unsaved []delivered // recorded in the cache in memory, not yet saved
	saving  []delivered // what the save in flight records
	saved   chan error  // the save in flight's outcome; nil when none

	dele []pendingDele // DELEs sent, answers not yet read
}

type delivered struct {
	msg   message
	bytes int64
}

type pendingDele struct {
	cmd *pop3.Command
	uid string
}

func newLedger(r *run, c *pop3.Client, target deliver.Target, limits batchLimits) *ledger {
	return &ledger{
		cache: r.cache, c: c, target: target, limits: limits,
		keep: r.acct.Keep, noUIDL: r.noUIDL, now: r.now, res: &r.res,
		unsettled: make(map[int]bool),
	}
}

// retrieving notes that RETR was sent for m.
func (l *ledger) retrieving(m message) { l.unsettled[m.num] = true }

// refused notes that the server refused to send m (-ERR to RETR): it was
// not retrieved.
func (l *ledger) refused(m message) { delete(l.unsettled, m.num) }

// delivered notes that the target took m, n octets of it.
func (l *ledger) delivered(m message, n int64) {
	if bugDeleBeforeDurable && !l.keep {
		l.dele = append(l.dele, pendingDele{cmd: l.c.Dele(m.num), uid: m.uid})
		delete(l.unsettled, m.num)
	}
	if len(l.batch) == 0 {
		l.batchAt = l.now()
	}
	l.batch = append(l.batch, delivered{msg: m, bytes: n})
	l.batchBytes += n
}

// due reports whether the batch should be made durable now.
func (l *ledger) due() bool {
	n := len(l.batch)
	return n > 0 && (n >= l.limits.messages || l.batchBytes >= l.limits.bytes || l.now().Sub(l.batchAt) >= l.limits.age)
}

// commit makes the batch durable and records it in the cache, whose save
// then starts (CONTRACT §5: durable delivery → cache record → DELE).
func (l *ledger) commit() error {
	if len(l.batch) == 0 {
		return nil
	}
	batch := append([]delivered(nil), l.batch...)
	l.batch, l.batchBytes = l.batch[:0], 0
	if err := l.target.Commit(); err != nil {
		return err
	}
	for _, d := range batch {
		l.res.Fetched++
		l.res.Bytes += d.bytes
	}
	if l.noUIDL {
		// nothing to record a message by: mark it now it is durable
		l.settle(batch)
		return nil
	}
	state := uidcache.Deleted
	if l.keep {
		state = uidcache.Retrieved
	}
	now := l.now()
	for _, d := range batch {
		seen := now
		if e, ok := l.cache.Get(d.msg.uid); ok && e.State != uidcache.Broken {
			seen = e.Seen
		}
		l.cache.Put(d.msg.uid, uidcache.Entry{Seen: seen, State: state, Size: d.msg.size})
	}
	l.unsaved = append(l.unsaved, batch...)
	if l.saved != nil && len(l.unsaved) >= l.limits.messages {
		// A batch already waits for the save in flight: wait for that
		// one, so no more than a batch or two is ever unrecorded.
		if err := l.saveEnded(<-l.saved); err != nil {
			return err
		}
	}
	l.startSave()
	return nil
}

// startSave saves the cache in the background, unless a save is in
// flight already: the next one starts when it ends. Saving beside the
// next deliveries rather than before them keeps the window in which a
// crash leaves a delivered message unrecorded (and so fetched twice) to a
// message or so, at no cost in speed.
func (l *ledger) startSave() {
	if l.saved != nil || len(l.unsaved) == 0 {
		return
	}
	snap := l.cache.Snapshot()
	l.saving, l.unsaved = l.unsaved, nil
	done := make(chan error, 1)
	l.saved = done
	go func() { done <- snap.Write() }()
}

// reap takes the outcome of the save in flight, if it has ended, and
// settles what it recorded. With wait, it waits, and goes on until
// everything recorded is saved.
func (l *ledger) reap(wait bool) error {
	for l.saved != nil {
		if !wait {
			select {
			case err := <-l.saved:
				return l.saveEnded(err)
			default:
				return nil
			}
		}
		if err := l.saveEnded(<-l.saved); err != nil {
			return err
		}
	}
	return nil
}

// saveEnded handles the outcome of the save in flight and starts the
// next, if anything waits to be saved.
func (l *ledger) saveEnded(err error) error {
	l.saved = nil
	if err != nil {
		// Delivered but not recorded: they stay unsettled, so the
		// session hangs up and the server keeps them; the next run
		// delivers them again (a duplicate, never a loss).
		l.cache.MarkDirty()
		l.saving = nil
		return &StateError{err}
	}
	l.settle(l.saving)
	l.saving = nil
	l.startSave()
	return nil
}

// settle marks recorded messages settled, and for deletion in delete
// mode.
func (l *ledger) settle(batch []delivered) {
	for _, d := range batch {
		delete(l.unsettled, d.msg.num)
		if !l.keep && !bugDeleBeforeDurable {
			uid := d.msg.uid
			if l.noUIDL {
				uid = noUIDLKey(d.msg) // forgets that a message of its size broke a session
			}
			l.dele = append(l.dele, pendingDele{cmd: l.c.Dele(d.msg.num), uid: uid})
		}
	}
}

// flush commits the batch and waits until everything is recorded.
func (l *ledger) flush() error {
	if err := l.commit(); err != nil {
		return errors.Join(err, l.reap(true))
	}
	return l.reap(true)
}

// mayQuit reports whether the session may end with QUIT: every message it
// retrieved is recorded.
func (l *ledger) mayQuit() bool {
	return bugQuitAfterUndelivered || len(l.unsettled) == 0 && len(l.batch) == 0 && l.saved == nil
}

// deleteUnseen marks for deletion messages recorded by an earlier run
// (delivered in a session whose QUIT never completed, or old enough for
// delete_after): they are not retrieved.
func (l *ledger) deleteUnseen(msgs []message) {
	for _, m := range msgs {
		l.dele = append(l.dele, pendingDele{cmd: l.c.Dele(m.num), uid: m.uid})
	}
}

// quitted reads the answers to the DELEs after a successful QUIT: the
// messages deleted are forgotten; one the server refused to delete stays
// recorded, and the next run tries again.
func (l *ledger) quitted(warn func(uid string, err error)) {
	for _, d := range l.dele {
		if err := d.cmd.Wait(); err != nil {
			// RFC 1939 §6: QUIT removes the messages that were marked;
			// this one was not.
			warn(d.uid, err)
			continue
		}
		l.res.Deleted++
		l.cache.Delete(d.uid)
	}
	l.dele = nil
}

package engine

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/uidcache"
)

// The end of the data path: a fetch session retrieves, delivers and
// records through the ledger, then ends as the ledger allows — with QUIT,
// or by hanging up (CONTRACT §5).

// deleteAndQuit sends DELE for messages recorded before, and QUIT: a
// session that retrieves nothing.
func (r *run) deleteAndQuit(s *session, dele []message) error {
	l := newLedger(r, s.c, nil, batchLimits{})
	l.deleteUnseen(dele)
	return r.quit(s, l)
}

// fetchSession retrieves and delivers the plan's messages, and ends the
// session as the ledger allows.
func (r *run) fetchSession(s *session, p plan) error {
	kind := kindOf(r.acct.Deliver)
	if kind == nil {
		return &ConfigError{Msg: "no delivery target is configured"}
	}
	// CONTRACT §5: the cache must be writable before the first delivery,
	// or a state dir that is full or read-only would make every run
	// deliver the same messages again.
	if err := r.proveWritable(len(p.fetch)); err != nil {
		return err
	}
	var trace *slog.Logger
	if r.opts.Trace {
		trace = r.log
	}
	target, err := kind.open(targetEnv{acct: r.acct, trace: trace, fs: r.opts.FS})
	if err != nil {
		return err
	}
	defer target.Close()
	l := newLedger(r, s.c, target, kind.limits)
	l.deleteUnseen(p.dele)
	fetchErr := r.fetch(s, l, target, kind, p.fetch, p.oneByOne)
	// What was delivered is made durable and recorded, whatever ended
	// the fetch.
	flushErr := l.flush()
	err = r.endSession(s, l, fetchErr, flushErr)
	if kind == &mboxKind && !r.cache.Dirty() {
		// every append is recorded: its journal is needed no more
		if ferr := deliver.TidyMboxJournal(targetEnv{acct: r.acct, fs: r.opts.FS}.mboxOptions()); ferr != nil {
			err = errors.Join(err, &StateError{ferr})
		}
	}
	return err
}

// endSession ends a fetch session: QUIT when the ledger allows it, else
// a hang-up; either way the cache is saved.
func (r *run) endSession(s *session, l *ledger, fetchErr, flushErr error) error {
	if r.cut.Load() && s.c.Err() != nil {
		// The stop's grace ran out and the session was dropped: the
		// message in hand was aborted and stays on the server.
		r.log.Info("stopped: the session was cut; what was not delivered stays on the server")
		fetchErr = nil
	} else if fetchErr != nil && s.c.Err() != nil && r.inHand != nil {
		r.noteBreak(*r.inHand)
	}
	if s.c.Err() != nil || !l.mayQuit() {
		if s.c.Err() == nil {
			// RFC 1939 §6: without QUIT the server removes nothing, and
			// forgets what was retrieved (CONTRACT §5).
			s.c.Hangup(hangupWait)
			r.res.HungUp = true
			r.log.Info("ended the session without QUIT: a message retrieved was not delivered; " +
				"the server keeps everything, and what was delivered is deleted next run")
		}
		return errors.Join(fetchErr, flushErr, r.saveCache())
	}
	return errors.Join(fetchErr, flushErr, r.quit(s, l))
}

// quit sends QUIT, which commits the deletions, and forgets the deleted
// messages. QUIT goes out right behind the DELEs, without waiting for
// their answers: they are read in order before QUIT's.
func (r *run) quit(s *session, l *ledger) error {
	if err := s.c.Quit(); err != nil {
		// The deletions may not have happened: the cache keeps them as
		// Deleted, and the next run deletes whatever is still there.
		if err := r.saveCache(); err != nil {
			return err
		}
		if r.cut.Load() {
			return nil
		}
		return fmt.Errorf("the session ended before the server confirmed QUIT; messages delivered are remembered and will be deleted next time: %w", err)
	}
	l.quitted(func(uid string, err error) {
		r.log.Warn("the server refused to delete a message; it stays on the server", "uid", uid, "error", err)
	})
	return r.saveCache()
}

// noteBreak records that retrieving m broke the session; after
// quarantineAfter runs in a row it is quarantined (CONTRACT §5).
func (r *run) noteBreak(m message) {
	key := m.uid
	if r.noUIDL {
		key = noUIDLKey(m)
	}
	e, _ := r.cache.Get(key)
	breaks := 1
	if e.State == uidcache.Broken {
		breaks = e.Breaks + 1
	}
	if breaks >= quarantineAfter {
		r.log.Warn("retrieving this message broke the session "+fmt.Sprint(breaks)+
			" runs in a row: it is left on the server from now on, and the others are fetched; "+
			"`popfetch cache forget ACCOUNT UID` tries it again", "uid", key, "number", m.num)
		r.cache.Put(key, uidcache.Entry{Seen: r.now(), State: uidcache.Quarantined})
		return
	}
	r.cache.Put(key, uidcache.Entry{Seen: r.now(), State: uidcache.Broken, Breaks: breaks, Size: m.size})
}

// messageFailed records a message that could not be delivered; it stays on
// the server, unrecorded, and the run goes on (CONTRACT §5).
func (r *run) messageFailed(m message, err error) {
	r.res.Failed++
	if r.noUIDL {
		r.log.Warn("message not delivered; it stays on the server", "number", m.num, "error", err)
	} else {
		r.log.Warn("message not delivered; it stays on the server", "uid", m.uid, "number", m.num, "error", err)
	}
	if r.failure == nil {
		r.failure = fmt.Errorf("message %d (uid %q) not delivered: %w", m.num, m.uid, err)
	}
}

// proveWritable saves the cache with room for n more entries before the
// first delivery of the run.
func (r *run) proveWritable(n int) error {
	if r.noUIDL {
		return nil
	}
	if err := r.cache.SaveReserving(n); err != nil {
		return &StateError{fmt.Errorf("the state directory %s cannot hold the UID cache, so nothing is delivered "+
			"(each message would be delivered again on every run): %w", r.acct.StateDir, err)}
	}
	return nil
}

func (r *run) saveCache() error {
	if !r.cache.Dirty() {
		return nil
	}
	if err := r.cache.Save(); err != nil {
		return &StateError{err}
	}
	return nil
}

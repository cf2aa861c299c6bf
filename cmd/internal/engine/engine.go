// Package engine runs one account's POP3 session in the order of CONTRACT
// §5, so that no message is ever lost: lock the mailbox, connect, log in,
// list, plan, retrieve, deliver, record, delete, and end the session.
//
// The data path reads top to bottom: Run opens the mailbox (mailbox.go),
// opens a session (session.go, listing.go), makes a plan (plan.go, a pure
// function), retrieves and delivers (fetch.go) under the commit protocol
// of the ledger (ledger.go), and ends the session with QUIT only when the
// ledger allows it (commit.go). The delivery target's traits are chosen
// once (target.go); a server without UIDL gets a session per batch
// (nouidl.go).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/uidcache"
)

// Options for one run of one account. The account's settings already hold
// any command-line overrides.
type Options struct {
	Account     *config.Account
	Credentials Credentials
	// Log receives the account's reports: warnings (shown even under cron),
	// info (-v) and the protocol trace at debug level (-vv). Nil: silent.
	Log *slog.Logger
	// Trace enables the protocol trace into Log.
	Trace bool
	// Progress, if set, is told what is retrieved.
	Progress Progress
	// AcceptAllAsNew disarms the cache tripwire.
	AcceptAllAsNew bool
	// Stop, when closed, ends the run gracefully within stopGrace and a
	// commit: the message in hand is finished if it can be, what was
	// delivered is committed, and the session ends with QUIT if the
	// ledger allows it, else by hanging up (CONTRACT §5).
	Stop <-chan struct{}
	// Version names popfetch in the Received header.
	Version string
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// FS is the file system of the state directory and of Maildir and mbox
	// targets; nil means the real one.
	FS vfs.FS
}

// Progress is told how a run goes.
type Progress interface {
	// Begin is called once the messages to retrieve are known.
	Begin(messages int, bytes int64)
	// Delivered is called after each message delivered.
	Delivered(bytes int64)
}

// Result says what a run did.
type Result struct {
	Listed  int   // messages on the server
	New     int   // messages selected for retrieval
	Fetched int   // messages delivered and committed
	Bytes   int64 // their size
	Deleted int   // messages deleted on the server (QUIT succeeded)
	Skipped int   // messages too large, left on the server (reported once)
	Failed  int   // messages whose delivery failed, left on the server
	// Quarantined counts messages left on the server because retrieving
	// them broke quarantineAfter sessions in a row (reported every run).
	Quarantined int
	// HungUp is true when the session ended without QUIT because a
	// message retrieved in it was not delivered: deletions wait for the
	// next run.
	HungUp bool
	// LoginDelay is the server's minimum time between logins (RFC 2449
	// §6.5 LOGIN-DELAY), 0 if it set none; a daemon waits at least this.
	LoginDelay time.Duration
}

// stopGrace is how long after a stop the message in hand may take before
// the session is cut: with the commit that follows, a stop ends within
// about two seconds whatever is pipelined (CONTRACT §5).
const stopGrace = 1500 * time.Millisecond

// hangupWait bounds how long a hang-up waits for the server to see the
// end of the session (pop3.Client.Hangup): long enough for a server that
// locks the mailbox to release it before the next run, short enough for a
// stop.
const hangupWait = 500 * time.Millisecond

// run is the state of one run of one account.
type run struct {
	opts  Options
	acct  *config.Account
	log   *slog.Logger
	now   func() time.Time
	creds *onceCredentials
	cache *uidcache.Cache
	// cacheLoaded delivers the outcome of reading the cache, then is
	// closed; cacheErr keeps it (see loadCache).
	cacheLoaded <-chan error
	cacheErr    error
	noUIDL      bool // the server refused UIDL: no message has a UID
	readOnly    bool // Check: the state directory is not written
	res         Result
	// failure is the first per-message failure, reported at the end.
	failure error
	// inHand is the message being retrieved, if the session breaks.
	inHand *message
	// cut is set when a stop outlasted stopGrace and the session was
	// dropped on purpose.
	cut atomic.Bool
}

// Run fetches one account.
func Run(ctx context.Context, opts Options) (Result, error) {
	r := newRun(opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer r.watchStop(cancel)()
	err := r.run(ctx)
	if err == nil {
		err = r.failure
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		// "i/o timeout" deep in the chain does not say whose: a server
		// that stalled, or trickled less than pop3.DefaultMinProgress
		// octets, for longer than the account's timeout
		timeout := r.acct.Timeout
		if timeout <= 0 {
			timeout = pop3.DefaultTimeout
		}
		err = fmt.Errorf("the server stalled for %v (the account's timeout): %w", timeout, err)
	}
	return r.res, err
}

func newRun(opts Options) *run {
	r := &run{opts: opts, acct: opts.Account, log: opts.Log, now: opts.Now,
		creds: &onceCredentials{creds: opts.Credentials}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// watchStop cuts the run's sessions (through ctx) when a stop was asked
// for and stopGrace has passed. The returned function ends the watch.
func (r *run) watchStop(cancel context.CancelFunc) func() {
	if r.opts.Stop == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-r.opts.Stop:
		}
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			r.cut.Store(true)
			cancel()
		}
	}()
	return func() { close(done) }
}

// stopping reports whether a graceful stop was asked for.
func (r *run) stopping() bool {
	select {
	case <-r.opts.Stop:
		return true
	default:
		return false
	}
}

func (r *run) run(ctx context.Context) error {
	release, err := r.openMailbox()
	if err != nil {
		return err
	}
	defer release()
	if err := r.tidyTarget(); err != nil {
		return err
	}
	s, err := r.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	p, err := r.plan(s.list)
	if err != nil {
		return err
	}
	if len(p.dele) > 0 && len(p.fetch) > 0 && !r.stopping() {
		// CONTRACT §5: deletions remembered from an earlier session are
		// committed first, in a session that retrieves nothing, so that
		// a message that keeps failing never keeps them on the server.
		if err := r.deleteAndQuit(s, p.dele); err != nil {
			return err
		}
		s.close()
		if s, err = r.openSession(ctx); err != nil {
			if loginDelayed(err) {
				// RFC 2449 §6.5: a login so soon after the last is
				// refused (Courier lists LOGIN-DELAY and does not
				// enforce it, so it is tried); the deletions are done,
				// the new mail waits for the next run.
				r.log.Info("deletions committed; the server refuses another login this soon (LOGIN-DELAY), "+
					"so new mail waits for the next run", "error", err)
				return nil
			}
			return err
		}
		defer s.close()
		if p, err = r.plan(s.list); err != nil {
			return err
		}
	}
	if len(p.fetch) == 0 || r.stopping() {
		return r.deleteAndQuit(s, p.dele)
	}
	if !r.noUIDL {
		return r.fetchSession(s, p)
	}
	return r.fetchWithoutUIDs(ctx, s, p)
}

// loginDelayed reports whether err is a login refused as too soon after
// the last (RFC 2449 §8.1.2, [LOGIN-DELAY]).
func loginDelayed(err error) bool {
	var pe *pop3.Error
	return errors.As(err, &pe) && pe.Code == pop3.CodeLoginDelay
}

// plan makes the run's plan and applies what it says of the cache, with
// its reports.
func (r *run) plan(msgs messages) (plan, error) {
	r.res.Listed = msgs.Len()
	p, err := makePlan(r.acct, r.cache, msgs, r.noUIDL, r.opts.AcceptAllAsNew, r.now())
	if err != nil {
		return p, err
	}
	r.res.New = len(p.fetch)
	for _, uid := range p.forget {
		r.cache.Delete(uid)
	}
	now := r.now()
	for _, m := range p.tooLarge {
		r.log.Warn("message larger than max_size left on the server",
			"uid", m.uid, "number", m.num, "size", m.size, "max_size", r.acct.MaxSize)
		if !r.noUIDL {
			r.cache.Put(m.uid, uidcache.Entry{Seen: now, State: uidcache.Skipped})
		}
	}
	r.res.Skipped = len(p.tooLarge)
	for _, m := range p.reused {
		r.log.Warn("the server lists a message under the UID of one retrieved before, with another size: "+
			"it is taken as a new message (RFC 1939 §7 forbids reusing a UID)", "uid", m.uid, "size", m.size)
	}
	r.res.Quarantined = len(p.quarantined)
	for _, m := range p.quarantined {
		uid := m.uid
		if r.noUIDL {
			uid = noUIDLKey(m)
		}
		r.log.Warn("message left on the server: retrieving it broke the session "+
			fmt.Sprint(quarantineAfter)+" runs in a row; `popfetch cache forget ACCOUNT UID` tries again",
			"uid", uid, "number", m.num, "size", m.size)
	}
	if len(p.shared) > 0 {
		n, example := 0, ""
		for uid, k := range p.shared {
			n += k
			if example == "" || uid < example {
				example = uid
			}
		}
		r.log.Warn("the server gives the same UID to several messages (RFC 1939 §7 wants each unique): "+
			"popfetch retrieves them all, but cannot tell them apart later; in keep mode a new message "+
			"under a UID already retrieved is not seen", "messages", n, "uids", len(p.shared), "example", example)
	}
	return p, nil
}

// Package engine runs one account's POP3 session in the order of CONTRACT
// §5, so that no message is ever lost: lock the mailbox, connect, log in,
// list, plan, retrieve, deliver, record, delete, and end the session.
//
// The data path reads top to bottom: Run opens the mailbox (mailbox.go),
// opens a session (session.go, listing.go), makes a plan (plan.go, a pure
// function), retrieves and delivers (fetch.go) under the commit protocol
// of the ledger (ledger.go), and ends the session with QUIT only when the
// ledger allows it. The delivery target's traits are chosen once
// (target.go).
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
		// that stopped sending for longer than the account's timeout
		timeout := r.acct.Timeout
		if timeout <= 0 {
			timeout = pop3.DefaultTimeout
		}
		err = fmt.Errorf("the server sent nothing for %v (the account's timeout): %w", timeout, err)
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

// fetchWithoutUIDs fetches from a server without UIDL, one batch per
// session: with no UID to remember a message by, what a session delivers
// is deleted only by its QUIT, so a session that breaks would have every
// message it delivered delivered again; a session per batch bounds that
// to one batch (CONTRACT §5).
func (r *run) fetchWithoutUIDs(ctx context.Context, s *session, p plan) error {
	kind := kindOf(r.acct.Deliver)
	if kind == nil {
		return r.fetchSession(s, p) // says what is wrong
	}
	batch := max(kind.limits.messages, 1)
	wanted, listed := r.res.New, r.res.Listed
	defer func() { r.res.New, r.res.Listed = wanted, listed }()
	for {
		more := len(p.fetch) > batch
		p.fetch = p.fetch[:min(len(p.fetch), batch)]
		if err := r.fetchSession(s, p); err != nil || !more || r.res.HungUp || r.stopping() {
			return err
		}
		s.close()
		var err error
		if s, err = r.openSession(ctx); err != nil {
			return err
		}
		defer s.close()
		if p, err = r.plan(s.list); err != nil {
			return err
		}
		if a := r.acct; a.MaxMessages > 0 {
			p.fetch = p.fetch[:min(len(p.fetch), max(a.MaxMessages-r.res.Fetched, 0))]
		}
		if len(p.fetch) == 0 {
			return r.deleteAndQuit(s, nil)
		}
	}
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
		r.log.Warn("message left on the server: retrieving it broke the session "+
			fmt.Sprint(quarantineAfter)+" runs in a row; `popfetch cache forget ACCOUNT UID` tries again",
			"uid", m.uid, "number", m.num, "size", m.size)
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
	target, err := kind.open(r.acct.Deliver, trace)
	if err != nil {
		return err
	}
	defer target.Close()
	l := newLedger(r, s.c, target, kind.limits)
	l.deleteUnseen(p.dele)
	fetchErr := r.fetch(s, l, target, kind, p.fetch, p.suspects > 0)
	// What was delivered is made durable and recorded, whatever ended
	// the fetch.
	flushErr := l.flush()
	return r.endSession(s, l, fetchErr, flushErr)
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
	if r.noUIDL {
		return
	}
	e, _ := r.cache.Get(m.uid)
	breaks := 1
	if e.State == uidcache.Broken {
		breaks = e.Breaks + 1
	}
	if breaks >= quarantineAfter {
		r.log.Warn("retrieving this message broke the session "+fmt.Sprint(breaks)+
			" runs in a row: it is left on the server from now on, and the others are fetched; "+
			"`popfetch cache forget ACCOUNT UID` tries it again", "uid", m.uid, "number", m.num)
		r.cache.Put(m.uid, uidcache.Entry{Seen: r.now(), State: uidcache.Quarantined})
		return
	}
	r.cache.Put(m.uid, uidcache.Entry{Seen: r.now(), State: uidcache.Broken, Breaks: breaks, Size: m.size})
}

// messageFailed records a message that could not be delivered; it stays on
// the server, unrecorded, and the run goes on (CONTRACT §5).
func (r *run) messageFailed(m message, err error) {
	r.res.Failed++
	r.log.Warn("message not delivered; it stays on the server", "uid", m.uid, "number", m.num, "error", err)
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
	if r.noUIDL || !r.cache.Dirty() {
		return nil
	}
	if err := r.cache.Save(); err != nil {
		return &StateError{err}
	}
	return nil
}

// onceCredentials asks for each secret once per run, though a run may
// log in twice.
type onceCredentials struct {
	creds           Credentials
	password, token *string
}

func (o *onceCredentials) Password(ctx context.Context) (string, error) {
	if o.password == nil {
		s, err := o.creds.Password(ctx)
		if err != nil {
			return "", err
		}
		o.password = &s
	}
	return *o.password, nil
}

func (o *onceCredentials) Token(ctx context.Context) (string, error) {
	if o.token == nil {
		s, err := o.creds.Token(ctx)
		if err != nil {
			return "", err
		}
		o.token = &s
	}
	return *o.token, nil
}

// Package engine runs one account's POP3 session: lock, connect, log in,
// list, retrieve, deliver, record, delete, quit, in the order of
// CONTRACT §5, so that no message is ever lost.
//
// The order for every message is: durable delivery (deliver.Target.Commit)
// → cache record (uidcache.Cache.Save) → DELE → QUIT. A message recorded as
// Deleted in the cache but still on the server belongs to a session whose
// QUIT never completed: it is deleted without being retrieved again.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/deliver"
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
	// Stop, when closed, ends the run gracefully: the message in hand is
	// finished and committed, then QUIT.
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
	// LoginDelay is the server's minimum time between logins (RFC 2449
	// §6.5 LOGIN-DELAY), 0 if it set none; a daemon waits at least this.
	LoginDelay time.Duration
}

// message is a message listed by the server.
type message struct {
	num  int
	uid  string
	size int64
}

// run is the state of one run.
type run struct {
	opts     Options
	acct     *config.Account
	log      *slog.Logger
	now      func() time.Time
	c        *pop3.Client
	cache    *uidcache.Cache
	target   deliver.Target
	env      deliver.Envelope
	recv     receivedHeader
	envelope envelopeReader
	res      Result
	batch    []delivered
	batchAt  time.Time
	batchN   int64
	dele     []pendingDele
	unsaved  []delivered // recorded in the cache, not yet saved
	saving   []delivered // what the save in flight records
	saved    chan error  // the save in flight's outcome; nil when none
	limits   batchLimits
	failure  error // the first per-message failure, reported at the end
	noUIDL   bool  // the server refused UIDL: no message has a UID
	refused  bool  // the last RETR was refused (see resync)
}

type delivered struct {
	msg   message
	bytes int64
}

type pendingDele struct {
	cmd *pop3.Command
	uid string
}

// Run fetches one account.
func Run(ctx context.Context, opts Options) (Result, error) {
	r := newRun(opts)
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
	r := &run{opts: opts, acct: opts.Account, log: opts.Log, now: opts.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

func (r *run) run(ctx context.Context) error {
	a := r.acct
	msgs, release, err := r.open(ctx)
	if err != nil {
		return err
	}
	defer release()
	c := r.c
	r.checkCaps(c.Caps())
	r.res.Listed = len(msgs)
	p, err := r.plan(msgs)
	if err != nil {
		return err
	}
	if len(p.fetch) > 0 {
		if r.target, err = openTarget(a); err != nil {
			return err
		}
		defer r.target.Close()
		r.env = deliver.Envelope{Recipient: a.User}
		r.recv = newReceivedHeader(a, c, r.opts.Version)
		r.limits = limitsFor(a)
	}
	for _, m := range p.dele {
		r.dele = append(r.dele, pendingDele{cmd: c.Dele(m.num), uid: m.uid})
	}
	fetchErr := r.fetch(p.fetch)
	if fetchErr != nil && c.Err() != nil {
		// The session is broken: nothing more can be said to the server,
		// and nothing it was told to delete will be: the cache remembers
		// what was delivered.
		return errors.Join(fetchErr, r.saveCache())
	}
	return errors.Join(fetchErr, r.quit())
}

// open takes the account's lock, reads the cache, connects, logs in and
// lists: everything Run and Check do before they decide what is new. The
// returned function drops the connection (without QUIT) and releases the
// lock; on error, open has released everything itself.
func (r *run) open(ctx context.Context) (msgs []message, closeSession func(), err error) {
	a := r.acct
	lock, err := lockAccount(a.StateDir, a.Key())
	if err != nil {
		return nil, nil, err
	}
	var stopClosing func() bool
	release := func() {
		if stopClosing != nil {
			stopClosing()
		}
		if r.c != nil {
			r.c.Close()
		}
		lock.Close()
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if r.cache, err = uidcache.Open(a.StateDir, a.Key()); err != nil {
		return nil, nil, &StateError{err}
	}
	tc, err := tlsConfig(a)
	if err != nil {
		return nil, nil, err
	}
	popts := &pop3.Options{TLSConfig: tc, Timeout: a.Timeout}
	if r.opts.Trace {
		popts.Logger = r.log
	}
	c, err := connect(ctx, a, popts)
	if err != nil {
		return nil, nil, err
	}
	r.c = c
	stopClosing = context.AfterFunc(ctx, func() { c.Close() })
	if err := login(ctx, c, a, r.opts.Credentials); err != nil {
		return nil, nil, err
	}
	// RFC 2449 §4: capabilities may change after login.
	capa, uidl, list := c.Capa(), c.UIDL(), c.List()
	if _, err := capa.Wait(); err != nil && !isRefusal(err) {
		return nil, nil, err
	}
	uids, uerr := uidl.Wait()
	sizes, lerr := list.Wait()
	if lerr != nil {
		return nil, nil, lerr
	}
	if uerr != nil {
		if !isRefusal(uerr) {
			return nil, nil, uerr
		}
		// RFC 1939 §7: UIDL is optional. Without it, keep mode cannot
		// tell new messages from old ones, and is refused. Delete mode
		// needs no memory: every message listed is new, retrieved,
		// delivered and deleted. What it loses is recovery: a session
		// whose QUIT never completed leaves its messages on the server
		// and nothing to recognise them by, so the next run delivers
		// them again. A duplicate, never a loss.
		if a.Keep {
			return nil, nil, &NoUIDLError{Err: uerr}
		}
		r.noUIDL = true
		r.log.Info("the server does not support UIDL: every message is retrieved and deleted; " +
			"if a session breaks off, the next run delivers its messages again")
		if msgs, err = listOnly(sizes); err != nil {
			return nil, nil, err
		}
		return msgs, release, nil
	}
	if msgs, err = merge(uids, sizes); err != nil {
		return nil, nil, err
	}
	return msgs, release, nil
}

// quit commits the deletions and forgets the deleted messages. QUIT goes
// out right behind the DELEs, without waiting for their answers: they are
// read in order before QUIT's.
func (r *run) quit() error {
	if err := r.c.Quit(); err != nil {
		// The deletions may not have happened: the cache keeps them as
		// Deleted, and the next run deletes whatever is still there.
		if err := r.saveCache(); err != nil {
			return err
		}
		return fmt.Errorf("the session ended before the server confirmed QUIT; messages delivered are remembered and will be deleted next time: %w", err)
	}
	for _, d := range r.dele {
		if err := d.cmd.Wait(); err != nil {
			// RFC 1939 §6: QUIT removes the messages that were marked;
			// this one was not. It stays on the server, remembered, and
			// the next run tries again.
			r.log.Warn("the server refused to delete a message; it stays on the server", "uid", d.uid, "error", err)
			continue
		}
		r.res.Deleted++
		r.cache.Delete(d.uid)
	}
	return r.saveCache()
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

// merge joins UIDL and LIST by message number.
func merge(uids, sizes []pop3.MessageInfo) ([]message, error) {
	byNum := make(map[int]int64, len(sizes))
	for _, s := range sizes {
		byNum[s.Number] = s.Size
	}
	msgs := make([]message, 0, len(uids))
	seen := make(map[int]bool, len(uids))
	for _, u := range uids {
		size, ok := byNum[u.Number]
		if !ok || seen[u.Number] {
			return nil, &pop3.ProtocolError{Command: "UIDL", Msg: fmt.Sprintf("message %d is listed by UIDL and LIST differently", u.Number)}
		}
		seen[u.Number] = true
		msgs = append(msgs, message{num: u.Number, uid: u.UID, size: size})
	}
	if len(msgs) != len(sizes) {
		return nil, &pop3.ProtocolError{Command: "LIST", Msg: fmt.Sprintf("LIST lists %d messages, UIDL %d", len(sizes), len(msgs))}
	}
	return msgs, nil
}

// listOnly makes the messages of a LIST without UIDL: no UIDs.
func listOnly(sizes []pop3.MessageInfo) ([]message, error) {
	msgs := make([]message, 0, len(sizes))
	seen := make(map[int]bool, len(sizes))
	for _, s := range sizes {
		if seen[s.Number] {
			return nil, &pop3.ProtocolError{Command: "LIST", Msg: fmt.Sprintf("message %d is listed twice", s.Number)}
		}
		seen[s.Number] = true
		msgs = append(msgs, message{num: s.Number, size: s.Size})
	}
	return msgs, nil
}

// openTarget opens the account's delivery target.
func openTarget(a *config.Account) (deliver.Target, error) {
	switch {
	case a.Deliver.Maildir != "":
		return deliver.OpenMaildir(a.Deliver.Maildir)
	case a.Deliver.Mbox != "":
		return deliver.OpenMbox(a.Deliver.Mbox, deliver.MboxOptions{})
	case a.Deliver.MDA != "":
		return deliver.NewMDA(a.Deliver.MDA, deliver.MDAOptions{})
	}
	return nil, &ConfigError{Msg: "no delivery target is configured"}
}

// batchLimits bound how much is delivered before it is made durable,
// recorded and deleted: larger batches share an fsync among more messages;
// smaller ones leave fewer duplicates after a crash (what was delivered but
// not recorded is fetched again).
type batchLimits struct {
	messages int
	bytes    int64
	age      time.Duration
}

func limitsFor(a *config.Account) batchLimits {
	switch {
	case a.Deliver.Maildir != "":
		// Uncommitted messages wait in tmp/, invisible: a crash leaves
		// no duplicate, so batches can be large.
		return batchLimits{messages: 128, bytes: 32 << 20, age: 500 * time.Millisecond}
	case a.Deliver.Mbox != "":
		// Appended messages are visible at once, and a crash before the
		// record leaves them to be fetched again: keep the window short.
		// Each batch costs an fsync and a lock round (dotlock + fcntl).
		return batchLimits{messages: 8, bytes: 4 << 20, age: 20 * time.Millisecond}
	}
	// An MDA delivers for good when it exits: record each at once (the
	// save runs beside the next message's delivery, see startSave).
	return batchLimits{messages: 1}
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

// Retrieval is pipelined ahead of delivery: at most this many RETRs, and
// about this many bytes, are asked for beyond the message being delivered.
// Enough to cover a long round trip; bounded so a graceful stop need not
// drain much.
const (
	aheadMessages = 1000
	aheadBytes    = 8 << 20
)

// fetch retrieves and delivers the messages, committing in batches.
func (r *run) fetch(msgs []message) error {
	if len(msgs) == 0 {
		return nil
	}
	if r.opts.Progress != nil {
		var total int64
		for _, m := range msgs {
			total += m.size
		}
		r.opts.Progress.Begin(len(msgs), total)
	}
	retrs := make([]pop3.RetrCommand, len(msgs))
	issued, ahead := 0, int64(0)
	for i, m := range msgs {
		for issued < len(msgs) && (issued == i || issued-i < aheadMessages && ahead < aheadBytes) {
			retrs[issued] = r.c.Retr(msgs[issued].num)
			ahead += msgs[issued].size
			issued++
		}
		ahead -= m.size
		r.refused = false
		err := r.fetchOne(m, retrs[i])
		retrs[i] = pop3.RetrCommand{}
		if err != nil {
			return errors.Join(err, r.flush())
		}
		if r.refused && issued > i+1 && r.c.Pipelining() {
			r.refused = false
			if err := r.resync(msgs[i+1:issued], retrs[i+1:issued]); err != nil {
				return errors.Join(err, r.flush())
			}
			// ask again for what was dropped
			issued, ahead = i+1, 0
		}
		if r.due() {
			if err := r.commit(); err != nil {
				return errors.Join(err, r.reap(true))
			}
		}
		if err := r.reap(false); err != nil {
			return err
		}
		if r.stopping() {
			break
		}
	}
	return r.flush()
}

// flush commits the batch and waits until every record is saved and its
// message marked for deletion.
func (r *run) flush() error {
	return errors.Join(r.commit(), r.reap(true))
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
func (r *run) resync(msgs []message, inflight []pop3.RetrCommand) error {
	for i, rc := range inflight {
		inflight[i] = pop3.RetrCommand{}
		msg, err := rc.Body()
		if isRefusal(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("retrieving message %d (uid %q) after the refusal of another: %w", msgs[i].num, msgs[i].uid, err)
		}
		if err := newBoundedBody(r.c, msgs[i], msg).Close(); err != nil {
			return fmt.Errorf("retrieving message %d (uid %q) after the refusal of another: %w", msgs[i].num, msgs[i].uid, err)
		}
	}
	if err := r.c.Noop().Wait(); err != nil {
		return fmt.Errorf("checking that the session is in step after a refused RETR: %w", err)
	}
	return nil
}

// due reports whether the batch should be committed now.
func (r *run) due() bool {
	l := r.limits
	n := len(r.batch)
	return n > 0 && (n >= l.messages || r.batchN >= l.bytes || r.now().Sub(r.batchAt) >= l.age)
}

// fetchOne retrieves and delivers one message. It returns an error that
// must stop the run; a failure of this message alone is recorded and nil
// returned.
func (r *run) fetchOne(m message, retr pop3.RetrCommand) error {
	msg, err := retr.Body()
	if err != nil {
		if isRefusal(err) {
			r.refused = true
			r.messageFailed(m, err)
			return nil
		}
		return fmt.Errorf("retrieving message %d (uid %q): %w", m.num, m.uid, err)
	}
	// Every read of the message, and the draining of what is left after
	// a failure, stays within overrunLimit of its LIST size.
	body := newBoundedBody(r.c, m, msg)
	defer body.Close()
	src, env := r.prepare(body)
	if err := r.target.Deliver(env, src); err != nil {
		var de *deliver.Error
		if errors.As(err, &de) && de.Source {
			return fmt.Errorf("retrieving message %d (uid %q): %w", m.num, m.uid, de.Err)
		}
		if errors.As(err, &de) && de.MessageOnly {
			if cerr := body.Close(); cerr != nil {
				return cerr
			}
			r.messageFailed(m, err)
			return nil
		}
		return fmt.Errorf("delivering message %d (uid %q): %w", m.num, m.uid, err)
	}
	if got := body.Octets(); got != m.size {
		r.log.Info("message size differs from the server's LIST size; delivered as received",
			"uid", m.uid, "listed", m.size, "received", got)
	}
	if len(r.batch) == 0 {
		r.batchAt = r.now()
	}
	n := body.Octets()
	r.batch = append(r.batch, delivered{msg: m, bytes: n})
	r.batchN += n
	if r.opts.Progress != nil {
		r.opts.Progress.Delivered(m.size)
	}
	return nil
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

// commit makes the batch durable, records it, then marks it for deletion
// (CONTRACT §5: durable delivery → cache record → DELE).
func (r *run) commit() error {
	if len(r.batch) == 0 {
		return nil
	}
	batch := append([]delivered(nil), r.batch...)
	r.batch, r.batchN = r.batch[:0], 0
	if err := r.target.Commit(); err != nil {
		return err
	}
	state := uidcache.Deleted
	if r.acct.Keep {
		state = uidcache.Retrieved
	}
	for _, d := range batch {
		r.res.Fetched++
		r.res.Bytes += d.bytes
	}
	if r.noUIDL {
		// nothing to record a message by: delete it now it is durable
		r.markDeleted(batch)
		return nil
	}
	now := r.now()
	for _, d := range batch {
		seen := now
		if e, ok := r.cache.Get(d.msg.uid); ok {
			seen = e.Seen
		}
		r.cache.Put(d.msg.uid, uidcache.Entry{Seen: seen, State: state})
	}
	r.unsaved = append(r.unsaved, batch...)
	if r.saved != nil && len(r.unsaved) >= r.limits.messages {
		// A batch already waits for the save in flight: wait for that
		// one, so no more than a batch or two is ever unrecorded.
		if err := r.saveEnded(<-r.saved); err != nil {
			return err
		}
	}
	r.startSave()
	return nil
}

// startSave saves the cache in the background, unless a save is in
// flight already: the next one starts when it ends. Saving beside the
// next deliveries rather than before them keeps the window in which a
// crash leaves a delivered message unrecorded (and so fetched twice) to a
// message or so, at no cost in speed.
func (r *run) startSave() {
	if r.saved != nil || len(r.unsaved) == 0 {
		return
	}
	snap := r.cache.Snapshot()
	r.saving, r.unsaved = r.unsaved, nil
	done := make(chan error, 1)
	r.saved = done
	go func() { done <- snap.Write() }()
}

// reap takes the outcome of the save in flight, if it has ended, and
// marks what it recorded for deletion: CONTRACT §5's order, durable
// delivery → cache record → DELE. With wait, it waits, and goes on until
// everything recorded is saved.
func (r *run) reap(wait bool) error {
	for r.saved != nil {
		if !wait {
			select {
			case err := <-r.saved:
				return r.saveEnded(err)
			default:
				return nil
			}
		}
		if err := r.saveEnded(<-r.saved); err != nil {
			return err
		}
	}
	return nil
}

// saveEnded handles the outcome of the save in flight and starts the
// next, if anything waits to be saved.
func (r *run) saveEnded(err error) error {
	r.saved = nil
	if err != nil {
		// Delivered but not recorded: a deletion that went through would
		// be safe, one that did not would make the next run deliver them
		// again. Stop here.
		r.cache.MarkDirty()
		r.saving = nil
		return &StateError{err}
	}
	r.markDeleted(r.saving)
	r.saving = nil
	r.startSave()
	return nil
}

// markDeleted sends DELE for delivered messages, in delete mode.
func (r *run) markDeleted(batch []delivered) {
	if r.acct.Keep {
		return
	}
	for _, d := range batch {
		r.dele = append(r.dele, pendingDele{cmd: r.c.Dele(d.msg.num), uid: d.msg.uid})
	}
}

// prepare returns the reader of the message to deliver, with the Received
// header in front, and its envelope. Only mbox and MDA targets need the
// envelope sender; a Maildir is spared looking for it.
func (r *run) prepare(body io.Reader) (io.Reader, deliver.Envelope) {
	env := r.env
	var src io.Reader = body
	if r.acct.Deliver.Maildir == "" {
		env.Sender, src = r.envelope.open(body)
	}
	if r.acct.ReceivedHeader {
		return io.MultiReader(r.recv.reader(r.now()), src), env
	}
	return src, env
}

package engine

import "context"

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
		// What broke a session before gets one of its own, after the
		// others: if it breaks this one too, nothing else is delivered
		// again.
		p.suspects = min(p.suspects, len(p.fetch)) // max_messages may have cut them
		take := min(batch, len(p.fetch)-p.suspects)
		if take <= 0 {
			take = 1
		}
		more := len(p.fetch) > take
		p.suspects -= max(len(p.fetch)-take, 0) // the suspects are last
		p.fetch = p.fetch[:min(len(p.fetch), take)]
		p.suspects = max(p.suspects, 0)
		if err := r.fetchSession(s, p); err != nil || !more || r.res.HungUp || r.stopping() {
			return err
		}
		s.close()
		var err error
		if s, err = r.openSession(ctx); err != nil {
			if loginDelayed(err) {
				return nil // one login per LOGIN-DELAY (RFC 2449 §6.5): the rest next run
			}
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

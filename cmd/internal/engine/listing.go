package engine

import (
	"context"
	"fmt"

	"github.com/popfetch/popfetch/pop3"
)

// message is a message listed by the server.
type message struct {
	num  int
	uid  string
	size int64
}

// session is one POP3 session, logged in, with the server's listing.
type session struct {
	c           *pop3.Client
	msgs        []message
	stopClosing func() bool
}

// close drops the connection without QUIT (if it is still open).
func (s *session) close() {
	s.stopClosing()
	s.c.Close()
}

// openSession connects, logs in and lists: everything Run and Check do
// before they decide what is new. A session is dropped when ctx ends.
func (r *run) openSession(ctx context.Context) (*session, error) {
	a := r.acct
	tc, err := tlsConfig(a)
	if err != nil {
		return nil, err
	}
	popts := &pop3.Options{TLSConfig: tc, Timeout: a.Timeout}
	if r.opts.Trace {
		popts.Logger = r.log
	}
	c, err := connect(ctx, a, popts)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, stopClosing: context.AfterFunc(ctx, func() { c.Close() })}
	if s.msgs, err = r.login(ctx, c); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// login logs in on c and lists the messages.
func (r *run) login(ctx context.Context, c *pop3.Client) ([]message, error) {
	a := r.acct
	if err := login(ctx, c, a, r.creds); err != nil {
		return nil, err
	}
	// RFC 2449 §4: capabilities may change after login.
	capa, uidl, list := c.Capa(), c.UIDL(), c.List()
	if _, err := capa.Wait(); err != nil && !isRefusal(err) {
		return nil, err
	}
	r.checkCaps(c.Caps())
	uids, uerr := uidl.Wait()
	sizes, lerr := list.Wait()
	if lerr != nil {
		return nil, lerr
	}
	if uerr == nil {
		r.noUIDL = false
		return merge(uids, sizes)
	}
	if !isRefusal(uerr) {
		return nil, uerr
	}
	// RFC 1939 §7: UIDL is optional. Without it, keep mode cannot tell
	// new messages from old ones, and is refused. Delete mode needs no
	// memory: every message listed is new, retrieved, delivered and
	// deleted. What it loses is recovery: a session that ends without
	// QUIT leaves its messages on the server and nothing to recognise
	// them by, so the next run delivers them again. A duplicate, never a
	// loss.
	if a.Keep {
		return nil, &NoUIDLError{Err: uerr}
	}
	r.noUIDL = true
	r.log.Info("the server does not support UIDL: every message is retrieved and deleted; " +
		"if a session breaks off, the next run delivers its messages again")
	return listOnly(sizes)
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

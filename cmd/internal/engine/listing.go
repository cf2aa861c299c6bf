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

// messages is a list of messages, in the server's order.
type messages interface {
	Len() int
	At(i int) message
}

// listing is what the server listed: UIDL and LIST joined by message
// number. It holds no value per message: a kept mailbox of tens of
// thousands of messages is listed on every run, and At makes each
// message from the two listings as it is asked for.
type listing struct {
	uids  *pop3.Listing // nil for a server without UIDL
	sizes *pop3.Listing
	// bySize is the line of LIST that holds UIDL's line i, when the two
	// are not in the same order; nil when they are (every server known
	// lists both in message number order).
	bySize []int32
}

func (l *listing) Len() int { return l.sizes.Len() }

func (l *listing) At(i int) message {
	if l.uids == nil {
		return message{num: l.sizes.Number(i), size: l.sizes.At(i).Size}
	}
	u := l.uids.At(i)
	j := i
	if l.bySize != nil {
		j = int(l.bySize[i])
	}
	return message{num: u.Number, uid: u.UID, size: l.sizes.At(j).Size}
}

// session is one POP3 session, logged in, with the server's listing.
type session struct {
	c           *pop3.Client
	list        *listing
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
	if s.list, err = r.login(ctx, c); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// login logs in on c and lists the messages.
func (r *run) login(ctx context.Context, c *pop3.Client) (*listing, error) {
	a := r.acct
	if err := login(ctx, c, a, r.creds); err != nil {
		return nil, err
	}
	// RFC 2449 §4: capabilities may change after login.
	capa, uidl, list := c.Capa(), c.UIDL(), c.List()
	// The cache says about how long the listing is: read it without
	// growing its arrays as it comes.
	expect := r.cache.Len() + r.cache.Len()/16 + 16
	uidl.Grow(expect, expect*24)
	list.Grow(expect, 0)
	if _, err := capa.Wait(); err != nil && !isRefusal(err) {
		return nil, err
	}
	r.checkCaps(c.Caps())
	uids, uerr := uidl.Listing()
	sizes, lerr := list.Listing()
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

// inOrder reports whether l lists messages in increasing number order,
// so each once.
func inOrder(l *pop3.Listing) bool {
	prev := 0
	for i := 0; i < l.Len(); i++ {
		n := l.Number(i)
		if n <= prev {
			return false
		}
		prev = n
	}
	return true
}

// merge joins UIDL and LIST by message number.
func merge(uids, sizes *pop3.Listing) (*listing, error) {
	if uids.Len() == sizes.Len() && inOrder(uids) {
		same := true
		for i := 0; i < uids.Len() && same; i++ {
			same = uids.Number(i) == sizes.Number(i)
		}
		if same {
			return &listing{uids: uids, sizes: sizes}, nil
		}
	}
	// Not in the same order: join by number, and check that each
	// message is listed once by each.
	byNum := make(map[int]int32, sizes.Len())
	for j := 0; j < sizes.Len(); j++ {
		byNum[sizes.Number(j)] = int32(j)
	}
	l := &listing{uids: uids, sizes: sizes, bySize: make([]int32, uids.Len())}
	seen := make(map[int]bool, uids.Len())
	for i := 0; i < uids.Len(); i++ {
		n := uids.Number(i)
		j, ok := byNum[n]
		if !ok || seen[n] {
			return nil, &pop3.ProtocolError{Command: "UIDL", Msg: fmt.Sprintf("message %d is listed by UIDL and LIST differently", n)}
		}
		seen[n] = true
		l.bySize[i] = j
	}
	if uids.Len() != sizes.Len() {
		return nil, &pop3.ProtocolError{Command: "LIST", Msg: fmt.Sprintf("LIST lists %d messages, UIDL %d", sizes.Len(), uids.Len())}
	}
	return l, nil
}

// listOnly makes the messages of a LIST without UIDL: no UIDs.
func listOnly(sizes *pop3.Listing) (*listing, error) {
	if !inOrder(sizes) {
		seen := make(map[int]bool, sizes.Len())
		for i := 0; i < sizes.Len(); i++ {
			n := sizes.Number(i)
			if seen[n] {
				return nil, &pop3.ProtocolError{Command: "LIST", Msg: fmt.Sprintf("message %d is listed twice", n)}
			}
			seen[n] = true
		}
	}
	return &listing{sizes: sizes}, nil
}

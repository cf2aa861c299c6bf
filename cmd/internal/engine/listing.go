package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/uidcache"
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
	uids  *uidList // nil for a server without UIDL
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
	j := i
	if l.bySize != nil {
		j = int(l.bySize[i])
	}
	return message{num: l.uids.Number(i), uid: l.uids.uid(i), size: l.sizes.At(j).Size}
}

// uidList is UIDL's answer as the engine keeps it: for each message, its
// number and a reference to its UID, which is the cache's own copy when
// the cache holds it (a kept mailbox lists tens of thousands of UIDs that
// the cache holds already), else a copy of its own.
type uidList struct {
	cache *uidcache.Cache
	nums  []int    // nil while they are 1, 2, 3, ...
	refs  []uint64 // a uidcache.Ref, or fresh | i for UID i of text
	ends  []uint32 // UID i of text ends at ends[i]
	b     strings.Builder
	text  string
}

// fresh marks a reference to a UID of the list's own.
const fresh = 1 << 63

func newUIDList(cache *uidcache.Cache, expect int) *uidList {
	return &uidList{cache: cache, refs: make([]uint64, 0, expect)}
}

// add takes a line of UIDL.
func (u *uidList) add(n int, uid []byte) error {
	if u.nums == nil && n != len(u.refs)+1 {
		u.nums = make([]int, len(u.refs), cap(u.refs))
		for i := range u.nums {
			u.nums[i] = i + 1
		}
	}
	if u.nums != nil {
		u.nums = append(u.nums, n)
	}
	if ref, ok := u.cache.Lookup(uid); ok {
		u.refs = append(u.refs, uint64(ref))
		return nil
	}
	if u.b.Len()+len(uid) > math.MaxUint32 {
		return &pop3.ProtocolError{Command: "UIDL", Msg: "more than 4 GiB of unique-ids"}
	}
	u.refs = append(u.refs, fresh|uint64(len(u.ends)))
	u.b.Grow(len(uid)) // doubling, unlike Write's append
	u.b.Write(uid)
	u.ends = append(u.ends, uint32(u.b.Len()))
	return nil
}

func (u *uidList) Len() int { return len(u.refs) }

func (u *uidList) Number(i int) int {
	if u.nums == nil {
		return i + 1
	}
	return u.nums[i]
}

func (u *uidList) uid(i int) string {
	r := u.refs[i]
	if r&fresh == 0 {
		return u.cache.UID(uidcache.Ref(r))
	}
	k := r &^ fresh
	start := uint32(0)
	if k > 0 {
		start = u.ends[k-1]
	}
	if u.text == "" {
		u.text = u.b.String()
	}
	return u.text[start:u.ends[k]]
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

// login logs in on c and lists the messages. When the server's
// capabilities are remembered from an earlier session (capsmem.go), the
// first CAPA goes out with the login instead of before it, which saves a
// round trip.
func (r *run) login(ctx context.Context, c *pop3.Client) (*listing, error) {
	a := r.acct
	var remembered pop3.Caps
	var ask *pop3.CapaCommand // the first CAPA, when it goes with the login
	if a.TLS != config.TLSStartTLS {
		if remembered = rememberedCaps(r.opts.FS, a, c); remembered != nil {
			c.AssumeCaps(remembered)
			ask = c.Capa()
		} else if err := askCaps(a, c); err != nil {
			return nil, err
		}
	}
	before := c.Caps()
	// A cache that cannot be read stops the run before credentials go
	// out: nothing could be recorded.
	if err := r.loadCache(); err != nil {
		return nil, err
	}
	// The cache says about how long the listing is: read it without
	// growing its arrays as it comes.
	expect := r.cache.Len() + r.cache.Len()/16 + 16
	for {
		method, waitLogin, err := startLogin(ctx, c, a, r.creds)
		if err != nil {
			return nil, err
		}
		if ask != nil {
			var err error
			if before, err = ask.Wait(); err != nil && !isRefusal(err) {
				return nil, err
			}
			ask = nil
		}
		// Nothing goes out behind the login before its answer: Courier's
		// login process drops what it read past PASS when it hands the
		// connection to the session's process, so a UIDL sent with the
		// login would never be answered (RFC 2449 §6.6 allows pipelining,
		// not across that hand-over).
		if err := waitLogin(); err != nil {
			if retry := r.loginChanged(c, err, method, remembered); !retry {
				return nil, err
			}
			remembered = nil
			continue
		}
		uids := newUIDList(r.cache, expect)
		// RFC 2449 §4: capabilities may change after login (Gmail lists
		// PIPELINING only then).
		capa, uidl, list := c.Capa(), c.UIDLFunc(uids.add), c.List().Grow(expect, 0)
		if _, err := capa.Wait(); err != nil && !isRefusal(err) {
			return nil, err
		}
		r.checkCaps(c.Caps())
		l, err := r.list(uids, uidl, list)
		if err != nil {
			return nil, err
		}
		r.rememberCaps(c, before, remembered)
		return l, nil
	}
}

// loginChanged reports whether a login made on remembered capabilities
// failed because the server's changed: it now lists (in the CAPA that
// went with the login) a method other than the one used. The login is
// then made again with what the server lists now.
func (r *run) loginChanged(c *pop3.Client, err error, method config.AuthMethod, remembered pop3.Caps) bool {
	var ae *AuthError
	if remembered == nil || !errors.As(err, &ae) || c.Err() != nil {
		return false
	}
	now, cerr := chooseAuth(c, r.acct)
	if cerr != nil || now == method {
		return false
	}
	r.log.Info("the server's login methods changed since the last session; logging in again",
		"was", method, "now", now)
	return true
}

// list reads the listing asked for after the login.
func (r *run) list(uids *uidList, uidl *pop3.Command, list *pop3.ListCommand) (*listing, error) {
	a := r.acct
	uerr := uidl.Wait()
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

// numbered is a listing's message numbers.
type numbered interface {
	Len() int
	Number(i int) int
}

// inOrder reports whether l lists messages in increasing number order,
// so each once.
func inOrder(l numbered) bool {
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
func merge(uids *uidList, sizes *pop3.Listing) (*listing, error) {
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

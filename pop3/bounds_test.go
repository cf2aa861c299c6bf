package pop3_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3"
)

// A server that lists 50 000 UIDs of 8 KB each (400 MB kept in memory
// before UIDs were bounded) is refused at the first one, as a protocol
// error that says the bound, with next to nothing allocated.
func TestUIDLHugeUIDs(t *testing.T) {
	uid := strings.Repeat("u", 8000)
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("UIDL")
		if p.write("+OK") != nil {
			return
		}
		for i := 1; i <= 50_000; i++ {
			if p.writeRaw(fmt.Sprintf("%d %s\r\n", i, uid)) != nil {
				return // the client hung up
			}
		}
		p.write(".")
	})
	c := s.client()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := c.UIDL().Wait()
	runtime.ReadMemStats(&after)
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) || pe.Command != "UIDL" ||
		!strings.Contains(pe.Msg, "unique-id of message 1 is 8000 octets long: RFC 1939 §7 allows 70, and no more than 512 are accepted") {
		t.Fatalf("got %v, want a protocol error naming the bound", err)
	}
	if !errors.Is(c.Err(), err) && c.Err() != err {
		t.Errorf("the client is not broken: %v", c.Err())
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("reading the listing allocated %d MB", n>>20)
	}
}

// A UID of exactly the bound is taken as it is (RFC 1939 §7 is broken, but
// the message stays reachable), one octet more is refused.
func TestUIDLBoundIsInclusive(t *testing.T) {
	for _, n := range []int{pop3.DefaultMaxUID, pop3.DefaultMaxUID + 1} {
		s := runScript(t, nil, func(p *peer) {
			p.write(rfcGreeting)
			p.expect("UIDL")
			p.write("+OK", "1 "+strings.Repeat("x", n), ".")
		})
		msgs, err := s.client().UIDL().Wait()
		if ok := n <= pop3.DefaultMaxUID; ok != (err == nil) || ok && len(msgs[0].UID) != n {
			t.Errorf("UID of %d octets: %v", n, err)
		}
	}
	s := runScript(t, &pop3.Options{MaxUID: 8}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("UIDL")
		p.write("+OK", "1 12345678", "2 123456789", ".")
	})
	if _, err := s.client().UIDL().Wait(); err == nil || !strings.Contains(err.Error(), "message 2 is 9 octets long") {
		t.Errorf("Options.MaxUID 8: %v", err)
	}
}

// A listing of short lines that goes on past Options.MaxListing octets is
// refused, for UIDL and LIST alike, and the error says the bound.
func TestListingBytesBounded(t *testing.T) {
	const bound = 64 << 10
	for _, cmd := range []string{"UIDL", "LIST"} {
		t.Run(cmd, func(t *testing.T) {
			s := runScript(t, &pop3.Options{MaxListing: bound}, func(p *peer) {
				p.write(rfcGreeting)
				p.expect(cmd)
				if p.write("+OK") != nil {
					return
				}
				for i := 1; ; i++ {
					line := fmt.Sprintf("%d 12345 678901234567890123456789012345\r\n", i)
					if p.writeRaw(line) != nil {
						return
					}
				}
			})
			c := s.client()
			var err error
			if cmd == "UIDL" {
				_, err = c.UIDL().Wait()
			} else {
				_, err = c.List().Wait()
			}
			var pe *pop3.ProtocolError
			if !errors.As(err, &pe) || pe.Command != cmd ||
				!strings.Contains(pe.Msg, fmt.Sprintf("response longer than %d octets", bound)) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// a listing within the bound is whole
	s := runScript(t, &pop3.Options{MaxListing: 64}, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("UIDL")
		p.write("+OK", "1 aaaaaaaaaaaaaaaaaaaa", "2 bbbbbbbbbbbbbbbbbbbb", ".") // 5+24+24 octets
	})
	if msgs, err := s.client().UIDL().Wait(); err != nil || len(msgs) != 2 {
		t.Errorf("within the bound: %v, %v", msgs, err)
	}
}

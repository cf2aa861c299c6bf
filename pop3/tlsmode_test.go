package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// The wrong TLS mode for a port is told at once, not after the whole
// timeout (issue 12, point 8). The timeout here is an hour: the tests
// would hang, not pass, if only the timeout ended the wait.

var patient = &pop3.Options{Timeout: time.Hour, TLSConfig: &tls.Config{InsecureSkipVerify: true}}

// TestDialOnImplicitTLSPort: Dial and DialStartTLS on a port that speaks
// TLS from the first byte return ErrImplicitTLS.
func TestDialOnImplicitTLSPort(t *testing.T) {
	s := pop3test.NewServer()
	begin(t, s, true)
	for name, dial := range map[string]func(context.Context, string, *pop3.Options) (*pop3.Client, error){
		"Dial": pop3.Dial, "DialStartTLS": pop3.DialStartTLS,
	} {
		c, err := dial(context.Background(), s.Addr(), patient)
		if !errors.Is(err, pop3.ErrImplicitTLS) {
			t.Errorf("%s: %v, want ErrImplicitTLS", name, err)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestDialTLSOnPlainPort: DialTLS on a port that greets in plain text
// returns a *TLSError wrapping ErrNotTLS.
func TestDialTLSOnPlainPort(t *testing.T) {
	s := pop3test.NewServer()
	begin(t, s, false)
	_, err := pop3.DialTLS(context.Background(), s.Addr(), patient)
	var te *pop3.TLSError
	if !errors.As(err, &te) || !errors.Is(err, pop3.ErrNotTLS) {
		t.Errorf("DialTLS: %v, want a *TLSError wrapping ErrNotTLS", err)
	}
}

// TestDialSlowGreeting: a plain server that takes longer than a second to
// greet is only checked, not given up on: its greeting is read. The
// check's connection is told apart by its TLS handshake, which such a
// server greets too.
func TestDialSlowGreeting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				time.Sleep(1500 * time.Millisecond)
				conn.Write([]byte("+OK slow but plain\r\n"))
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "QUIT\r\n" {
						conn.Write([]byte("+OK bye\r\n"))
						return
					}
					conn.Write([]byte("-ERR what?\r\n"))
				}
			}()
		}
	}()
	c, err := pop3.Dial(context.Background(), l.Addr().String(), patient)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.Greeting() != "slow but plain" {
		t.Errorf("greeting %q", c.Greeting())
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
}

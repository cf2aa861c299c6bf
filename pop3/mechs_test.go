package pop3_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
)

// TestCRAMMD5Exact checks the exchange against RFC 2195 §2's example.
func TestCRAMMD5Exact(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH CRAM-MD5")
		p.write("+ " + b64("<1896.697170952@postoffice.reston.mci.net>"))
		p.expect(b64("tim b913a602c7eda7a495b4e6e7334d3890"))
		p.write("+OK")
	})
	if err := s.client().Auth(pop3.NewCRAMMD5Client("tim", "tanstaaftanstaaf")); err != nil {
		t.Fatal(err)
	}
	s.checkTranscript("AUTH CRAM-MD5", "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
}

// TestCRAMMD5SecondChallenge: a second challenge is not answered; the
// exchange is cancelled.
func TestCRAMMD5SecondChallenge(t *testing.T) {
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH CRAM-MD5")
		p.write("+ " + b64("<1@x>"))
		p.readLine()
		p.write("+ " + b64("<2@x>"))
		p.expect("*")
		p.write("-ERR cancelled")
	})
	err := s.client().Auth(pop3.NewCRAMMD5Client("tim", "secret"))
	if !errors.Is(err, sasl.ErrUnexpectedServerChallenge) {
		t.Fatalf("got %v", err)
	}
}

// TestXOAUTH2Exact checks the initial response's format and the empty
// answer to the error challenge.
func TestXOAUTH2Exact(t *testing.T) {
	ir := b64("user=alice@example.org\x01auth=Bearer ya29.tok\x01\x01")
	s := runScript(t, nil, func(p *peer) {
		p.write(rfcGreeting)
		p.expect("AUTH XOAUTH2 " + ir)
		p.write("+ " + b64(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`))
		p.expect("")
		p.write("-ERR [AUTH] invalid credentials")
	})
	err := s.client().Auth(pop3.NewXOAUTH2Client("alice@example.org", "ya29.tok"))
	var e *pop3.Error
	if !errors.As(err, &e) || e.Code != pop3.CodeAuth {
		t.Fatalf("got %v", err)
	}
	s.checkTranscript("AUTH XOAUTH2 "+ir, "")
}

// TestOAuthMechanisms runs the bearer and CRAM-MD5 clients against
// pop3test, with good and refused credentials; the refusals end with the
// server's -ERR [AUTH], after the error challenge of the bearer mechanisms.
func TestOAuthMechanisms(t *testing.T) {
	long := strings.Repeat("t", 400) // pushes the initial response past 255 octets
	for name, tc := range map[string]struct {
		good, bad sasl.Client
		token     string
	}{
		"CRAM-MD5":         {pop3.NewCRAMMD5Client("alice", "secret"), pop3.NewCRAMMD5Client("alice", "wrong"), "tok"},
		"XOAUTH2":          {pop3.NewXOAUTH2Client("alice", "tok"), pop3.NewXOAUTH2Client("alice", "bad"), "tok"},
		"XOAUTH2 long":     {pop3.NewXOAUTH2Client("alice", long), pop3.NewXOAUTH2Client("alice", long+"x"), long},
		"OAUTHBEARER":      {pop3.NewOAuthBearerClient("alice", "tok", "127.0.0.1", 995), pop3.NewOAuthBearerClient("alice", "bad", "127.0.0.1", 995), "tok"},
		"OAUTHBEARER long": {pop3.NewOAuthBearerClient("alice", long, "", 0), pop3.NewOAuthBearerClient("alice", "bad", "", 0), long},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := startServer(t, "", "Subject: x\n\n")
			s.SetToken("alice", tc.token)
			begin(t, s, true)
			c := dialTLS(t, s)
			var e *pop3.Error
			if err := c.Auth(tc.bad); !errors.As(err, &e) || e.Code != pop3.CodeAuth || e.Command != "AUTH" {
				t.Fatalf("refused credentials: %v", err)
			}
			if err := c.Auth(tc.good); err != nil {
				t.Fatal(err)
			}
			if n, _, err := c.Stat().Wait(); err != nil || n != 1 {
				t.Fatalf("STAT: %d %v", n, err)
			}
		})
	}
}

package pop3_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// startServer starts a server with user alice holding msgs.
func startServer(t *testing.T, tlsMode string, msgs ...string) (*pop3test.Server, *pop3test.Mailbox) {
	t.Helper()
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	for _, m := range msgs {
		mb.Add([]byte(m))
	}
	return s, mb
}

func begin(t *testing.T, s *pop3test.Server, implicit bool) {
	t.Helper()
	var err error
	if implicit {
		err = s.StartTLS()
	} else {
		err = s.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
}

func dialTLS(t *testing.T, s *pop3test.Server) *pop3.Client {
	t.Helper()
	c, err := pop3.DialTLS(context.Background(), s.Addr(), &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func login(t *testing.T, c *pop3.Client) {
	t.Helper()
	if _, err := c.Capa().Wait(); err != nil {
		t.Fatal(err)
	}
	u, p := c.User("alice"), c.Pass("secret")
	if err := u.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestFetchAndDelete(t *testing.T) {
	msgs := []string{
		"Subject: one\n\nhello\n.dot line\n..two dots\n",
		"Subject: two\r\n\r\nno final newline",
		"Subject: three\n\n.\n",
	}
	want := []string{
		"Subject: one\n\nhello\n.dot line\n..two dots\n",
		"Subject: two\n\nno final newline\n",
		"Subject: three\n\n.\n",
	}
	s, mb := startServer(t, "tls", msgs...)
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	if !c.Pipelining() {
		t.Fatal("expected pipelining")
	}
	uidl, list := c.UIDL(), c.List()
	uids, err := uidl.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := list.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != 3 || len(sizes) != 3 {
		t.Fatalf("got %d uids, %d sizes", len(uids), len(sizes))
	}
	var retrs []pop3.RetrCommand
	for _, m := range uids {
		retrs = append(retrs, c.Retr(m.Number))
	}
	for i, r := range retrs {
		body, err := r.Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want[i] {
			t.Errorf("message %d: got %q, want %q", i+1, got, want[i])
		}
		if body.Octets() != sizes[i].Size {
			t.Errorf("message %d: %d octets, LIST said %d", i+1, body.Octets(), sizes[i].Size)
		}
		c.Dele(uids[i].Number)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if mb.Len() != 0 {
		t.Fatalf("%d messages left", mb.Len())
	}
	if err := c.Noop().Wait(); !errors.Is(err, pop3.ErrClosed) {
		t.Fatalf("after quit: %v", err)
	}
}

func TestCloseCommitsNothing(t *testing.T) {
	s, mb := startServer(t, "", "Subject: x\n\nbody\n")
	begin(t, s, true)
	c := dialTLS(t, s)
	login(t, c)
	if err := c.Dele(1).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	if mb.Len() != 1 {
		t.Fatal("deletion committed without QUIT")
	}
}

func TestErrResponseCode(t *testing.T) {
	s, _ := startServer(t, "")
	s.Faults.Respond = func(cmd string, args []string) (string, bool) {
		if cmd == "PASS" {
			return "-ERR [SYS/TEMP] try later", true
		}
		return "", false
	}
	begin(t, s, true)
	c := dialTLS(t, s)
	c.User("alice")
	err := c.Pass("secret").Wait()
	var e *pop3.Error
	if !errors.As(err, &e) || e.Code != pop3.CodeSysTemp || e.Command != "PASS" || !e.Temporary() {
		t.Fatalf("got %#v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatal("error holds the password")
	}
}

// TestUTF8Command: UTF8 before login gets the message as stored from a
// server that wraps 8-bit header fields for legacy clients; a refusal is
// an *Error and leaves the session usable.
func TestUTF8Command(t *testing.T) {
	const msg = "Subject: gr\xc3\xbc\xc3\x9fe\n\nhallo\n"
	s, _ := startServer(t, "implicit", msg)
	s.UTF8 = true
	begin(t, s, true)
	for _, sendUTF8 := range []bool{true, false} {
		c := dialTLS(t, s)
		if _, err := c.Capa().Wait(); err != nil || !c.Caps().Has("UTF8") {
			t.Fatalf("CAPA: %v %v", c.Caps(), err)
		}
		if sendUTF8 {
			if err := c.UTF8().Wait(); err != nil {
				t.Fatal(err)
			}
		}
		login(t, c)
		body, err := c.Retr(1).Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if (string(got) == msg) != sendUTF8 {
			t.Errorf("UTF8 sent %v: got %q", sendUTF8, got)
		}
		var perr *pop3.Error
		if err := c.UTF8().Wait(); !errors.As(err, &perr) || perr.Command != "UTF8" {
			t.Errorf("UTF8 after login: %v, want a refusal", err)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
	}
}

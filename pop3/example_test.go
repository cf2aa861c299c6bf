package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// exampleServer starts a pop3test server for user alice with two messages.
func exampleServer(implicitTLS bool) (*pop3test.Server, *pop3test.Mailbox) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: hello\r\n\r\nHi Alice.\r\n"))
	mb.Add([]byte("Subject: dots\n\n.a line starting with a dot\n"))
	var err error
	if implicitTLS {
		err = s.StartTLS()
	} else {
		err = s.Start()
	}
	if err != nil {
		log.Fatal(err)
	}
	return s, mb
}

// Fetch every message over implicit TLS, delete it, and commit the
// deletions with Quit.
func ExampleDialTLS() {
	s, mailbox := exampleServer(true)
	defer s.Close()

	opts := &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}}
	c, err := pop3.DialTLS(context.Background(), s.Addr(), opts)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // commits nothing if we return early

	c.User("alice")
	if err := c.Pass("secret").Wait(); err != nil {
		log.Fatal(err)
	}
	msgs, err := c.UIDL().Wait()
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		body, err := c.Retr(m.Number).Body()
		if err != nil {
			log.Fatal(err)
		}
		data, err := io.ReadAll(body)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %q\n", m.UID, data)
		// only once the message is safely stored
		if err := c.Dele(m.Number).Wait(); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		log.Fatal(err) // the deletions may not have been committed
	}
	fmt.Println("left on the server:", mailbox.Len())
	// Output:
	// pt00000001: "Subject: hello\n\nHi Alice.\n"
	// pt00000002: "Subject: dots\n\n.a line starting with a dot\n"
	// left on the server: 0
}

// Commands are handles: issue several, then wait for them in order. With a
// server that lists PIPELINING they are sent at once; otherwise the same
// code runs lock-step.
func ExampleClient_Retr() {
	s, _ := exampleServer(true)
	defer s.Close()

	c, err := pop3.DialTLS(context.Background(), s.Addr(), &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Capa().Wait(); err != nil {
		log.Fatal(err)
	}
	c.User("alice")
	c.Pass("secret")
	list := c.List()
	retr1, retr2 := c.Retr(1), c.Retr(2)

	sizes, err := list.Wait() // also the answers to USER and PASS
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range []pop3.RetrCommand{retr1, retr2} {
		body, err := r.Body()
		if err != nil {
			log.Fatal(err)
		}
		// the reader streams: here, only the first line is read; Close
		// discards the rest so the session can go on
		first, _ := bufio.NewReader(body).ReadString('\n')
		body.Close()
		fmt.Printf("message %d, %d octets: %q\n", sizes[i].Number, sizes[i].Size, first)
	}
	fmt.Println("pipelined:", c.Pipelining())
	c.Quit()
	// Output:
	// message 1, 29 octets: "Subject: hello\n"
	// message 2, 46 octets: "Subject: dots\n"
	// pipelined: true
}

// Upgrade a plain connection with STLS, refusing a server that does not
// offer it, then log in with SASL PLAIN.
func ExampleDialStartTLS() {
	s, _ := exampleServer(false)
	defer s.Close()

	opts := &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}}
	c, err := pop3.DialStartTLS(context.Background(), s.Addr(), opts)
	if errors.Is(err, pop3.ErrNoSTLS) {
		log.Fatal("the server does not offer STLS: not sending the password in the clear")
	} else if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		log.Fatal(err)
	}
	n, size, err := c.Stat().Wait()
	if err != nil {
		log.Fatal(err)
	}
	state, _ := c.TLSConnectionState()
	fmt.Println("TLS 1.2 or later:", state.Version >= tls.VersionTLS12)
	fmt.Printf("%d messages, %d octets\n", n, size)
	c.Quit()
	// Output:
	// TLS 1.2 or later: true
	// 2 messages, 75 octets
}

// A -ERR response is an *Error carrying the RFC 2449/3206 response code.
func ExampleError() {
	s, _ := exampleServer(true)
	defer s.Close()

	c, err := pop3.DialTLS(context.Background(), s.Addr(), &pop3.Options{TLSConfig: &tls.Config{RootCAs: s.CertPool()}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.User("alice")
	err = c.Pass("wrong").Wait()
	var e *pop3.Error
	if errors.As(err, &e) {
		fmt.Println("command:", e.Command)
		fmt.Println("code:", e.Code)
		fmt.Println("try again later:", e.Temporary())
	}
	// Output:
	// command: PASS
	// code: AUTH
	// try again later: false
}

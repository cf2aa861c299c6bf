package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/popfetch/popfetch/internal/couriertest"
	"github.com/popfetch/popfetch/internal/mailgen"
)

// A real Courier POP3 server (internal/couriertest) wraps every message
// whose header holds 8-bit bytes, UTF-8 or not, in a notice of its own
// ("Cannot display Unicode content", the original as a message/global
// attachment) for a client that did not send UTF8 (RFC 6856). popfetch
// sends UTF8 when CAPA lists it, so it must deliver every message as
// Courier stores it, byte for byte.

// courierMessages returns messages with 8-bit header fields (UTF-8, and
// ISO-8859-1 that is not UTF-8), NUL bytes, bare CRs, long lines, dot and
// "From " lines, a last line without LF, and the trap set of mailgen:
// everything Courier must not touch once UTF8 is on. The first six have
// 8-bit headers, which Courier would wrap.
func courierMessages(seed uint64, traps int) [][]byte {
	long := strings.Repeat("Gr\xc3\xbc\xc3\x9fe ", 400) // 4400 bytes of UTF-8 in one header line
	msgs := []string{
		"Return-Path: <j@example.de>\nFrom: J\xc3\xbcrgen M\xc3\xbcller <j@example.de>\nTo: b\xc3\xa9a@example.fr\n" +
			"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\nDate: Mon, 4 Mar 2024 09:30:00 +0100\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
			"Hallo,\n.\n..\n.x\nFrom the desk of J\xc3\xbcrgen\n>From quoted\n\nTsch\xc3\xbcss\n",
		"From: Ren\xe9 <r@example.fr>\nSubject: caf\xe9 cr\xe8me br\xfbl\xe9e (ISO-8859-1, not UTF-8)\n" +
			"Content-Type: text/plain; charset=iso-8859-1\n\nd\xe9j\xe0 vu\n.\n",
		"From: a@example.org\nSubject: folded\n\tand 8-bit in the continuation: \xc3\xa9t\xc3\xa9\n\nbody\n",
		"From: nul@example.org\nSubject: a NUL \x00 in the header, and \xc3\xbc\nX-Bare-CR: one\rtwo\n\nNUL \x00 in the body, bare CR\rhere\n\x00\n",
		"From: long@example.org\nSubject: " + long + "\n\n" + strings.Repeat("x", 25000) + "\n..\n" + strings.Repeat("\xc3\xa4", 600) + "\n",
		"From: nolf@example.org\nSubject: no final newline \xc3\xb8\n\n.\nlast line without LF",
	}
	var out [][]byte
	for i, m := range msgs {
		out = append(out, fmt.Appendf(nil, "%s: courier-%d-%d\n%s", mailgen.IDHeader, seed, i, m))
	}
	return append(out, mailgen.Traps(traps, seed)...)
}

// courierAccount writes dir/config.toml for user of srv, reached over
// tls ("implicit", "starttls" or "none") and delivering as deliver says.
func courierAccount(t *testing.T, srv *couriertest.Server, dir, user, tls, deliver string, keep bool) string {
	t.Helper()
	a := acctSpec{user: user, tls: tls, deliver: deliver, keep: keep}
	switch tls {
	case "implicit":
		a.addr = srv.TLSAddr()
	default:
		a.addr = srv.PlainAddr()
	}
	if tls != "none" {
		a.extra = fmt.Sprintf("tls_ca_file = %q", srv.CAFile())
	}
	return writeAccount(t, nil, dir, a)
}

// checkUTF8Trace fails unless a -vv trace shows UTF8 sent before the
// login and accepted.
func checkUTF8Trace(t *testing.T, trace string) {
	t.Helper()
	utf8, user := strings.Index(trace, "C: UTF8"), strings.Index(trace, "C: USER")
	if utf8 < 0 || !strings.Contains(trace, "S: +OK UTF8 enabled") {
		t.Fatalf("-vv does not show UTF8 sent and accepted:\n%s", trace)
	}
	if user >= 0 && user < utf8 {
		t.Fatalf("UTF8 must come before the login (RFC 6856 §2):\n%s", trace)
	}
}

// TestCourierByteExact fetches the messages of courierMessages from a
// real Courier into a Maildir and into an mbox (read back by Python's
// mailbox module), in delete mode and in keep mode, over implicit TLS,
// STLS and plain POP3 on loopback: each is delivered byte-exact, once. In
// keep mode the server still holds them, unchanged, a second run fetches
// nothing and a third only a message added meanwhile.
func TestCourierByteExact(t *testing.T) {
	cases := []struct {
		name, target, tls string
		keep              bool
	}{
		{"maildir-delete", "maildir", "implicit", false},
		{"mbox-delete", "mbox", "starttls", false},
		{"maildir-keep", "maildir", "none", true},
		{"mbox-keep", "mbox", "implicit", true},
	}
	var opts []couriertest.Option
	for _, c := range cases {
		opts = append(opts, couriertest.WithUser(strings.ReplaceAll(c.name, "-", "_"), "secret"))
	}
	srv := couriertest.Start(t, opts...)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := strings.ReplaceAll(c.name, "-", "_")
			msgs := courierMessages(uint64(80+i), 60)
			srv.Populate(user, msgs)
			dir := t.TempDir()
			dest := filepath.Join(dir, "Maildir")
			deliver := maildirTo(dest)
			if c.target == "mbox" {
				dest = filepath.Join(dir, "mbox")
				deliver = mboxTo(dest)
			}
			read := func() [][]byte {
				if c.target == "mbox" {
					return mboxBodies(readMbox(t, dest))
				}
				return maildirMessages(t, dest)
			}
			cfg := courierAccount(t, srv, dir, user, c.tls, deliver, c.keep)

			r := mustRun(t, 0, "-c", cfg, "-vv", "fetch")
			checkDelivered(t, read(), msgs)
			checkUTF8Trace(t, r.stderr)
			if !c.keep {
				if n := srv.Count(user); n != 0 {
					t.Fatalf("delete mode: the server still holds %d messages", n)
				}
				return
			}
			if got := srv.Messages(user); !slices.EqualFunc(got, msgs, bytes.Equal) {
				t.Fatalf("keep mode: the server holds %d messages, want the %d stored, unchanged", len(got), len(msgs))
			}
			r = mustRun(t, 0, "-c", cfg, "-v", "fetch")
			if !strings.Contains(r.stderr, ": 0 new, 0 fetched") {
				t.Errorf("second run: want 0 fetched:\n%s", r.stderr)
			}
			late := courierMessages(uint64(90+i), 0)[:1]
			srv.Populate(user, late)
			r = mustRun(t, 0, "-c", cfg, "-v", "fetch")
			if !strings.Contains(r.stderr, ": 1 new, 1 fetched") {
				t.Errorf("third run: want 1 fetched:\n%s", r.stderr)
			}
			checkDelivered(t, read(), append(msgs, late...))
		})
	}
}

// TestCourierWithoutUTF8 shows that the byte-exact checks above can fail:
// the same fetch through a proxy that hides UTF8 from CAPA sends no UTF8,
// and Courier hands popfetch its wrapper instead of each message with an
// 8-bit header, which is what popfetch then delivers (as any client
// would: the wrapper is a well-formed message). A raw session without
// UTF8 gets the wrapper too, one with UTF8 the message as stored.
func TestCourierWithoutUTF8(t *testing.T) {
	srv := couriertest.Start(t, couriertest.WithUser("alice", "secret"))
	msgs := courierMessages(95, 4)
	srv.Populate("alice", msgs)

	plain := srv.Session("alice", "secret", couriertest.Dialog{Hangup: true}, "RETR 1")[0]
	utf8 := srv.Session("alice", "secret", couriertest.Dialog{UTF8: true, Hangup: true}, "RETR 1")[0]
	if !bytes.Equal(utf8.Data, msgs[0]) {
		t.Fatalf("RETR after UTF8 sent\n%q\nwant the message as stored", utf8.Data)
	}
	if bytes.Equal(plain.Data, msgs[0]) || !bytes.Contains(plain.Data, []byte("Cannot display Unicode content")) {
		t.Fatalf("RETR without UTF8 sent\n%q\nwant Courier's wrapper", plain.Data)
	}

	proxy := startHideUTF8(t, srv.PlainAddr())
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	cfg := writeAccount(t, nil, dir, acctSpec{user: "alice", addr: proxy, tls: "none", deliver: maildirTo(md)})
	r := mustRun(t, 0, "-c", cfg, "-vv", "fetch")
	if strings.Contains(r.stderr, "C: UTF8") || !strings.Contains(r.stderr, "S: +OK Here's what I can do") {
		t.Fatalf("through the proxy: UTF8 sent, or no CAPA in the trace:\n%s", r.stderr)
	}
	tl := count(maildirMessages(t, md), msgs)
	var wrapped []string
	for _, g := range maildirMessages(t, md) {
		if bytes.Contains(g, []byte("Subject: Cannot display Unicode content")) {
			wrapped = append(wrapped, mailgen.ID(bytes.SplitN(g, []byte("Content-Type: message/global\n\n"), 2)[1]))
		}
	}
	want := []string{"courier-95-0", "courier-95-1", "courier-95-2", "courier-95-3", "courier-95-4", "courier-95-5"}
	slices.Sort(wrapped)
	if !slices.Equal(tl.missing, want) || len(tl.damaged) != len(want) || !slices.Equal(wrapped, want) {
		t.Fatalf("without UTF8: missing %v, %d damaged, wrapped %v; want exactly the messages with 8-bit headers (%v) wrapped",
			tl.missing, len(tl.damaged), wrapped, want)
	}
	if n := srv.Count("alice"); n != 0 {
		t.Fatalf("the server still holds %d messages", n)
	}
}

// TestCourierServerInfo: serverinfo lists Courier's UTF8 capability (and
// STLS, over plain POP3).
func TestCourierServerInfo(t *testing.T) {
	srv := couriertest.Start(t, couriertest.WithUser("alice", "secret"))
	for _, tls := range []string{"implicit", "starttls"} {
		t.Run(tls, func(t *testing.T) {
			dir := t.TempDir()
			cfg := courierAccount(t, srv, dir, "alice", tls, maildirTo(filepath.Join(dir, "Maildir")), false)
			r := mustRun(t, 0, "-c", cfg, "serverinfo", "d")
			for _, w := range []string{"UTF8", "Courier", "TLS"} {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("serverinfo lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// TestCourierCheckList: check --list reads each header with TOP after
// UTF8, so it shows the 8-bit Subject as written, not Courier's notice,
// and leaves the messages on the server as they were.
func TestCourierCheckList(t *testing.T) {
	srv := couriertest.Start(t, couriertest.WithUser("alice", "secret"))
	msgs := courierMessages(97, 2)
	srv.Populate("alice", msgs)
	dir := t.TempDir()
	cfg := courierAccount(t, srv, dir, "alice", "implicit", maildirTo(filepath.Join(dir, "Maildir")), false)
	r := mustRun(t, 0, "-c", cfg, "check", "--list")
	for _, w := range []string{"Gr\u00fc\u00dfe aus K\u00f6ln", "J\u00fcrgen M\u00fcller"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("check --list lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Cannot display Unicode content") {
		t.Errorf("check --list shows Courier's notice:\n%s", r.stdout)
	}
	if got := srv.Messages("alice"); !slices.EqualFunc(got, msgs, bytes.Equal) {
		t.Fatalf("check --list changed the server's messages")
	}
}

// TestCourierAuth: every mechanism popfetch has that Courier offers with
// a userdb logs in (USER/PASS, and SASL PLAIN, LOGIN and CRAM-MD5), over
// STLS, and an unknown user is an authentication failure (77).
func TestCourierAuth(t *testing.T) {
	srv := couriertest.Start(t, couriertest.WithUser("alice", "secret"),
		couriertest.WithSASL("PLAIN", "LOGIN", "CRAM-MD5"))
	for i, auth := range []string{"user", "plain", "login", "cram-md5", "auto"} {
		t.Run(auth, func(t *testing.T) {
			msgs := courierMessages(uint64(100+i), 0)[:1]
			srv.Populate("alice", msgs)
			dir := t.TempDir()
			md := filepath.Join(dir, "Maildir")
			cfg := writeAccount(t, nil, dir, acctSpec{user: "alice", addr: srv.PlainAddr(), tls: "starttls",
				deliver: maildirTo(md), extra: fmt.Sprintf("tls_ca_file = %q\nauth = %q", srv.CAFile(), auth)})
			mustRun(t, 0, "-c", cfg, "fetch")
			checkDelivered(t, maildirMessages(t, md), msgs)
		})
	}
	dir := t.TempDir()
	cfg := writeAccount(t, nil, dir, acctSpec{user: "nobody", addr: srv.PlainAddr(), tls: "starttls",
		deliver: maildirTo(filepath.Join(dir, "Maildir")), extra: fmt.Sprintf("tls_ca_file = %q", srv.CAFile())})
	checkExit(t, popfetch(t, nil, "-c", cfg, "fetch"), 77)
}

// startHideUTF8 starts a proxy to target that forwards everything but the
// "UTF8 USER" line of CAPA's answer, and returns its address.
func startHideUTF8(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { // client to server
				defer wg.Done()
				io.Copy(s, c)
				s.(*net.TCPConn).CloseWrite()
			}()
			go func() { // server to client, line by line
				defer wg.Done()
				defer c.Close()
				defer s.Close()
				r := bufio.NewReader(s)
				for {
					line, err := r.ReadBytes('\n')
					if string(line) != "UTF8 USER\r\n" {
						if _, werr := c.Write(line); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

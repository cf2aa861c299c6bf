package deliver

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/internal/smtpsink"
)

func TestSMTPAddresses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"localhost", "localhost:25"},
		{"localhost:2525", "localhost:2525"},
		{"127.0.0.1", "127.0.0.1:25"},
		{"[::1]", "[::1]:25"},
		{"[::1]:26", "[::1]:26"},
		{"mail.example.org:587", "mail.example.org:587"},
	} {
		got, err := SMTPAddress(c.in)
		if err != nil || got != c.want {
			t.Errorf("SMTPAddress(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ":25", "host:0", "host:99999", "host:x", "a b", "/x", "unix:/run/x"} {
		if got, err := SMTPAddress(bad); err == nil {
			t.Errorf("SMTPAddress(%q) = %q, want an error", bad, got)
		}
	}
	for _, c := range []struct{ in, network, addr string }{
		{"unix:/run/dovecot/lmtp", "unix", "/run/dovecot/lmtp"},
		{"127.0.0.1:24", "tcp", "127.0.0.1:24"},
		{"[::1]:24", "tcp", "[::1]:24"},
		{"lmtp.example.org:2003", "tcp", "lmtp.example.org:2003"},
	} {
		n, a, err := LMTPAddress(c.in)
		if err != nil || n != c.network || a != c.addr {
			t.Errorf("LMTPAddress(%q) = %q, %q, %v; want %q, %q", c.in, n, a, err, c.network, c.addr)
		}
	}
	for _, bad := range []string{"", "localhost", "unix:run/lmtp", "unix:", ":24", "host:0", "/run/lmtp"} {
		if n, a, err := LMTPAddress(bad); err == nil {
			t.Errorf("LMTPAddress(%q) = %q, %q, want an error", bad, n, a)
		}
	}
}

// sinkCheck compares what the sink received with the messages sent: each
// byte for byte as the POP3 client hands it over (mailgen.Canonical), in
// order, with the envelope taken from its Return-Path.
func sinkCheck(t *testing.T, got []smtpsink.Message, want [][]byte, rcpt string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("the sink received %d messages, want %d", len(got), len(want))
	}
	byID := map[string]smtpsink.Message{}
	for _, m := range got {
		byID[mailgen.ID(m.Data)] = m
	}
	for _, w := range want {
		id := mailgen.ID(w)
		g, ok := byID[id]
		if !ok {
			t.Errorf("message %s not received", id)
			continue
		}
		c := mailgen.Canonical(w)
		if !bytes.Equal(g.Data, c) {
			t.Errorf("message %s differs: got %d bytes, want %d, first difference at %d", id, len(g.Data), len(c), firstDiffAt(g.Data, c))
		}
		sender := bareSender(returnPath(c))
		if wantArgs := "<" + sender + ">"; !strings.HasPrefix(g.MailArgs, wantArgs+" ") && g.MailArgs != wantArgs {
			t.Errorf("message %s: MAIL FROM %q, want %s", id, g.MailArgs, wantArgs)
		}
		if len(g.Rcpts) != 1 || g.Rcpts[0] != "<"+rcpt+">" {
			t.Errorf("message %s: RCPT TO %q, want <%s>", id, g.Rcpts, rcpt)
		}
	}
}

func firstDiffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// returnPath returns the value of a message's Return-Path field, or "".
func returnPath(msg []byte) string {
	for _, line := range strings.Split(string(msg), "\n") {
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Return-Path:"); ok {
			return v
		}
	}
	return ""
}

// deliverAll delivers msgs as the engine would: the envelope sender from
// the Return-Path, the account's user as recipient.
func deliverAll(t *testing.T, tg Target, msgs [][]byte, user string) {
	t.Helper()
	for i, m := range msgs {
		c := mailgen.Canonical(m)
		if err := tg.Deliver(Envelope{Sender: returnPath(c), Recipient: user}, bytes.NewReader(c)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := tg.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// bigMessage is a message of about size bytes with dot lines, so the
// spool file and dot-stuffing are both used.
func bigMessage(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s\nReturn-Path: <big@example.org>\nSubject: big\n\n", mailgen.IDHeader, id)
	for i := 0; b.Len() < size; i++ {
		if i%40 == 3 {
			b.WriteString(".\n..\n.x\n")
		}
		fmt.Fprintf(&b, "line %07d of a big message \xc3\xa9\n", i)
	}
	return b.Bytes()
}

// TestSMTPSinkByteExact sends trap messages (dot lines, From lines, 8-bit
// bytes, lines of 20000 characters, no final newline, empty bodies) and
// messages larger than what is held in memory to Postfix's smtp-sink, over
// SMTP and over LMTP on a unix socket, and reads back what it received.
func TestSMTPSinkByteExact(t *testing.T) {
	msgs := mailgen.Traps(60, 14)
	msgs = append(msgs, bigMessage("big-1", 3<<20), bigMessage("big-2", smtpSpoolMemory), bigMessage("big-3", 200<<10))
	for _, lmtp := range []bool{false, true} {
		name := "smtp"
		if lmtp {
			name = "lmtp"
		}
		t.Run(name, func(t *testing.T) {
			var sink *smtpsink.Sink
			var tg *SMTP
			var err error
			if lmtp {
				sink = smtpsink.Start(t, smtpsink.LMTP())
				tg, err = OpenLMTP(sink.Addr(), SMTPOptions{})
			} else {
				sink = smtpsink.Start(t)
				tg, err = OpenSMTP(sink.Addr(), SMTPOptions{Recipient: "%T+popfetch@example.org"})
			}
			if err != nil {
				t.Fatal(err)
			}
			deliverAll(t, tg, msgs, "alice")
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			rcpt := "alice"
			if !lmtp {
				rcpt = "alice+popfetch@example.org"
			}
			sinkCheck(t, sink.Messages(), msgs, rcpt)
		})
	}
}

// TestSMTPRefusals: the server's answers decide what Deliver reports, and
// the connection stays usable after a refusal.
func TestSMTPRefusals(t *testing.T) {
	for _, c := range []struct {
		args      []string
		temporary bool
		dumped    bool // smtp-sink dumps a transaction that reached the end of the data
	}{
		{[]string{"-r", "."}, true, true},
		{[]string{"-f", "."}, false, true},
		{[]string{"-r", "MAIL"}, true, false},
		{[]string{"-f", "RCPT"}, false, false},
		{[]string{"-f", "DATA"}, false, false},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			sink := smtpsink.Start(t, smtpsink.Args(c.args...))
			tg, err := OpenSMTP(sink.Addr(), SMTPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			for i := range 3 {
				err := tg.Deliver(Envelope{Sender: "<a@example.org>", Recipient: "bob"}, strings.NewReader("Subject: x\n\nbody\n"))
				var de *Error
				var se *smtp.SMTPError
				if !errors.As(err, &de) || !de.MessageOnly || de.Temporary != c.temporary || de.Source || !errors.As(err, &se) {
					t.Fatalf("message %d: %#v (%v), want a refusal, temporary %v", i, err, err, c.temporary)
				}
				if wantCode := map[bool]int{true: 4, false: 5}[c.temporary]; se.Code/100 != wantCode {
					t.Fatalf("message %d: code %d", i, se.Code)
				}
			}
			if got := len(sink.Messages()); c.dumped != (got == 3) || !c.dumped && got != 0 {
				t.Fatalf("the sink dumped %d transactions", got)
			}
		})
	}
}

// TestSMTPNotSendable: a message that SMTP cannot carry unchanged is
// refused before anything is sent, and the next one goes through.
func TestSMTPNotSendable(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Args("-8")) // no 8BITMIME
	tg, err := OpenSMTP(sink.Addr(), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, m := range []string{
		"Subject: nul\n\nbefore\x00after\n",
		"Subject: cr\n\nbare\rcr\n",
		"Subject: crlf\n\nline ending in CR LF\r\n",
		"Subject: 8bit\n\ncaf\xc3\xa9\n",
		"Subject: late nul\n\n" + strings.Repeat("x", 300<<10) + "\x00\n",
	} {
		err := tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader(m))
		var de *Error
		if !errors.As(err, &de) || !de.MessageOnly || de.Temporary || de.Source {
			t.Fatalf("%.20q: %v, want a refusal of this message", m, err)
		}
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Fatalf("the sink received %d messages", len(got))
	}
	ok := "Subject: ascii\n\nplain\n"
	if err := tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader(ok)); err != nil {
		t.Fatal(err)
	}
	if got := sink.Messages(); len(got) != 1 || string(got[0].Data) != ok || got[0].MailArgs != "<>" {
		t.Fatalf("got %+v", got)
	}
}

// TestSMTPSourceFails: a message whose reading fails is never sent.
func TestSMTPSourceFails(t *testing.T) {
	sink := smtpsink.Start(t)
	tg, err := OpenSMTP(sink.Addr(), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	boom := errors.New("connection to the POP server lost")
	for _, size := range []int{10, 500 << 10} {
		r := io.MultiReader(strings.NewReader("Subject: cut\n\n"+strings.Repeat("y", size)), iotest.ErrReader(boom))
		err := tg.Deliver(Envelope{Recipient: "bob"}, r)
		var de *Error
		if !errors.As(err, &de) || !de.Source || !errors.Is(err, boom) {
			t.Fatalf("%v, want a Source error", err)
		}
	}
	if err := tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader("Subject: whole\n\n.\n")); err != nil {
		t.Fatal(err)
	}
	if got := sink.Messages(); len(got) != 1 || string(got[0].Data) != "Subject: whole\n\n.\n" {
		t.Fatalf("got %+v", got)
	}
}

// TestSMTPReconnectsAfterIdleClose: a server that closed the connection
// while popfetch was reading a large message gets a new one, and the
// message is sent once.
func TestSMTPReconnectsAfterIdleClose(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Args("-t", "1"))
	var trace bytes.Buffer
	log := slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tg, err := OpenSMTP(sink.Addr(), SMTPOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	msgs := [][]byte{[]byte("X-Mailgen-Id: a\n\none\n"), []byte("X-Mailgen-Id: b\n\ntwo\n")}
	deliverAll(t, tg, msgs[:1], "bob")
	time.Sleep(2500 * time.Millisecond) // smtp-sink's -t 1 closes the idle connection
	deliverAll(t, tg, msgs[1:], "bob")
	sinkCheck(t, sink.Messages(), msgs, "bob")
	if !strings.Contains(trace.String(), "closed while idle") {
		t.Fatalf("no new connection was needed:\n%s", trace.String())
	}
}

// peer is a scripted SMTP/LMTP server for what smtp-sink cannot do
// (SMTPUTF8, STARTTLS, a cut after the data of one transaction only).
type peer struct {
	t      *testing.T
	ln     net.Listener
	caps   []string
	tls    *tls.Config
	onData func(n int) string // the answer to the n-th end of data; "" hangs up
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns int
	txs   []peerTx
}

type peerTx struct {
	mail, rcpt string
	data       []byte
	tls        bool
}

func startPeer(t *testing.T, p *peer) *peer {
	p.t = t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *peer) addr() string { return p.ln.Addr().String() }

func (p *peer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	say := func(s string) { io.WriteString(c, s+"\r\n") }
	say("220 peer ready")
	var tx peerTx
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO" || verb == "LHLO":
			caps := p.caps
			if secure {
				caps = slicesWithout(caps, "STARTTLS")
			}
			say("250-peer.example.org")
			for _, cp := range caps {
				say("250-" + cp)
			}
			say("250 ENHANCEDSTATUSCODES")
		case verb == "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, p.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, r, secure = tc, bufio.NewReader(tc), true
			say = func(s string) { io.WriteString(c, s+"\r\n") }
		case verb == "MAIL":
			tx = peerTx{mail: line, tls: secure}
			say("250 2.1.0 ok")
		case verb == "RCPT":
			tx.rcpt = line
			say("250 2.1.5 ok")
		case verb == "DATA":
			say("354 go on")
			var data []byte
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				l = strings.TrimPrefix(l, ".")
				data = append(data, strings.TrimSuffix(l, "\r\n")+"\n"...)
			}
			tx.data = data
			p.mu.Lock()
			p.txs = append(p.txs, tx)
			n := len(p.txs)
			p.mu.Unlock()
			answer := "250 2.0.0 queued"
			if p.onData != nil {
				answer = p.onData(n)
			}
			if answer == "" {
				return // hang up without an answer
			}
			say(answer)
		case verb == "RSET" || verb == "NOOP":
			say("250 ok")
		case verb == "QUIT":
			say("221 bye")
			return
		default:
			say("500 what")
		}
	}
}

func slicesWithout(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func (p *peer) transactions() []peerTx {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]peerTx(nil), p.txs...)
}

// TestSMTPCutAfterData: a connection that ends after the data and before
// the answer leaves the message undelivered as far as popfetch knows
// (Temporary, MessageOnly), and the next message gets a new connection.
func TestSMTPCutAfterData(t *testing.T) {
	p := startPeer(t, &peer{caps: []string{"8BITMIME"}, onData: func(n int) string {
		if n == 1 {
			return ""
		}
		return "250 2.0.0 queued"
	}})
	tg, err := OpenSMTP(p.addr(), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	err = tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader("Subject: one\n\n1\n"))
	var de *Error
	if !errors.As(err, &de) || !de.MessageOnly || !de.Temporary || !strings.Contains(err.Error(), "may or may not") {
		t.Fatalf("%v, want an unconfirmed delivery", err)
	}
	if err := tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader("Subject: two\n\n2\n")); err != nil {
		t.Fatal(err)
	}
	if txs := p.transactions(); len(txs) != 2 || string(txs[1].data) != "Subject: two\n\n2\n" || p.conns != 2 {
		t.Fatalf("%d connections, transactions %+v", p.conns, txs)
	}
}

// TestSMTPUTF8: SMTPUTF8 is asked for a message whose header holds 8-bit
// bytes, and only then; BODY=8BITMIME for all.
func TestSMTPUTF8(t *testing.T) {
	p := startPeer(t, &peer{caps: []string{"8BITMIME", "SMTPUTF8", "SIZE 100000"}})
	tg, err := OpenSMTP(p.addr(), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	msgs := []string{
		"Subject: caf\xc3\xa9\n\nbody\n",
		"Subject: plain\n\ncaf\xc3\xa9\n",
		"Subject: plain\n\nascii\n",
	}
	for _, m := range msgs {
		if err := tg.Deliver(Envelope{Sender: "<a@example.org>", Recipient: "bob"}, strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	txs := p.transactions()
	want := []string{
		"MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=24 SMTPUTF8",
		"MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=25",
		"MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=25",
	}
	for i := range msgs {
		if txs[i].mail != want[i] || string(txs[i].data) != msgs[i] {
			t.Errorf("message %d: %q, %q; want %q", i, txs[i].mail, txs[i].data, want[i])
		}
	}
}

// TestSMTPStartTLS: STARTTLS is used when offered; on loopback a
// certificate no CA signed is accepted.
func TestSMTPStartTLS(t *testing.T) {
	p := startPeer(t, &peer{caps: []string{"STARTTLS", "8BITMIME"}, tls: selfSigned(t)})
	var trace bytes.Buffer
	log := slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tg, err := OpenSMTP(p.addr(), SMTPOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: secret\n\nthe message body\n"
	if err := tg.Deliver(Envelope{Recipient: "bob"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	tg.Close()
	txs := p.transactions()
	if len(txs) != 1 || !txs[0].tls || string(txs[0].data) != msg {
		t.Fatalf("%+v", txs)
	}
	if !strings.Contains(trace.String(), "TLS started") || strings.Contains(trace.String(), "message body") {
		t.Fatalf("trace:\n%s", trace.String())
	}
}

func selfSigned(t *testing.T) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"mx.example.org"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestSMTPUnreachable: no server is a temporary failure of the target, not
// of a message.
func TestSMTPUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = OpenSMTP(addr, SMTPOptions{})
	var de *Error
	if !errors.As(err, &de) || !de.Temporary || de.MessageOnly {
		t.Fatalf("%v", err)
	}
	_, err = OpenLMTP("unix:/nonexistent/lmtp", SMTPOptions{})
	if !errors.As(err, &de) || !de.Temporary || de.MessageOnly {
		t.Fatalf("%v", err)
	}
}

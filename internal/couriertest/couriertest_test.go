package couriertest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// sample returns n small messages with ASCII headers.
func sample(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "From: a@example.org\nSubject: message %d\n\nbody of message %d\n.\n..two dots\nFrom the middle\n", i+1, i+1)
	}
	return msgs
}

// TestServes: the messages are served as stored, in the order they were
// added, each with a UID of Courier's, and CAPA lists UTF8 and STLS.
func TestServes(t *testing.T) {
	srv := Start(t, WithUser("alice", "secret"))
	srv.Populate("alice", sample(3))
	stored := srv.Messages("alice")
	if len(stored) != 3 {
		t.Fatalf("Messages: %d, want 3", len(stored))
	}
	r := srv.Session("alice", "secret", Dialog{Hangup: true}, "CAPA", "UIDL", "RETR 2", "TOP 3 0", "RETR 4")
	if capa := r[0].Lines(); !slices.Contains(capa, "UTF8 USER") || !slices.Contains(capa, "STLS") {
		t.Errorf("CAPA lacks UTF8 USER or STLS: %q", capa)
	}
	if uidl := r[1].Lines(); len(uidl) != 3 || !strings.HasPrefix(uidl[0], "1 UID1-") {
		t.Errorf("UIDL: %q, want 3 of Courier's UIDs", uidl)
	}
	if !bytes.Equal(r[2].Data, stored[1]) {
		t.Errorf("RETR 2 sent\n%q\nwant what is stored\n%q", r[2].Data, stored[1])
	}
	head, _, _ := bytes.Cut(stored[2], []byte("\n\n"))
	if want := append(head, "\n\n"...); !bytes.Equal(r[3].Data, want) {
		t.Errorf("TOP 3 0 sent %q, want the header %q", r[3].Data, want)
	}
	if r[4].OK() {
		t.Errorf("RETR 4 of 3: %q", r[4].Status)
	}
	if !slices.EqualFunc(srv.Messages("alice"), stored, bytes.Equal) {
		t.Error("a session that ended without QUIT changed the stored messages")
	}
}

// TestPrivate: the server's mounts are in its own namespace only (none
// shows here), and its authdaemond read the private authdaemonrc (the
// system's, if there is one, lists other modules).
func TestPrivate(t *testing.T) {
	srv := Start(t, WithUser("alice", "secret"))
	srv.Stat("alice", "secret")
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mounts, []byte(srv.Dir())) {
		t.Errorf("a mount of the server's directory is visible outside its namespace:\n%s", mounts)
	}
	if !strings.Contains(srv.Log(), `modules="authuserdb"`) {
		t.Errorf("authdaemond did not read the private authdaemonrc:\n%s", srv.Log())
	}
}

// TestUTF8: a message with 8-bit bytes in its header, UTF-8 or not, is
// sent wrapped in Courier's "Cannot display Unicode content" message to a
// session that did not send UTF8, and as stored to one that did; 8-bit
// bytes in the body alone change nothing. This is what popfetch's UTF8
// command is for, on the real server.
func TestUTF8(t *testing.T) {
	srv := Start(t, WithUser("bob", "secret"))
	msgs := [][]byte{
		[]byte("Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\nFrom: J\xc3\xbcrgen <j@example.de>\n\nHallo\n"),
		[]byte("Subject: latin-1 \xe9t\xe9\n\n.\n..\n"),
		[]byte("Subject: ascii header\n\n8-bit body: caf\xc3\xa9 \xff\n"),
	}
	srv.Populate("bob", msgs)
	for _, utf8 := range []bool{false, true} {
		r := srv.Session("bob", "secret", Dialog{UTF8: utf8, Hangup: true}, "RETR 1", "RETR 2", "RETR 3", "TOP 1 0")
		for i, m := range msgs {
			wrapped := !bytes.Equal(r[i].Data, m)
			if want := !utf8 && i < 2; wrapped != want {
				t.Errorf("UTF8 sent %v: RETR %d sent\n%q\nwant it wrapped %v", utf8, i+1, r[i].Data, want)
			}
			if wrapped && (!bytes.Contains(r[i].Data, []byte("Cannot display Unicode content")) ||
				!bytes.Contains(r[i].Data, append([]byte("Content-Type: message/global\n\n"), m...))) {
				t.Errorf("RETR %d: not Courier's wrapper around the message:\n%q", i+1, r[i].Data)
			}
		}
		if hasSubject := bytes.Contains(r[3].Data, []byte("Subject: Gr\xc3\xbc")); hasSubject != utf8 {
			t.Errorf("UTF8 sent %v: TOP 1 0 sent %q", utf8, r[3].Data)
		}
	}
	if !slices.EqualFunc(srv.Messages("bob"), msgs, bytes.Equal) {
		t.Error("the stored messages changed")
	}
}

// TestDeleteAndQuit: what DELE marked is gone once the session ends with
// QUIT, and Count sees it at once (courierpop3d removes it after its
// answer to QUIT); a hang-up removes nothing.
func TestDeleteAndQuit(t *testing.T) {
	srv := Start(t, WithUser("carol", "secret"))
	srv.Populate("carol", sample(4))
	all := srv.Messages("carol")
	srv.Session("carol", "secret", Dialog{Hangup: true}, "DELE 1")
	if n := srv.Count("carol"); n != 4 {
		t.Fatalf("DELE then a hang-up: %d messages, want 4", n)
	}
	srv.Session("carol", "secret", Dialog{}, "RETR 2", "DELE 1", "DELE 3")
	if got := srv.Messages("carol"); !slices.EqualFunc(got, [][]byte{all[1], all[3]}, bytes.Equal) {
		t.Fatalf("DELE 1 and 3 then QUIT: %d messages left, want messages 2 and 4", len(got))
	}
	wire := len(all[1]) + bytes.Count(all[1], []byte("\n")) + len(all[3]) + bytes.Count(all[3], []byte("\n"))
	if n, octets := srv.Stat("carol", "secret"); n != 2 || octets != int64(wire) {
		t.Fatalf("STAT: %d %d, want 2 messages of their size with CRLF", n, octets)
	}
}

// TestTLS: the implicit-TLS port and STLS on the plain port present the
// certificate of the private CA, and a login over each works.
func TestTLS(t *testing.T) {
	srv := Start(t, WithUser("dave", "secret"))
	login := func(c net.Conn, r *bufio.Reader) {
		t.Helper()
		for _, cmd := range []string{"USER dave", "PASS secret", "STAT", "QUIT"} {
			fmt.Fprintf(c, "%s\r\n", cmd)
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "+OK") {
				t.Fatalf("%s: %q %v", cmd, line, err)
			}
		}
	}

	c, err := tls.Dial("tcp", srv.TLSAddr(), srv.ClientTLSConfig())
	if err != nil {
		t.Fatalf("implicit TLS: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if g, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting over TLS: %q %v", g, err)
	}
	login(c, r)

	p, err := net.Dial("tcp", srv.PlainAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_ = p.SetDeadline(time.Now().Add(20 * time.Second))
	r = bufio.NewReader(p)
	r.ReadString('\n')
	fmt.Fprintf(p, "STLS\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("STLS: %q %v", line, err)
	}
	tc := tls.Client(p, srv.ClientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STLS handshake: %v", err)
	}
	if fp := srv.Fingerprint(); !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		t.Errorf("Fingerprint: %q", fp)
	}
	login(tc, bufio.NewReader(tc))
}

// TestWrongPassword: a wrong password and an unknown user are refused
// (each after Courier's 5 s pause: both at once).
func TestWrongPassword(t *testing.T) {
	srv := Start(t, WithUser("erin", "secret"))
	logins := [][2]string{{"erin", "wrong"}, {"nobody", "secret"}}
	errs := make(chan error, len(logins))
	for _, u := range logins {
		go func() {
			_, err := srv.session(u[0], u[1], Dialog{}, nil)
			if err == nil || !strings.Contains(err.Error(), "-ERR") {
				err = fmt.Errorf("login as %s/%s: %v, want -ERR", u[0], u[1], err)
			} else {
				err = nil
			}
			errs <- err
		}()
	}
	for range logins {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestStop: Stop ends every process of the server, the sessions in
// progress on both listeners included (couriertcpd puts the implicit-TLS
// listener and its sessions in a process group of their own), and
// nothing else.
func TestStop(t *testing.T) {
	srv := Start(t, WithUser("frank", "secret"))
	other := Start(t, WithUser("frank", "secret"))
	var conns []net.Conn
	for _, dial := range []func() (net.Conn, error){
		func() (net.Conn, error) { return tls.Dial("tcp", srv.TLSAddr(), srv.ClientTLSConfig()) },
		func() (net.Conn, error) { return net.Dial("tcp", srv.PlainAddr()) },
	} {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		for _, cmd := range []string{"", "USER frank", "PASS secret"} {
			if cmd != "" {
				fmt.Fprintf(c, "%s\r\n", cmd)
			}
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
				t.Fatalf("%q: %q %v", cmd, line, err)
			}
		}
		conns = append(conns, c)
	}
	if !sessionsRunning(srv.ns) {
		t.Fatal("no session process found for the two sessions")
	}
	srv.Stop()
	if ps := procsIn(srv.ns); len(ps) > 0 {
		t.Fatalf("after Stop these still run: %v", ps)
	}
	for i, c := range conns {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("session %d: still open after Stop", i)
		}
	}
	other.Stat("frank", "secret") // the other server is untouched
}

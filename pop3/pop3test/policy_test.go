package pop3test_test

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// uids returns the UIDs of the messages on the server.
func uids(mb *pop3test.Mailbox) []string {
	var out []string
	for _, m := range mb.Messages() {
		out = append(out, m.UID)
	}
	return out
}

// removals returns "UID reason session" for each message removed.
func removals(mb *pop3test.Mailbox) []string {
	var out []string
	for _, r := range mb.Removed() {
		out = append(out, r.UID+" "+r.Reason.String()+" "+string(rune('0'+r.Session)))
	}
	return out
}

func fourMessages(mb *pop3test.Mailbox) {
	for _, s := range []string{"one", "two", "three", "four"} {
		mb.Add([]byte("Subject: " + s + "\n\nbody " + s + "\n"))
	}
}

// capaLines returns the CAPA listing of a logged-in session.
func capaLines(c *conn) string {
	c.ok("CAPA")
	return c.multi()
}

// TestExpireRetrieved: with EXPIRE 0, a QUIT removes what RETR and TOP
// sent, DELE or not, besides what DELE marked; CAPA says so.
func TestExpireRetrieved(t *testing.T) {
	for _, spelling := range []string{"", "EXPIRE0"} {
		s := pop3test.NewServer()
		s.Retention = pop3test.ExpireRetrieved
		s.ExpireCapa = spelling
		mb := s.AddUser("alice", "secret")
		fourMessages(mb)
		start(t, s)
		c := login(t, s)
		want := "EXPIRE 0\r\n"
		if spelling != "" {
			want = spelling + "\r\n"
		}
		if caps := capaLines(c); !strings.Contains(caps, want) {
			t.Fatalf("CAPA lacks %q: %q", want, caps)
		}
		c.ok("RETR 1")
		c.multi()
		c.ok("TOP 2 0")
		c.multi()
		c.ok("DELE 3")
		c.ok("QUIT")
		s.Close()
		if got := uids(mb); !reflect.DeepEqual(got, []string{"pt00000004"}) {
			t.Fatalf("left %v", got)
		}
		if got, want := removals(mb), []string{"pt00000001 expired 1", "pt00000002 expired 1", "pt00000003 deleted 1"}; !sameSet(got, want) {
			t.Fatalf("removals %v, want %v", got, want)
		}
		if l := s.Log()[0]; !l.Updated || l.End != "quit" || l.User != "alice" || len(l.Retrieved) != 2 || len(l.Requested) != 2 {
			t.Fatalf("log %+v", l)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestRetentionNeedsQuit: a session that ends without QUIT changes
// nothing, whatever it retrieved (RFC 1939 §6).
func TestRetentionNeedsQuit(t *testing.T) {
	for _, ret := range []pop3test.Retention{pop3test.ExpireRetrieved, pop3test.HideRetrieved} {
		s := pop3test.NewServer()
		s.Retention = ret
		mb := s.AddUser("alice", "secret")
		fourMessages(mb)
		start(t, s)
		c := login(t, s)
		c.ok("RETR 1")
		c.multi()
		c.ok("DELE 2")
		c.c.Close()
		idle(s)
		s.Close()
		if mb.Len() != 4 || len(mb.Removed()) != 0 {
			t.Fatalf("retention %d: %v left, removed %v", ret, uids(mb), removals(mb))
		}
		if l := s.Log()[0]; l.Updated || l.End != "client hung up" {
			t.Fatalf("log %+v", l)
		}
	}
}

// TestHideRetrieved: Gmail-like, a QUIT hides what RETR sent (not TOP)
// from later sessions; nothing in CAPA says so.
func TestHideRetrieved(t *testing.T) {
	s := pop3test.NewServer()
	s.Retention = pop3test.HideRetrieved
	mb := s.AddUser("alice", "secret")
	fourMessages(mb)
	start(t, s)
	c := login(t, s)
	if caps := capaLines(c); strings.Contains(caps, "EXPIRE") {
		t.Fatalf("CAPA: %q", caps)
	}
	c.ok("RETR 1")
	c.multi()
	c.ok("TOP 2 0")
	c.multi()
	c.ok("RETR 3")
	c.multi()
	c.ok("DELE 3")
	c.ok("QUIT")
	c = login(t, s)
	c.ok("UIDL")
	if got := c.multi(); got != "1 pt00000002\r\n2 pt00000004\r\n" {
		t.Fatalf("second session lists %q", got)
	}
	c.ok("QUIT")
	s.Close()
	if got, want := removals(mb), []string{"pt00000001 hidden 1", "pt00000003 deleted 1"}; !sameSet(got, want) {
		t.Fatalf("removals %v, want %v", got, want)
	}
}

// TestReuseUIDs: a new message takes the UID of one removed before.
func TestReuseUIDs(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.ReuseUIDs = true
	fourMessages(mb)
	start(t, s)
	c := login(t, s)
	c.ok("DELE 2")
	c.ok("QUIT")
	mb.Add([]byte("Subject: five\n\n"))
	mb.Add([]byte("Subject: six\n\n"))
	want := []string{"pt00000001", "pt00000003", "pt00000004", "pt00000002", "pt00000005"}
	if got := uids(mb); !reflect.DeepEqual(got, want) {
		t.Fatalf("UIDs %v, want %v", got, want)
	}
	if got := string(mb.Messages()[3].Data); got != "Subject: five\n\n" {
		t.Fatalf("message with the reused UID: %q", got)
	}
}

// TestRenameUIDs: the scheme changes at the next session; one running
// goes on with the old UIDs.
func TestRenameUIDs(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("one\n"))
	start(t, s)
	c := login(t, s)
	mb.RenameUIDs("v2-")
	mb.Add([]byte("two\n"))
	c.ok("UIDL")
	if got := c.multi(); got != "1 pt00000001\r\n" {
		t.Fatalf("running session: %q", got)
	}
	c.ok("QUIT")
	c = login(t, s)
	c.ok("UIDL")
	if got := c.multi(); got != "1 v2-pt00000001\r\n2 v2-pt00000002\r\n" {
		t.Fatalf("next session: %q", got)
	}
	c.ok("QUIT")
	mb.Add([]byte("three\n"))
	if got := uids(mb); got[2] != "v2-pt00000003" {
		t.Fatalf("UIDs %v", got)
	}
}

// TestLockStep: without PIPELINING each answer goes out before the next
// command is read, even when part of the next command has come.
func TestLockStep(t *testing.T) {
	s := pop3test.NewServer()
	s.Faults.HideCaps = []string{"PIPELINING", "UIDL"}
	fourMessages(s.AddUser("alice", "secret"))
	start(t, s)
	c := login(t, s)
	if caps := capaLines(c); strings.Contains(caps, "PIPELINING") || strings.Contains(caps, "UIDL") {
		t.Fatalf("CAPA: %q", caps)
	}
	if got := c.cmd("UIDL"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("UIDL: %q", got)
	}
	// The rest of NOOP never comes: the answer to STAT must not wait
	// for it.
	io.WriteString(c.c, "STAT\r\nNO")
	if got := c.line(); got != "+OK 4 110" {
		t.Fatalf("STAT: %q", got)
	}
	io.WriteString(c.c, "OP\r\n")
	c.line()
	if n := s.EarlyCommands(); n != 1 {
		t.Fatalf("%d early commands, want 1", n)
	}
}

// TestRefuse: refused RETR and DELE have no effect; a refused QUIT ends
// the session and removes nothing.
func TestRefuse(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	fourMessages(mb)
	s.Faults.Refuse = func(cmd string, m *pop3test.Message) bool {
		switch cmd {
		case "RETR":
			return m.UID == "pt00000002"
		case "DELE":
			return m.UID == "pt00000001"
		}
		return cmd == "QUIT"
	}
	start(t, s)
	c := login(t, s)
	if got := c.cmd("RETR 2"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("RETR 2: %q", got)
	}
	c.ok("RETR 1")
	c.multi()
	if got := c.cmd("DELE 1"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("DELE 1: %q", got)
	}
	c.ok("DELE 3")
	if got := c.cmd("LIST"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("LIST: %q", got)
	}
	if got := c.multi(); got != "1 26\r\n2 26\r\n4 28\r\n" {
		t.Fatalf("LIST: %q", got)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("QUIT: %q", got)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("session goes on after a refused QUIT: %v", err)
	}
	s.Close()
	if mb.Len() != 4 {
		t.Fatalf("left %v", uids(mb))
	}
	if l := s.Log()[0]; l.Updated || l.End != "quit refused" || len(l.Retrieved) != 1 || len(l.Requested) != 2 {
		t.Fatalf("log %+v", l)
	}
}

// TestRefuseLogin: the line given is the answer to good credentials, and
// the maildrop stays free.
func TestRefuseLogin(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret")
	refuse := true
	s.Faults.RefuseLogin = func(user string) string {
		if refuse && user == "alice" {
			return "-ERR [SYS/TEMP] try again later"
		}
		return ""
	}
	start(t, s)
	c := dial(t, s)
	c.line()
	c.ok("USER alice")
	if got := c.cmd("PASS secret"); got != "-ERR [SYS/TEMP] try again later" {
		t.Fatalf("PASS: %q", got)
	}
	if got := c.cmd("STAT"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("STAT after a refused login: %q", got)
	}
	refuse = false
	c.ok("USER alice")
	c.ok("PASS secret")
}

// idle waits until the server has seen every session end.
func idle(s *pop3test.Server) {
	for s.Active() > 0 {
		time.Sleep(time.Millisecond)
	}
}

// faultySession starts a server with one message and the fault, runs
// USER, PASS, RETR 1, DELE 1, QUIT pipelined, and returns all the client
// received, the session's log and the messages left.
func faultySession(t *testing.T, fault *pop3test.NetFault) (string, pop3test.SessionLog, int) {
	t.Helper()
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	mb.Add([]byte("Subject: one\n\nbody\n"))
	s.Faults.Net = func(int) *pop3test.NetFault { return fault }
	start(t, s)
	c := dial(t, s)
	io.WriteString(c.c, "USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")
	got, _ := io.ReadAll(c.br) // a reset ends it too
	idle(s)
	return string(got), s.Log()[0], mb.Len()
}

// TestNetFaultSent: the client receives exactly After octets of what it
// would have, then the connection ends. The server reads the pipelined
// commands before its answers go out, so a cut after the greeting finds
// QUIT's UPDATE done: its answer is what is lost.
func TestNetFaultSent(t *testing.T) {
	full, _, _ := faultySession(t, nil)
	greeting := strings.Index(full, "\r\n") + 2
	bye := strings.LastIndex(full, "+OK bye")
	for _, after := range []int{0, 5, greeting - 1, greeting, greeting + 40, bye, bye + 3, len(full) - 1} {
		got, l, left := faultySession(t, &pop3test.NetFault{After: int64(after)})
		// The greeting's timestamp differs from session to session.
		if len(got) != after || got[min(greeting, after):] != full[min(greeting, after):after] {
			t.Fatalf("after %d: got %q, want %q", after, got, full[:after])
		}
		committed := after >= greeting
		if !l.Struck || l.Updated != committed || (left == 0) != committed || l.End != map[bool]string{true: "quit", false: "dropped"}[committed] {
			t.Fatalf("after %d: log %+v, %d messages left", after, l, left)
		}
	}
}

// TestNetFaultReceived: the server reads exactly After octets; a QUIT cut
// short commits nothing.
func TestNetFaultReceived(t *testing.T) {
	cmds := "USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n"
	for _, after := range []int{0, 11, len(cmds) - 1, len(cmds)} {
		_, l, left := faultySession(t, &pop3test.NetFault{Received: true, After: int64(after)})
		var want []string
		for _, line := range strings.SplitAfter(cmds[:after], "\r\n") {
			if strings.HasSuffix(line, "\r\n") {
				want = append(want, strings.TrimSuffix(line, "\r\n"))
			}
		}
		if !reflect.DeepEqual(l.Commands, want) && !(len(want) == 0 && len(l.Commands) == 0) {
			t.Fatalf("after %d: commands %q, want %q", after, l.Commands, want)
		}
		if committed := after == len(cmds); l.Updated != committed || (left == 0) != committed {
			t.Fatalf("after %d: log %+v, %d left", after, l, left)
		}
	}
}

// TestNetFaultStall: the server goes silent after After octets; Close
// ends the stall at once.
func TestNetFaultStall(t *testing.T) {
	s := pop3test.NewServer()
	s.AddUser("alice", "secret").Add([]byte("one\n"))
	s.Faults.Net = func(int) *pop3test.NetFault { return &pop3test.NetFault{After: 10, Stall: time.Hour} }
	start(t, s)
	c := dial(t, s)
	head := make([]byte, 10)
	if _, err := io.ReadFull(c.br, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Close()
	}()
	rest, _ := io.ReadAll(c.br)
	if len(rest) != 0 {
		t.Fatalf("got %q after the stall", rest)
	}
}

// TestDropSessions: dropped sessions commit nothing, later ones work.
func TestDropSessions(t *testing.T) {
	s := pop3test.NewServer()
	mb := s.AddUser("alice", "secret")
	fourMessages(mb)
	start(t, s)
	c := login(t, s)
	c.ok("DELE 1")
	s.DropSessions()
	io.WriteString(c.c, "QUIT\r\n")
	if got, _ := io.ReadAll(c.br); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
	idle(s)
	if mb.Len() != 4 {
		t.Fatalf("left %v", uids(mb))
	}
	c = login(t, s)
	c.ok("DELE 1")
	c.ok("QUIT")
	if mb.Len() != 3 {
		t.Fatalf("left %v", uids(mb))
	}
	log := s.Log()
	if len(log) != 2 || log[0].End != "dropped" || log[1].End != "quit" ||
		!reflect.DeepEqual(log[1].Commands, []string{"USER alice", "PASS secret", "DELE 1", "QUIT"}) {
		t.Fatalf("log %+v", log)
	}
}

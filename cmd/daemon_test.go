package cmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3/pop3test"
)

// TestBackoff: the daemon's wait after a round doubles with each failure
// in a row, stops at an hour, and is never shorter than the server's
// LOGIN-DELAY.
func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		interval   time.Duration
		failures   int
		loginDelay time.Duration
		want       time.Duration
	}{
		{5 * time.Minute, 0, 0, 5 * time.Minute},
		{5 * time.Minute, 1, 0, 5 * time.Minute},
		{5 * time.Minute, 2, 0, 10 * time.Minute},
		{5 * time.Minute, 3, 0, 20 * time.Minute},
		{5 * time.Minute, 5, 0, time.Hour},
		{5 * time.Minute, 50, 0, time.Hour},
		{2 * time.Hour, 3, 0, 2 * time.Hour}, // an interval above the cap stays
		{time.Minute, 0, 15 * time.Minute, 15 * time.Minute},
		{time.Minute, 2, 15 * time.Minute, 15 * time.Minute},
	} {
		if got := backoff(c.interval, c.failures, c.loginDelay); got != c.want {
			t.Errorf("backoff(%v, %d, %v) = %v, want %v", c.interval, c.failures, c.loginDelay, got, c.want)
		}
	}
}

// A stalled server holds only its own account: the daemon polls each
// account on its own schedule, so a good account at a short interval is
// polled again and again while the other's session hangs. Before, accounts
// were polled in rounds, and the good one waited for the stalled one.
func TestDaemonStalledAccountDelaysNoOther(t *testing.T) {
	e := newCLIEnv(t)
	good := e.add("good", "")
	good.mb.Add(testMessage(1))

	stalled := pop3test.NewServer()
	stalled.AddUser("slow", "pw").Add(testMessage(2))
	stalled.Faults.Interrupt = func(cmd string, _ []string) *pop3test.Interrupt {
		if cmd == "UIDL" {
			return &pop3test.Interrupt{Stall: 10 * time.Minute} // ended by Close
		}
		return nil
	}
	if err := stalled.StartTLS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stalled.Close)
	host, port, _ := net.SplitHostPort(stalled.Addr())
	e.setConfig(readFile(t, e.config) + fmt.Sprintf("\n[[account]]\nname = \"stalled\"\nhost = %q\nport = %s\n"+
		"user = \"slow\"\npassword = \"pw\"\ntls_ca_file = %q\ntimeout = \"5m\"\n[account.deliver]\nmaildir = %q\n",
		host, port, e.ca, filepath.Join(e.dir, "Maildir-stalled")))

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"popfetch", "-c", e.config, "daemon", "--interval", "1s"}, &out, &errb)
	}()
	deadline := time.Now().Add(time.Minute)
	for e.srv.Sessions() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	polls := e.srv.Sessions()
	stalledSessions := stalled.Sessions()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("daemon: exit %d\n%s", code, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the daemon did not end when its context did")
	}
	if polls < 3 {
		t.Errorf("the good account was polled %d times while the other stalled", polls)
	}
	if stalledSessions != 1 {
		t.Errorf("the stalled account had %d sessions, want the one that hangs", stalledSessions)
	}
	if n := e.delivered(good); n != 1 {
		t.Errorf("%d messages delivered for the good account", n)
	}
}

package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/pop3"
	"github.com/popfetch/popfetch/pop3/pop3test"
	"github.com/popfetch/popfetch/uidcache"
)

func TestCheckIsWhatRunWouldFetch(t *testing.T) {
	f := newFixture(t, 5)
	f.acct.Keep = true
	f.acct.MaxMessages = 3
	opts := Options{Account: f.acct, Credentials: staticCreds{password: "secret"}}

	var headers []string
	f.start(t)
	res, err := Check(context.Background(), opts, func(m NewMessage, r io.Reader) error {
		b, err := io.ReadAll(r)
		headers = append(headers, m.UID+" "+strings.SplitN(string(b), "\n", 3)[1])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.mb.Messages()
	if res.Listed != 5 || len(res.New) != 3 || res.NewBytes != msgs[0].Size()+msgs[1].Size()+msgs[2].Size() {
		t.Errorf("%+v", res)
	}
	want := []string{msgs[0].UID + " Subject: message 0", msgs[1].UID + " Subject: message 1", msgs[2].UID + " Subject: message 2"}
	if strings.Join(headers, "|") != strings.Join(want, "|") {
		t.Errorf("headers %q, want %q", headers, want)
	}
	if _, err := os.Stat(filepath.Join(f.acct.StateDir, uidcache.FileName(f.acct.Key()))); !os.IsNotExist(err) {
		t.Errorf("Check wrote a cache: %v", err)
	}
	if f.srv.Active() != 0 {
		t.Error("Check returned before the server saw its hang-up")
	}

	run, err := f.run(t, Options{})
	if err != nil || run.Fetched != 3 {
		t.Fatalf("%+v %v", run, err)
	}
	if res, err = Check(context.Background(), opts, nil); err != nil || len(res.New) != 2 {
		t.Errorf("after fetching 3: %+v %v", res, err)
	}
}

func TestCheckHeaderFuncError(t *testing.T) {
	f := newFixture(t, 3)
	boom := errors.New("boom")
	f.start(t)
	_, err := Check(context.Background(), Options{Account: f.acct, Credentials: staticCreds{password: "secret"}},
		func(NewMessage, io.Reader) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	if f.mb.Len() != 3 {
		t.Errorf("%d messages left", f.mb.Len())
	}
}

func TestForget(t *testing.T) {
	f := newFixture(t, 0)
	c, err := uidcache.Open(f.acct.StateDir, f.acct.Key())
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"a", "b", "c"} {
		c.Put(uid, uidcache.Entry{Seen: time.Now(), State: uidcache.Retrieved})
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	var unknown *UnknownUIDError
	if n, err := Forget(f.acct, []string{"a", "x"}); !errors.As(err, &unknown) || n != 0 || len(unknown.UIDs) != 1 || unknown.UIDs[0] != "x" {
		t.Errorf("Forget(a, x) = %d, %v", n, err)
	}
	if n, err := Forget(f.acct, []string{"b"}); n != 1 || err != nil {
		t.Errorf("Forget(b) = %d, %v", n, err)
	}
	if n, err := Forget(f.acct, nil); n != 2 || err != nil {
		t.Errorf("Forget() = %d, %v", n, err)
	}
	c, _ = uidcache.Open(f.acct.StateDir, f.acct.Key())
	if c.Len() != 0 {
		t.Errorf("%d UIDs left", c.Len())
	}
	lock, err := lockAccount(nil, f.acct.StateDir, f.acct.Key())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := Forget(f.acct, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("locked: %v", err)
	}
}

// A server that answers TOP n 0 with an endless header is cut off after
// maxTopOctets: the check fails with a protocol error and the session is
// dropped, instead of reading for as long as the server sends.
func TestCheckEndlessHeader(t *testing.T) {
	f := newFixture(t, 2)
	f.srv.Faults.Interrupt = func(cmd string, args []string) *pop3test.Interrupt {
		if cmd == "TOP" && args[0] == "2" {
			return &pop3test.Interrupt{After: len("+OK\r\n"), Flood: []byte("X-Long: " + strings.Repeat("a", 1000) + "\r\n")}
		}
		return nil
	}
	f.start(t)
	var got []int64
	_, err := Check(context.Background(), Options{Account: f.acct, Credentials: staticCreds{password: "secret"}},
		func(m NewMessage, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			got = append(got, n)
			return err
		})
	var pe *pop3.ProtocolError
	if !errors.As(err, &pe) || pe.Command != "TOP" || !strings.Contains(pe.Msg, "the header of message 2") ||
		!strings.Contains(pe.Msg, "is longer than 1048576 octets") {
		t.Fatalf("err = %v", err)
	}
	if len(got) != 2 || got[1] != maxTopOctets+1 {
		t.Errorf("the header func read %v", got)
	}
	if f.mb.Len() != 2 {
		t.Errorf("%d messages left", f.mb.Len())
	}
}

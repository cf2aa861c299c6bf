package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/popfetch/popfetch/uidcache"
)

// benchMessage is a 4 KiB message like the rig's "small" profile.
func benchMessage(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender%d@example.org\nTo: rcpt@example.org\nSubject: message %d\nMessage-ID: <%d@example.org>\n\n", i, i, i)
	for b.Len() < 4096 {
		b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n")
	}
	return b.Bytes()
}

// benchSession fetches n messages per iteration from the in-process
// server, in delete mode, into a Maildir (on tmpfs where there is one, so
// the figures are popfetch's, not the disk's), and reports per-message
// allocations and the round trips of a session.
func benchSession(b *testing.B, n int, latency time.Duration, keep bool) {
	f := newFixture(b, 0)
	f.srv.Latency = latency
	f.start(b)
	f.acct.Keep = keep
	dir, err := os.MkdirTemp(shmBase(), "popfetch-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f.acct.StateDir = dir + "/state"
	msgs := make([][]byte, n)
	var size int64
	for i := range msgs {
		msgs[i] = benchMessage(i)
		size += int64(len(msgs[i]))
	}
	log := slog.New(slog.DiscardHandler)
	var ms0, ms1 runtime.MemStats
	var fetched int
	rt0 := f.srv.RoundTrips()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if f.mb.Len() == 0 || !keep {
			for _, m := range msgs {
				f.mb.Add(m)
			}
		}
		f.acct.Deliver.Maildir = fmt.Sprintf("%s/md%d", dir, i)
		if keep {
			os.Remove(dir + "/state/" + uidcache.FileName(f.acct.Key()))
		}
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		res, err := Run(context.Background(), Options{Account: f.acct, Credentials: staticCreds{password: "secret"}, Log: log})
		b.StopTimer()
		runtime.ReadMemStats(&ms1)
		if err != nil || res.Fetched != n {
			b.Fatalf("%+v %v", res, err)
		}
		fetched += res.Fetched
		os.RemoveAll(f.acct.Deliver.Maildir)
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "allocs/msg")
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(n), "B/msg")
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(f.srv.RoundTrips()-rt0)/float64(b.N), "rtt/session")
	b.ReportMetric(float64(fetched)/b.Elapsed().Seconds(), "msgs/s")
}

func shmBase() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// BenchmarkSession2000 is the rig's scenario a in process: 2000 × 4 KiB,
// delete mode, Maildir.
func BenchmarkSession2000(b *testing.B) { benchSession(b, 2000, 0, false) }

// BenchmarkSession300Latency50ms is scenario c: 300 × 4 KiB over a 50 ms
// round trip; rtt/session is the figure of interest.
func BenchmarkSession300Latency50ms(b *testing.B) {
	benchSession(b, 300, 25*time.Millisecond, false)
}

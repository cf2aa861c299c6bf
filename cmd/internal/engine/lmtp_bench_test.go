package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/smtpsink"
)

// BenchmarkLMTPvsMaildir300 fetches 300 small messages (4 KiB) from the
// in-process server in delete mode, in each iteration once into a Maildir,
// once over LMTP into a private Dovecot (its socket) and once over LMTP
// into Postfix's smtp-sink, which takes each message and does nothing with
// it, and reports the time of each and their ratios to the Maildir's
// (issue 14: LMTP within 1.5 × Maildir). The sink's figure is popfetch's
// own cost of LMTP; Dovecot's adds what Dovecot does for each delivery,
// which "dovecot-alone-ms" measures: the same deliveries made straight
// from memory, without POP3 or popfetch's cache.
// The Maildir and Dovecot's mail directory are on the same file system
// (os.TempDir). The test Dovecot runs with mail_fsync = never unless
// POPFETCH_BENCH_DOVECOT_FSYNC=1, which gives it Dovecot's default,
// "optimized" (an fsync per delivered message), as a real one has.
func BenchmarkLMTPvsMaildir300(b *testing.B) {
	const n = 300
	opts := []dovecottest.Option{dovecottest.WithLMTP()}
	if os.Getenv("POPFETCH_BENCH_DOVECOT_FSYNC") == "1" {
		opts = append(opts, dovecottest.WithConfig("mail_fsync = optimized"))
	}
	dc := dovecottest.Start(b, opts...)
	sink := smtpsink.Start(b, smtpsink.LMTP())
	f := newFixture(b, 0)
	f.start(b)
	dir := b.TempDir()
	f.acct.StateDir = filepath.Join(dir, "state")
	log := slog.New(slog.DiscardHandler)
	run := func(d config.Deliver) time.Duration {
		b.StopTimer()
		for i := range n {
			f.mb.Add(benchMessage(i))
		}
		f.acct.Deliver = d
		b.StartTimer()
		start := time.Now()
		res, err := Run(context.Background(), Options{Account: f.acct, Credentials: staticCreds{password: "secret"}, Log: log})
		took := time.Since(start)
		if err != nil || res.Fetched != n {
			b.Fatalf("%+v %v", res, err)
		}
		return took
	}
	// Dovecot's own share: the same 300 deliveries from memory, without
	// POP3, the cache or anything else of popfetch's.
	direct := func(rcpt string) time.Duration {
		b.StopTimer()
		t, err := deliver.OpenLMTP("unix:"+dc.LMTPSocket(), deliver.SMTPOptions{Recipient: rcpt})
		if err != nil {
			b.Fatal(err)
		}
		defer t.Close()
		b.StartTimer()
		start := time.Now()
		for i := range n {
			if err := t.Deliver(deliver.Envelope{Recipient: "bob"}, bytes.NewReader(benchMessage(i))); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var md, lm, ls, dd time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// each run into empty mailboxes, as the Maildir's
		b.StopTimer()
		u1, u2 := fmt.Sprintf("bob%d", i), fmt.Sprintf("carol%d", i)
		dc.AddUser(u1, "x")
		dc.AddUser(u2, "x")
		b.StartTimer()
		md += run(config.Deliver{Maildir: filepath.Join(dir, fmt.Sprintf("md%d", i))})
		lm += run(config.Deliver{LMTP: "unix:" + dc.LMTPSocket(), Recipient: u1})
		ls += run(config.Deliver{LMTP: sink.Addr(), Recipient: "bob"})
		dd += direct(u2)
		b.StopTimer()
		if a, c := dc.Count(u1), dc.Count(u2); a != n || c != n {
			b.Fatalf("Dovecot holds %d and %d messages, want %d", a, c, n)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(dd.Milliseconds())/float64(b.N), "dovecot-alone-ms")
	b.ReportMetric(float64(md.Milliseconds())/float64(b.N), "maildir-ms")
	b.ReportMetric(float64(lm.Milliseconds())/float64(b.N), "dovecot-ms")
	b.ReportMetric(float64(ls.Milliseconds())/float64(b.N), "sink-ms")
	b.ReportMetric(float64(lm)/float64(md), "dovecot/maildir")
	b.ReportMetric(float64(ls)/float64(md), "sink/maildir")
}

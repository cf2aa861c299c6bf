// Package enginesim plugs popfetch's engine into the fault simulator of
// internal/sim: Fetcher turns a simulated account (sim.Spec) into a
// config.Account and runs engine.Run on it in process, as one
// `popfetch fetch` would. The simulator's world and checker live in
// internal/sim and know nothing of the engine; this package is the only
// one that knows both (Go's internal rule keeps cmd/internal/engine out
// of reach of internal/sim).
//
// Its test, TestSim, runs the episodes:
//
//	go test ./cmd/internal/enginesim -run TestSim -seed N -v   # replay one
//	make sim EPISODES=100000                                  # run many
package enginesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/internal/sim"
	"github.com/popfetch/popfetch/internal/vfs"
	"github.com/popfetch/popfetch/uidcache"
)

// Fetcher runs the engine for the simulator.
type Fetcher struct {
	// Log receives the engine's reports, the protocol trace included;
	// nil: silent.
	Log *slog.Logger
	// WrapFS, if set, stands between the engine and the simulated disk:
	// the checker's own tests use it to break a target's durability.
	WrapFS func(fsys vfs.FS, spec sim.Spec) vfs.FS
}

// fs returns the file system the engine runs on for spec.
func (f Fetcher) fs(spec sim.Spec) vfs.FS {
	if f.WrapFS != nil && spec.FS != nil {
		return f.WrapFS(spec.FS, spec)
	}
	return spec.FS
}

// Account returns the account of a simulated spec.
func Account(spec sim.Spec) *config.Account {
	c := spec.Config
	a := &config.Account{
		Name: "sim", Host: spec.Host, Port: spec.Port, TLS: config.TLSNone,
		User: spec.User, Auth: config.AuthAuto, Keep: c.Keep,
		MaxSize: c.MaxSize, MaxMessages: c.MaxMessages, ReceivedHeader: c.ReceivedHeader,
		Timeout: spec.Timeout, StateDir: spec.StateDir,
	}
	switch c.Target {
	case sim.Maildir:
		a.Deliver.Maildir = spec.Path
	case sim.Mbox:
		a.Deliver.Mbox = spec.Path
	case sim.MDA:
		a.Deliver.MDA = spec.Path
	case sim.LMTP:
		a.Deliver.LMTP, a.Deliver.Recipient = spec.Path, sim.MTARecipient
	case sim.SMTP:
		a.Deliver.SMTP, a.Deliver.Recipient = spec.Path, sim.MTARecipient
	}
	return a
}

type password string

func (p password) Password(context.Context) (string, error) { return string(p), nil }
func (p password) Token(context.Context) (string, error) {
	return "", errors.New("the simulated server takes no token")
}

// Fetch implements sim.Fetcher.
func (f Fetcher) Fetch(ctx context.Context, spec sim.Spec) sim.Outcome {
	warnings := &warnings{next: f.Log, kept: &kept{}}
	_, err := engine.Run(ctx, engine.Options{
		Account:        Account(spec),
		Credentials:    password(spec.Password),
		Log:            slog.New(warnings),
		Trace:          f.Log != nil,
		AcceptAllAsNew: spec.AcceptAllAsNew,
		Stop:           spec.Stop,
		Now:            spec.Now,
		Version:        "sim",
		FS:             f.fs(spec),
	})
	var mismatch *engine.CacheMismatchError
	return sim.Outcome{Err: err, Mismatch: errors.As(err, &mismatch), Busy: errors.Is(err, engine.ErrLocked),
		Warnings: warnings.kept.lines}
}

// Check implements sim.Checker: engine.Check with every new message's
// header read, as `popfetch check --list` does.
func (f Fetcher) Check(ctx context.Context, spec sim.Spec) sim.Outcome {
	warnings := &warnings{next: f.Log, kept: &kept{}}
	_, err := engine.Check(ctx, engine.Options{
		Account:        Account(spec),
		Credentials:    password(spec.Password),
		Log:            slog.New(warnings),
		Trace:          f.Log != nil,
		AcceptAllAsNew: spec.AcceptAllAsNew,
		Now:            spec.Now,
		FS:             f.fs(spec),
	}, func(_ engine.NewMessage, header io.Reader) error {
		if header != nil {
			_, err := io.Copy(io.Discard, header)
			return err
		}
		return nil
	})
	var mismatch *engine.CacheMismatchError
	return sim.Outcome{Err: err, Mismatch: errors.As(err, &mismatch), Busy: errors.Is(err, engine.ErrLocked),
		Warnings: warnings.kept.lines}
}

// warnings is a slog handler that keeps the warnings, as the user sees
// them under cron, and passes every record on to next, if set.
type warnings struct {
	next  *slog.Logger
	attrs []slog.Attr
	kept  *kept
}

// kept are the warnings of a run, from all its loggers.
type kept struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (w.next != nil && w.next.Enabled(ctx, l))
}

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(r.Message)
		add := func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
			return true
		}
		for _, a := range w.attrs {
			add(a)
		}
		r.Attrs(add)
		w.kept.mu.Lock()
		w.kept.lines = append(w.kept.lines, b.String())
		w.kept.mu.Unlock()
	}
	if w.next != nil && w.next.Enabled(ctx, r.Level) {
		return w.next.Handler().Handle(ctx, r)
	}
	return nil
}

func (w *warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *w
	c.attrs = append(append([]slog.Attr(nil), w.attrs...), attrs...)
	if w.next != nil {
		c.next = slog.New(w.next.Handler().WithAttrs(attrs))
	}
	return &c
}

func (w *warnings) WithGroup(name string) slog.Handler {
	c := *w
	if w.next != nil {
		c.next = slog.New(w.next.Handler().WithGroup(name))
	}
	return &c
}

// Remembered implements sim.Remembering: the UIDs in the account's
// cache, once it has round-tripped (loaded, saved, loaded again, with the
// same entries).
func (Fetcher) Remembered(spec sim.Spec) (map[string]bool, error) {
	key := Account(spec).Key()
	c, err := uidcache.Open(spec.StateDir, key, uidcache.Options{FS: spec.FS})
	if err != nil {
		return nil, err
	}
	before := map[string]uidcache.Entry{}
	c.Each(func(uid string, e uidcache.Entry) { before[uid] = e })
	c.MarkDirty()
	if err := c.Save(); err != nil {
		return nil, err
	}
	if c, err = uidcache.Open(spec.StateDir, key, uidcache.Options{FS: spec.FS}); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	c.Each(func(uid string, e uidcache.Entry) {
		if b, ok := before[uid]; ok && b.Seen.Equal(e.Seen) && b.State == e.State {
			out[uid] = true
		}
	})
	if len(out) != len(before) {
		return nil, fmt.Errorf("the cache does not round-trip: %d entries before a save, %d the same after", len(before), len(out))
	}
	return out, nil
}

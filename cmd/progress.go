package cmd

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/cmd/internal/engine"
)

// progressUI shows a live bar per account on a terminal (CONTRACT §3):
// account name, messages, bytes and rate. Lines logged while bars are
// shown are printed above them.
type progressUI struct {
	p *mpb.Progress
}

// newProgressUI returns the bars for mode (auto: when stderr is a
// terminal), or nil when there are to be none.
func newProgressUI(mode string, quiet bool, stderr io.Writer) (*progressUI, error) {
	switch mode {
	case "never":
		return nil, nil
	case "always":
	case "auto", "":
		f, ok := stderr.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil, nil
		}
	default:
		return nil, usageError{err: fmt.Errorf("--progress %q: want auto, always or never", mode)}
	}
	if quiet {
		return nil, nil
	}
	return &progressUI{p: mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(32),
		mpb.WithRefreshRate(120*time.Millisecond), mpb.ContainerOptional(mpb.ForceTTY(), mode == "always"))}, nil
}

// Write prints above the bars.
func (u *progressUI) Write(b []byte) (int, error) { return u.p.Write(b) }

// account returns the progress of one account; Done must be called when
// its run ends.
func (u *progressUI) account(name string) *accountProgress {
	return &accountProgress{ui: u, name: name}
}

// Wait waits for the bars to be drawn for the last time.
func (u *progressUI) Wait() { u.p.Wait() }

// accountProgress implements engine.Progress with an mpb bar counting
// bytes, with the message count beside it.
type accountProgress struct {
	ui    *progressUI
	name  string
	once  sync.Once
	bar   *mpb.Bar
	total int
	done  atomic.Int64
}

var _ engine.Progress = (*accountProgress)(nil)

func (a *accountProgress) Begin(messages int, bytes int64) {
	if messages == 0 {
		return // no bar: "no new mail" is said after the bars
	}
	a.once.Do(func() {
		a.total = messages
		a.bar = a.ui.p.AddBar(max(bytes, 1),
			mpb.PrependDecorators(
				decor.Name(a.name, decor.WCSyncSpaceR),
				decor.Any(func(decor.Statistics) string {
					return fmt.Sprintf("%d/%d msgs", a.done.Load(), a.total)
				}, decor.WCSyncSpace),
			),
			mpb.AppendDecorators(
				decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
			),
		)
	})
}

func (a *accountProgress) Delivered(bytes int64) {
	if a.bar == nil {
		return
	}
	a.done.Add(1)
	a.bar.IncrInt64(bytes)
}

// Done completes the bar, whether all that was planned was fetched or not.
func (a *accountProgress) Done(err error) {
	if a.bar == nil {
		return
	}
	if err != nil {
		a.bar.Abort(false)
		return
	}
	a.bar.SetTotal(-1, true)
}

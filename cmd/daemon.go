package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// daemonOptions are daemon's flags.
type daemonOptions struct {
	interval time.Duration
	jobs     int
	accounts []string
}

func daemonCommand(g *globalOptions) *cli.Command {
	o := &daemonOptions{}
	return &cli.Command{
		Name:      "daemon",
		Usage:     "poll: fetch at once, then every interval, until SIGINT or SIGTERM",
		ArgsUsage: "[ACCOUNT...]",
		Description: "Fetches the accounts (all, or those named) at once and then every --interval.\n" +
			"Each account is polled on its own schedule: a slow or stalled server never\n" +
			"delays another account's poll. SIGINT or SIGTERM finishes the message in hand,\n" +
			"ends the session and exits 0. SIGHUP re-reads the configuration; if it is broken,\n" +
			"the error is logged and the old one kept. SIGUSR1 polls every account now. An\n" +
			"account that keeps failing is polled less often (doubling the wait, up to an\n" +
			"hour); a server's LOGIN-DELAY is honoured. Each line it writes starts with the\n" +
			"time, unless standard error is the systemd journal ($JOURNAL_STREAM), which has\n" +
			"its own; -v says when it starts.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Minute, Usage: "poll every `DURATION`", Destination: &o.interval},
			// Kept so that existing units and scripts still start: each
			// account now has a schedule of its own, so none waits for a
			// slot another holds.
			&cli.IntFlag{Name: "jobs", Value: 4, Usage: "ignored: every account is polled on its own schedule", Destination: &o.jobs, Hidden: true},
		},
		OnUsageError:       onUsageError,
		CustomHelpTemplate: commandHelp(""),
		Action: func(c *cli.Context) error {
			o.accounts = c.Args().Slice()
			return runDaemon(c.Context, g, o)
		},
	}
}

// maxBackoff caps the wait of an account that keeps failing.
const maxBackoff = time.Hour

// backoff returns the wait after a poll: the interval, doubled for each
// failure in a row (at most maxBackoff, or the interval if longer), and at
// least the server's LOGIN-DELAY.
func backoff(interval time.Duration, failures int, loginDelay time.Duration) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff && interval <= maxBackoff {
		d = maxBackoff
	}
	return max(d, loginDelay)
}

func runDaemon(ctx context.Context, g *globalOptions, o *daemonOptions) error {
	if o.interval < time.Second {
		return usageError{err: errors.New("--interval must be at least 1s")}
	}
	if o.jobs < 1 {
		return usageError{err: errors.New("--jobs must be at least 1")}
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	accts, err := cfg.Select(o.accounts)
	if err != nil {
		return err
	}
	// A daemon's lines are a log, read later: each says when, unless
	// the journal, which stamps them itself, is reading them.
	g.timestamps = !stderrIsJournal(g.stderr)
	log := g.logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	reload := make(chan struct{}, 1)
	pollNow := make(chan struct{}, 1)
	go func() {
		stopping := false
		for s := range sigs {
			switch {
			case s == syscall.SIGHUP:
				select {
				case reload <- struct{}{}:
				default:
				}
			case s == syscall.SIGUSR1:
				select {
				case pollNow <- struct{}{}:
				default:
				}
			case !stopping:
				stopping = true
				close(stop)
			default:
				cancel() // a second SIGINT/SIGTERM: stop now
			}
		}
	}()

	names := make([]string, len(accts))
	for i, a := range accts {
		names[i] = a.Name
	}
	log.Info(fmt.Sprintf("daemon started (pid %d): %s, every %v; SIGHUP re-reads %s, SIGUSR1 polls now",
		os.Getpid(), strings.Join(names, ", "), o.interval, cfg.Path))
	p := &poller{g: g, interval: o.interval, stop: stop, log: log, workers: map[string]*pollWorker{}}
	defer p.wait()
	p.apply(ctx, accts)
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-reload:
			newCfg, err := loadConfig(g)
			var accts []*config.Account
			if err == nil {
				accts, err = newCfg.Select(o.accounts)
			}
			if err != nil {
				log.Error("configuration not reloaded, keeping the old one: " + err.Error())
				continue
			}
			p.apply(ctx, accts)
			log.Info("configuration reloaded")
		case <-pollNow:
			log.Info("SIGUSR1: polling every account now")
			p.pollAll()
		}
	}
}

// poller polls each account of the daemon on a schedule of its own: one
// goroutine an account, with its own timer and backoff, so that one
// account's session — however slow, however stalled — never delays
// another's poll.
type poller struct {
	g        *globalOptions
	interval time.Duration
	stop     <-chan struct{} // closed: finish the polls in hand, then end
	log      *slog.Logger

	wg      sync.WaitGroup
	workers map[string]*pollWorker // by account name
}

// pollWorker is the goroutine of one account.
type pollWorker struct {
	update chan *config.Account // the account's new settings, for the next poll
	now    chan struct{}        // poll now, if waiting (SIGUSR1)
	quit   chan struct{}        // closed: the account left the configuration
}

// pollAll makes every account that waits for its next poll poll now; an
// account polling already is not polled again.
func (p *poller) pollAll() {
	for _, w := range p.workers {
		select {
		case w.now <- struct{}{}:
		default:
		}
	}
}

// apply makes the workers match accts: an account that is new is polled
// at once, one that stays gets its new settings from its next poll on
// (without being polled sooner), one that is gone ends once its poll in
// hand, if any, is done.
func (p *poller) apply(ctx context.Context, accts []*config.Account) {
	keep := make(map[string]bool, len(accts))
	for _, a := range accts {
		keep[a.Name] = true
		if w, ok := p.workers[a.Name]; ok {
			select { // only the latest settings matter
			case <-w.update:
			default:
			}
			w.update <- a
			continue
		}
		w := &pollWorker{update: make(chan *config.Account, 1), now: make(chan struct{}, 1), quit: make(chan struct{})}
		p.workers[a.Name] = w
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.poll(ctx, w, a)
		}()
	}
	for name, w := range p.workers {
		if !keep[name] {
			close(w.quit)
			delete(p.workers, name)
		}
	}
}

// poll fetches a at once and then whenever its wait is over, until the
// daemon stops or a leaves the configuration.
func (p *poller) poll(ctx context.Context, w *pollWorker, a *config.Account) {
	failures := 0
	for {
		// Polls run side by side, one account each: progress bars would
		// overwrite one another, and a daemon's output is a log anyway.
		runs, err := fetchAccounts(ctx, p.g, []*config.Account{a}, fetchRound{jobs: 1, stop: p.stop, noProgress: true})
		if err != nil {
			p.log.Error(err.Error(), "account", a.Name)
			return
		}
		r := runs[0]
		var wait time.Duration
		if r.err != nil {
			failures++
			wait = backoff(p.interval, failures, r.res.LoginDelay)
			p.log.Error(fmt.Sprintf("%v; next try in %v", r.err, wait.Round(time.Second)), "account", a.Name)
		} else {
			failures = 0
			wait = backoff(p.interval, 0, r.res.LoginDelay)
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-timer.C:
				break waiting
			case <-w.now:
				timer.Stop()
				break waiting
			case a = <-w.update:
			case <-w.quit:
				timer.Stop()
				return
			case <-p.stop:
				timer.Stop()
				return
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
	}
}

// wait waits for every worker to end: for the polls in hand to finish.
func (p *poller) wait() { p.wg.Wait() }

// stderrIsJournal reports whether w is the stream systemd connected to
// the journal: $JOURNAL_STREAM names its device and inode
// (systemd.exec(5)), which the journal stamps with the time itself.
func stderrIsJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(os.Getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
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
			"SIGINT or SIGTERM finishes the message in hand, QUITs and exits 0. SIGHUP re-reads\n" +
			"the configuration; if it is broken, the error is logged and the old one kept.\n" +
			"SIGUSR1 polls every account now. An account that keeps failing is polled less\n" +
			"often (doubling the wait, up to an hour); a server's LOGIN-DELAY is honoured.\n" +
			"Each line it writes starts with the time, unless standard error is the systemd\n" +
			"journal ($JOURNAL_STREAM), which has its own; -v says when it starts.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Minute, Usage: "poll every `DURATION`", Destination: &o.interval},
			&cli.IntFlag{Name: "jobs", Value: 4, Usage: "fetch `N` accounts in parallel", Destination: &o.jobs},
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

// schedule is when each account is next due, and how often it failed in
// a row.
type schedule struct {
	next     map[string]time.Time
	failures map[string]int
}

// backoff returns the wait after a round: the interval, doubled for each
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
	if _, err := cfg.Select(o.accounts); err != nil {
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

	if accts, _ := cfg.Select(o.accounts); len(accts) > 0 {
		names := make([]string, len(accts))
		for i, a := range accts {
			names[i] = a.Name
		}
		log.Info(fmt.Sprintf("daemon started (pid %d): %s, every %v; SIGHUP re-reads %s, SIGUSR1 polls now",
			os.Getpid(), strings.Join(names, ", "), o.interval, cfg.Path))
	}
	sched := schedule{next: map[string]time.Time{}, failures: map[string]int{}}
	for {
		accts, _ := cfg.Select(o.accounts)
		now := time.Now()
		var due []*config.Account
		for _, a := range accts {
			if next, ok := sched.next[a.Name]; !ok || !now.Before(next) {
				due = append(due, a)
			}
		}
		if len(due) > 0 {
			runs, err := fetchAccounts(ctx, g, due, fetchRound{jobs: o.jobs, stop: stop})
			if err != nil {
				return err
			}
			for _, r := range runs {
				name := r.acct.Name
				if r.err != nil {
					sched.failures[name]++
					wait := backoff(o.interval, sched.failures[name], r.res.LoginDelay)
					log.Error(fmt.Sprintf("%v; next try in %v", r.err, wait.Round(time.Second)), "account", name)
					sched.next[name] = time.Now().Add(wait)
					continue
				}
				sched.failures[name] = 0
				sched.next[name] = time.Now().Add(backoff(o.interval, 0, r.res.LoginDelay))
			}
		}
		select {
		case <-stop:
			return nil
		default:
		}
		wake := time.Now().Add(o.interval)
		for _, a := range accts {
			if t := sched.next[a.Name]; t.Before(wake) {
				wake = t
			}
		}
		timer := time.NewTimer(max(time.Until(wake), 0))
		select {
		case <-stop:
			timer.Stop()
			return nil
		case <-reload:
			timer.Stop()
			newCfg, err := loadConfig(g)
			if err == nil {
				_, err = newCfg.Select(o.accounts)
			}
			if err != nil {
				log.Error("configuration not reloaded, keeping the old one: " + err.Error())
				continue
			}
			cfg = newCfg
			log.Info("configuration reloaded")
		case <-pollNow:
			timer.Stop()
			log.Info("SIGUSR1: polling every account now")
			clear(sched.next)
		case <-timer.C:
		}
	}
}

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

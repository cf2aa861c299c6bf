package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/cmd/internal/termsafe"
	"github.com/popfetch/popfetch/pop3"
)

// fetchOptions are fetch's flags.
type fetchOptions struct {
	accounts       []string
	keep, noKeep   bool
	all            bool
	limit          int
	maxSize        string
	jobs           int
	acceptAllAsNew bool
	oneOff         oneOffOptions
}

func (fo *fetchOptions) flags() []cli.Flag {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "keep", Usage: "leave the messages on the server", Destination: &fo.keep},
		&cli.BoolFlag{Name: "no-keep", Usage: "delete the messages from the server once delivered", Destination: &fo.noKeep},
		&cli.BoolFlag{Name: "all", Usage: "also retrieve messages retrieved before", Destination: &fo.all},
		&cli.IntFlag{Name: "limit", Usage: "retrieve at most `N` messages per account (0: no limit)", Destination: &fo.limit},
		&cli.StringFlag{Name: "max-size", Usage: "leave messages larger than `SIZE` (e.g. 25MB, 10MiB) on the server", Destination: &fo.maxSize},
		&cli.IntFlag{Name: "jobs", Value: 4, Usage: "fetch `N` accounts in parallel", Destination: &fo.jobs},
		&cli.BoolFlag{Name: "accept-all-as-new", Usage: "fetch even when no remembered UID is on the server (the cache tripwire)", Destination: &fo.acceptAllAsNew},
	}
	flags = append(flags, fo.oneOff.identityFlags("fetch from")...)
	flags = append(flags, fo.oneOff.trustFlags()...)
	return append(flags, fo.oneOff.deliveryFlags()...)
}

func (fo *fetchOptions) action(c *cli.Context, g *globalOptions) error {
	fo.accounts = c.Args().Slice()
	fo.oneOff.read(c)
	return runFetch(c.Context, g, fo)
}

func fetchCommand(g *globalOptions) *cli.Command {
	fo := &fetchOptions{}
	return &cli.Command{
		Name:      "fetch",
		Usage:     "retrieve new mail of all (or the named) accounts (the default command)",
		ArgsUsage: "[ACCOUNT...]",
		Description: "Retrieves the new messages of each account and delivers them. Accounts are\n" +
			"fetched in parallel (--jobs). On a terminal a progress bar shows each account;\n" +
			"otherwise nothing is printed unless something went wrong.",
		Flags:                  fo.flags(),
		OnUsageError:           onUsageError,
		CustomHelpTemplate:     commandHelp(""),
		UseShortOptionHandling: true,
		Action:                 func(c *cli.Context) error { return fo.action(c, g) },
	}
}

// accountRun is one account's outcome.
type accountRun struct {
	acct *config.Account
	res  engine.Result
	err  error
}

// runFetch fetches the selected accounts and reports.
func runFetch(ctx context.Context, g *globalOptions, fo *fetchOptions) error {
	if fo.keep && fo.noKeep {
		return usageError{err: errors.New("--keep and --no-keep contradict each other")}
	}
	if fo.jobs < 1 {
		return usageError{err: errors.New("--jobs must be at least 1")}
	}
	if fo.limit < 0 {
		return usageError{err: errors.New("--limit must not be negative")}
	}
	accts, prompt, err := fo.selectAccounts(g)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if err := fo.override(a); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer handleSignals(cancel, stop)()
	runs, err := fetchAccounts(ctx, g, accts, fetchRound{
		jobs: fo.jobs, acceptAllAsNew: fo.acceptAllAsNew, stop: stop, prompt: prompt, sayNoMail: true,
	})
	if err != nil {
		return err
	}
	return report(g, runs)
}

// fetchRound is how a set of accounts is fetched.
type fetchRound struct {
	jobs           int
	acceptAllAsNew bool
	stop           <-chan struct{} // closed: finish gracefully
	noProgress     bool            // no progress bars, whatever --progress says
	prompt         func(string) (string, error)
	// sayNoMail: on a terminal, an account without new mail says so.
	sayNoMail bool
}

// fetchAccounts fetches the accounts, up to r.jobs at once, each with its
// own progress bar on a terminal, and returns each one's outcome in the
// order given.
func fetchAccounts(ctx context.Context, g *globalOptions, accts []*config.Account, r fetchRound) ([]accountRun, error) {
	mode := g.progress
	if r.noProgress {
		mode = "never"
	}
	ui, err := newProgressUI(mode, g.quiet, g.stderr)
	if err != nil {
		return nil, err
	}
	log := g.logger()
	if ui != nil {
		log = g.loggerTo(ui)
	}
	runs := make([]accountRun, len(accts))
	parallel(r.jobs, len(accts), func(i int) {
		a := accts[i]
		runs[i].acct = a
		alog := log.With("account", a.Name)
		creds := &accountCredentials{acct: a, prompt: r.prompt, log: alog, g: g}
		opts := engine.Options{
			Account:        a,
			Credentials:    creds,
			Log:            alog,
			Trace:          g.verbose >= 2,
			AcceptAllAsNew: r.acceptAllAsNew,
			Stop:           r.stop,
			Version:        Version,
		}
		if problems, _ := preflight(a); len(problems) > 0 {
			runs[i].err = preflightError(a, problems)
			return
		}
		var bar *accountProgress
		if ui != nil {
			bar = ui.account(a.Name)
			opts.Progress = bar
		}
		runs[i].err = creds.prepare(ctx, r.stop)
		if runs[i].err == nil {
			runs[i].res, runs[i].err = engine.Run(ctx, opts)
		}
		stoppedEarly := errors.Is(runs[i].err, errStoppedEarly)
		if stoppedEarly {
			// A graceful stop before anything began: nothing to report.
			alog.Info("stopped before connecting")
			runs[i].err = nil
		}
		if bar != nil {
			bar.Done(runs[i].err)
		} else if runs[i].err == nil && !stoppedEarly {
			summarize(alog, runs[i].res)
		}
	})
	if ui == nil {
		return runs, nil
	}
	// The summaries come after the bars, whose last drawing would cover
	// lines written while they finish; in configuration order. On a
	// terminal an account with nothing new says so (fetchmail's "No mail
	// for ..."), since no bar shows anything for it.
	ui.Wait()
	log = g.logger()
	for _, run := range runs {
		switch {
		case run.err != nil:
		case g.verbose > 0:
			summarize(log.With("account", run.acct.Name), run.res)
		case r.sayNoMail && run.res.New == 0 && !g.quiet:
			fmt.Fprintf(g.stderr, "popfetch: %s: no new mail\n", termsafe.Escape(run.acct.Name))
		}
	}
	return runs, nil
}

// parallel calls fn(0) to fn(n-1), at most jobs at once, and returns when
// all have returned.
func parallel(jobs, n int, fn func(i int)) {
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// summarize logs what an account did, at -v.
func summarize(log interface{ Info(string, ...any) }, r engine.Result) {
	msg := fmt.Sprintf("%d new, %d fetched (%s), %d deleted, %d on the server",
		r.New, r.Fetched, humanBytes(r.Bytes), r.Deleted, r.Listed)
	if r.Skipped > 0 {
		msg += fmt.Sprintf(", %d too large left", r.Skipped)
	}
	log.Info(msg)
}

// report prints each failed account and returns the first failure in
// configuration order (CONTRACT §4).
func report(g *globalOptions, runs []accountRun) error {
	var first error
	for _, r := range runs {
		if r.err == nil {
			continue
		}
		if first == nil {
			first = r.err
		}
		if g.shown.has(r.err) {
			continue // a message's line said it (or, for a try later, -v does)
		}
		printError(g.stderr, r.acct.Name, r.err)
		if h := hint(g, r.acct, r.err); h != "" {
			fmt.Fprintf(g.stderr, "popfetch: hint: %s\n", h)
		}
	}
	if first != nil {
		return reportedError{first}
	}
	return nil
}

// hint returns one line of advice for an error a user can act on, or "".
func hint(g *globalOptions, a *config.Account, err error) string {
	var tlsErr *pop3.TLSError
	var pin *engine.PinError
	var cert *tls.CertificateVerificationError
	var alert tls.AlertError
	var mismatch *engine.CacheMismatchError
	var mode *engine.TLSModeError
	switch {
	case errors.As(err, &mode):
		want := config.TLSImplicit
		if !mode.SpeaksTLS {
			want = config.TLSStartTLS
		}
		if isOneOff(a) {
			fixed := *a
			fixed.TLS = want
			return fmt.Sprintf("`%s` uses %s", g.commandFor(&fixed, "fetch"), want)
		}
		if n, ok := a.Lines["tls"]; ok {
			return fmt.Sprintf("tls is set at %s:%d", a.File, n)
		}
		return fmt.Sprintf("add tls = %q to the account at %s:%d", want, a.File, a.Line(""))
	case errors.As(err, &pin), errors.As(err, &cert):
		if isOneOff(a) {
			return fmt.Sprintf("`%s` shows the certificate; trust its CA with --tls-ca-file, or pin it with --tls-fingerprint", g.commandFor(a, "serverinfo"))
		}
		return fmt.Sprintf("`%s` shows the certificate; trust its CA with tls_ca_file, or pin it with tls_fingerprint", g.commandFor(a, "serverinfo"))
	case errors.As(err, &alert) && alert == 70: // protocol_version
		return "the server offers no TLS 1.2 or newer, which popfetch requires"
	case errors.As(err, &tlsErr):
		return fmt.Sprintf("`%s` shows what the server offers", g.commandFor(a, "serverinfo"))
	case errors.As(err, &mismatch):
		return fmt.Sprintf("`%s` fetches them all as new; `%s` shows what is remembered",
			g.commandFor(a, "fetch", "--accept-all-as-new"), g.commandFor(a, "cache", "list"))
	case errors.Is(err, engine.ErrLocked):
		return "the lock is an flock(2) lock and dies with its process: another run or a daemon is fetching now"
	}
	return ""
}

// handleSignals makes the first SIGINT or SIGTERM a graceful stop (finish
// the message in hand, QUIT) and the second an immediate one. It returns
// the function that stops listening.
func handleSignals(cancel context.CancelFunc, stop chan struct{}) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			close(stop)
		case <-done:
			return
		}
		select {
		case <-sigs:
			cancel()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// selectAccounts returns the accounts to fetch: the one-off account of the
// flags, or the named (or all) accounts of the configuration. It also
// returns a password prompt when a one-off account may need one.
func (fo *fetchOptions) selectAccounts(g *globalOptions) ([]*config.Account, func(string) (string, error), error) {
	oneOff, err := fo.oneOff.active(fo.accounts)
	if err != nil {
		return nil, nil, err
	}
	if oneOff {
		a, err := fo.oneOff.account(true)
		if err != nil {
			return nil, nil, err
		}
		return []*config.Account{a}, terminalPrompt(), nil
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, nil, err
	}
	accts, err := cfg.Select(fo.accounts)
	return accts, nil, err
}

// override applies the command line to an account.
func (fo *fetchOptions) override(a *config.Account) error {
	switch {
	case fo.keep:
		a.Keep = true
	case fo.noKeep:
		a.Keep = false
	}
	if fo.all {
		a.FetchAll = true
	}
	if fo.limit > 0 && (a.MaxMessages == 0 || fo.limit < a.MaxMessages) {
		a.MaxMessages = fo.limit
	}
	if fo.maxSize != "" {
		n, err := config.ParseSize(fo.maxSize)
		if err != nil {
			return usageError{err: fmt.Errorf("--max-size: %w", err)}
		}
		a.MaxSize = n
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

var _ = time.Second

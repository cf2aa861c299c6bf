package cmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// demoOptions are demo's flags.
type demoOptions struct {
	dir      string
	messages int
}

func demoCommand(g *globalOptions) *cli.Command {
	o := &demoOptions{}
	return &cli.Command{
		Name:  "demo",
		Usage: "fetch sample mail from a built-in POP3 server into ./popfetch-demo/",
		Description: "Starts a POP3 server inside popfetch, on 127.0.0.1 with TLS, holding sample\n" +
			"messages, and fetches them into a Maildir the way a configured account would:\n" +
			"nothing to set up, nothing sent over the network.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "popfetch-demo", Usage: "put the Maildir and state in `DIR`", Destination: &o.dir},
			&cli.IntFlag{Name: "messages", Value: 36, Usage: "serve `N` sample messages", Destination: &o.messages},
		},
		OnUsageError:       onUsageError,
		CustomHelpTemplate: commandHelp(""),
		Action:             func(c *cli.Context) error { return runDemo(c.Context, g, o) },
	}
}

func runDemo(ctx context.Context, g *globalOptions, o *demoOptions) error {
	if o.messages < 1 {
		return usageError{err: fmt.Errorf("--messages must be at least 1")}
	}
	srv := pop3test.NewServer()
	mb := srv.AddUser("demo", "demo-secret")
	for _, m := range mailgen.Realistic(o.messages, 1) {
		mb.Add(m)
	}
	if err := srv.StartTLS(); err != nil {
		return fmt.Errorf("starting the demo server: %w", err)
	}
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	pin := "sha256:" + hex.EncodeToString(sum[:])
	host, portStr, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(portStr)
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	acct := config.NewAccount(config.OSEnv())
	acct.Name, acct.Host, acct.Port, acct.TLSFingerprint = "demo", host, port, pin
	acct.User, acct.Password = "demo", "demo-secret"
	acct.StateDir = filepath.Join(dir, "state")
	acct.Deliver.Maildir = filepath.Join(dir, "Maildir")
	out := g.stdout
	fmt.Fprintf(out, "popfetch demo: a POP3 server is running on %s (implicit TLS, certificate pinned as %s…)\n", srv.Addr(), pin[:23])
	fmt.Fprintf(out, "popfetch demo: it holds %d messages for user %q\n", mb.Len(), "demo")
	run := func() (engine.Result, error) {
		ui, err := newProgressUI(g.progress, g.quiet, g.stderr)
		if err != nil {
			return engine.Result{}, err
		}
		opts := engine.Options{
			Account:     acct,
			Credentials: &accountCredentials{acct: acct, g: g},
			Log:         g.logger().With("account", "demo"),
			Trace:       g.verbose >= 2,
			Version:     Version,
		}
		if ui == nil {
			return engine.Run(ctx, opts)
		}
		opts.Log = newLogger(ui, levelFor(g.verbose, g.quiet)).With("account", "demo")
		bar := ui.account("demo")
		opts.Progress = bar
		res, err := engine.Run(ctx, opts)
		bar.Done(err)
		ui.Wait()
		return res, err
	}
	start := time.Now()
	res, err := run()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "popfetch demo: fetched %d messages (%s) in %s into %s\n",
		res.Fetched, humanBytes(res.Bytes), time.Since(start).Round(time.Millisecond), filepath.Join(acct.Deliver.Maildir, "new"))
	fmt.Fprintf(out, "popfetch demo: deleted %d from the server once they were safely on disk; it now holds %d\n", res.Deleted, mb.Len())

	extra := mailgen.Realistic(o.messages+3, 2)[o.messages:]
	for _, m := range extra {
		mb.Add(m)
	}
	fmt.Fprintf(out, "popfetch demo: %d new messages arrive on the server; fetching again\n", len(extra))
	if res, err = run(); err != nil {
		return err
	}
	fmt.Fprintf(out, "popfetch demo: fetched %d new messages; the server now holds %d\n", res.Fetched, mb.Len())

	// Keep mode: the server keeps what is fetched, and the UID cache
	// tells the next run what it already has.
	acct.Keep = true
	kept := mailgen.Realistic(o.messages+5, 3)[o.messages+3:]
	for _, m := range kept {
		mb.Add(m)
	}
	fmt.Fprintf(out, "popfetch demo: keep mode (keep = true): %d more messages arrive; fetching, leaving them on the server\n", len(kept))
	if res, err = run(); err != nil {
		return err
	}
	fmt.Fprintf(out, "popfetch demo: fetched %d; the server still holds %d\n", res.Fetched, mb.Len())
	if res, err = run(); err != nil {
		return err
	}
	fmt.Fprintf(out, "popfetch demo: fetching again fetches %d: their UIDs are remembered in %s\n", res.Fetched, acct.StateDir)
	fmt.Fprintf(out, "popfetch demo: read the mail with: mutt -f %s\n", acct.Deliver.Maildir)
	fmt.Fprintf(out, "popfetch demo: for your own account: popfetch config init (a starter %s to fill in), "+
		"popfetch config check, then popfetch -v\n", config.DefaultPath(config.OSEnv()))
	return nil
}

// Package cmd is popfetch's command line: flags, configuration, keyring,
// terminal, progress and exit codes. Each command reads its flags into a
// typed options struct and calls a plain function that never sees urfave.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
)

// Version is set at build time with -ldflags "-X .../cmd.Version=...".
var Version = "0.1.0-dev"

// globalOptions are the flags every command shares.
type globalOptions struct {
	configPath string
	verbose    int
	quiet      bool
	progress   string
	stdout     io.Writer
	stderr     io.Writer
	// helpName is the command being run, "popfetch fetch": a usage
	// error's hint points to its --help.
	helpName string
	// shown are the delivery errors that the lines about each message
	// have shown already.
	shown shownErrors
	// timestamps starts each logged line with the time (the daemon's).
	timestamps bool
}

func (g *globalOptions) logger() *slog.Logger {
	return g.loggerTo(g.stderr)
}

// loggerTo is logger writing to w.
func (g *globalOptions) loggerTo(w io.Writer) *slog.Logger {
	l := newLoggerShown(w, levelFor(g.verbose, g.quiet), &g.shown)
	if g.timestamps {
		l = slog.New(l.Handler().(*lineHandler).withTimestamps())
	}
	return l
}

// Main runs popfetch with args (os.Args) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr, progress: "auto"}
	app := newApp(g)
	if n := len(args); n > 1 && args[n-1] == completeFlag {
		complete(app, g, args[1:n-1], stdout)
		return exitOK
	}
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	if err != nil && code != exitNoMail && !errors.Is(err, errReported) {
		printError(stderr, "", err)
		if h := g.configHint(err); h != "" {
			fmt.Fprintf(stderr, "popfetch: hint: %s\n", h)
		}
		if code == exitUsage {
			help := g.helpName
			var u usageError
			if errors.As(err, &u) && u.help != "" {
				help = u.help
			}
			if help == "" {
				help = "popfetch"
			}
			fmt.Fprintf(stderr, "popfetch: hint: see %s --help\n", help)
		}
	}
	return code
}

// errReported wraps an error whose details were already printed.
var errReported = errors.New("reported")

type reportedError struct{ err error }

func (e reportedError) Error() string   { return e.err.Error() }
func (e reportedError) Unwrap() []error { return []error{e.err, errReported} }

func init() {
	// urfave's default --version has the alias -v, which is ours for
	// verbosity.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	cli.FlagStringer = flagString
}

func newApp(g *globalOptions) *cli.App {
	fo := &fetchOptions{}
	app := &cli.App{
		Name:  "popfetch",
		Usage: "fetch mail from POP3 servers into a Maildir, an mbox or an MDA",
		Description: "popfetch retrieves new messages from the POP3 accounts of its configuration\n" +
			"($XDG_CONFIG_HOME/popfetch/config.toml) and delivers them, never deleting a\n" +
			"message from the server before it is safely delivered. Without a command it\n" +
			"runs fetch.",
		Version:                Version,
		UseShortOptionHandling: true,
		Writer:                 g.stdout,
		ErrWriter:              g.stderr,
		ExitErrHandler:         func(*cli.Context, error) {},
		OnUsageError:           onUsageError,
		CustomAppHelpTemplate:  cli.AppHelpTemplate + exitStatusHelp + "\n",
		Flags:                  append(g.flags(), fo.flags()...),
		Before:                 func(c *cli.Context) error { g.absorb(c); return nil },
		Action:                 func(c *cli.Context) error { return fo.action(c, g) },
		Commands: []*cli.Command{
			fetchCommand(g),
			daemonCommand(g),
			demoCommand(g),
			passwordCommand(g),
			oauthCommand(g),
			serverinfoCommand(g),
			checkCommand(g),
			configCommand(g),
			cacheCommand(g),
			completionCommand(g),
			manCommand(g),
		},
	}
	g.addGlobalFlags(app.Commands, true)
	return app
}

// globalCategory is where --help lists the global flags.
const globalCategory = "global"

// flags returns the flags every command takes, before or after the
// command word (CONTRACT §3: popfetch fetch -v = popfetch -v fetch).
// absorb reads them into g at each level: they bind to nothing, as
// urfave/cli resets what a flag binds to when a command parses its flags,
// which would undo what was given before the command word.
func (g *globalOptions) flags() []cli.Flag {
	config := &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "read the configuration from `FILE`", Category: globalCategory}
	verbose := &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what each account did; twice (-vv): trace the protocol, secrets redacted", Category: globalCategory}
	quiet := &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors", Category: globalCategory}
	progress := &cli.StringFlag{Name: "progress", Value: "auto", Usage: "draw progress bars `WHEN`: auto (on a terminal), always or never", Category: globalCategory}
	return []cli.Flag{config, verbose, quiet, progress}
}

// isGlobalFlag reports whether name is one of the global flags or aliases.
func isGlobalFlag(name string) bool {
	switch name {
	case "config", "c", "verbose", "v", "quiet", "q", "progress":
		return true
	}
	return false
}

// addGlobalFlags gives every command, and its subcommands, the global
// flags, read into g before the command's own Before and Action run.
// Top-level commands also check the flags given before the command word.
func (g *globalOptions) addGlobalFlags(cmds []*cli.Command, top bool) {
	for _, cmd := range cmds {
		cmd.Flags = append(cmd.Flags, g.flags()...)
		cmd.UseShortOptionHandling = true
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			g.absorb(c)
			if top {
				if err := rootFlags(c); err != nil {
					return err
				}
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
		g.addGlobalFlags(cmd.Subcommands, false)
	}
}

// absorb reads the global flags given after a command word into g: they
// add to (-v) or replace what was given before it.
func (g *globalOptions) absorb(c *cli.Context) {
	g.helpName = c.Command.HelpName
	verbose := false
	for _, name := range c.LocalFlagNames() {
		switch name {
		case "config", "c":
			g.configPath = c.String("config")
		case "verbose", "v":
			verbose = true
		case "quiet", "q":
			g.quiet = c.Bool("quiet")
		case "progress":
			g.progress = c.String("progress")
		}
	}
	if verbose {
		g.verbose += c.Count("verbose")
	}
}

// contradicts pairs the fetch flags of which the later wins.
var contradicts = map[string]string{"keep": "no-keep", "no-keep": "keep"}

// rootFlags handles the fetch flags given before a command word (the
// application takes them for `popfetch` without a command): fetch takes
// them as its own unless given again after the word; any other command
// refuses them, as they would be ignored.
func rootFlags(c *cli.Context) error {
	lineage := c.Lineage()
	if len(lineage) < 2 {
		return nil
	}
	root := lineage[1]
	local := map[string]bool{}
	for _, n := range c.LocalFlagNames() {
		local[n] = true
	}
	for _, name := range root.LocalFlagNames() {
		if isGlobalFlag(name) || local[name] {
			continue
		}
		if c.Command.Name != "fetch" {
			return usageError{err: fmt.Errorf("--%s is a flag of fetch, not of %s", name, c.Command.Name)}
		}
		if other := contradicts[name]; other != "" && local[other] {
			continue // --keep fetch --no-keep: the later one
		}
		if err := c.Set(name, fmt.Sprint(root.Value(name))); err != nil {
			return usageError{err: fmt.Errorf("--%s: %w", name, err)}
		}
	}
	return nil
}

// onUsageError makes urfave's flag parsing errors usage errors that know
// the command whose help to point to.
func onUsageError(c *cli.Context, err error, _ bool) error {
	u := usageError{err: err}
	if c.Command != nil {
		u.help = c.Command.HelpName
	}
	return u
}

// commandHelp adds the exit statuses to a command's help.
func commandHelp(extra string) string {
	return cli.CommandHelpTemplate + extra + exitStatusHelp + "\n"
}

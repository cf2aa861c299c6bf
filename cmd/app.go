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
}

func (g *globalOptions) logger() *slog.Logger {
	return newLogger(g.stderr, levelFor(g.verbose, g.quiet))
}

const exitStatusHelp = `
EXIT STATUS
   0   success, whether or not there was new mail (check: there is new mail)
   1   check only: no new mail
   64  bad command line
   65  the UID cache does not match the server (see --accept-all-as-new)
   69  server unreachable, connection lost, TLS failure, or SYS/PERM
   74  local delivery failed (disk full, MDA failed, mbox locked too long)
   75  temporary: account locked by another popfetch, IN-USE, LOGIN-DELAY,
       SYS/TEMP, or an MDA asked to try later
   76  the server broke the protocol
   77  authentication failed
   78  configuration error, or no credential found`

// Main runs popfetch with args (os.Args) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	app := newApp(g)
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	if err != nil && code != exitNoMail && !errors.Is(err, errReported) {
		printError(stderr, "", err)
		if code == exitUsage {
			fmt.Fprintf(stderr, "popfetch: hint: see popfetch --help\n")
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
		EnableBashCompletion:   true,
		Writer:                 g.stdout,
		ErrWriter:              g.stderr,
		ExitErrHandler:         func(*cli.Context, error) {},
		OnUsageError:           onUsageError,
		CustomAppHelpTemplate:  cli.AppHelpTemplate + exitStatusHelp + "\n",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "read the configuration from `FILE`", Destination: &g.configPath},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what each account did; twice (-vv): trace the protocol, secrets redacted", Count: &g.verbose},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors", Destination: &g.quiet},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress bars: auto (on a terminal), always or never", Destination: &g.progress},
		}, fo.flags()...),
		Action: func(c *cli.Context) error { return fo.action(c, g) },
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
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return usageError{err} }

// commandHelp adds the exit statuses to a command's help.
func commandHelp(extra string) string {
	return cli.CommandHelpTemplate + extra + exitStatusHelp + "\n"
}

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// passwordOptions are the options of password set and password delete.
type passwordOptions struct {
	account string        // a configured account's name, or USER@HOST[:PORT]
	oneOff  oneOffOptions // or the mailbox of the one-off flags
	// stdin is read when prompt is nil: one line.
	stdin io.Reader
	// prompt asks on the terminal without echo; nil when standard input
	// is not a terminal.
	prompt func(what string) (string, error)
}

const passwordKeyringHelp = `
KEYRING
   The password is kept in the OS keyring (the Secret Service: gnome-keyring,
   KeePassXC, ...) under the service "popfetch" and the key USER@HOST of the
   account's mailbox (USER@HOST:PORT on a port that is not the standard one
   of its TLS mode). fetch uses it when the account has neither
   password_command nor password, which come first. ACCOUNT is the name of a
   configured account, or the key itself; --host, --user (and --port, --tls)
   name the mailbox of a one-off fetch.

   The Secret Service lives on the D-Bus session bus of a desktop session.
   popfetch finds that bus without one in its environment (the socket
   /run/user/UID/bus of a systemd user session), but never starts a bus or
   a keyring itself: under cron without a session, or with the keyring
   locked, it stops at once with exit 78. For cron jobs that run while
   nobody is logged in, use password_command instead.
`

func passwordCommand(g *globalOptions) *cli.Command {
	set, del := &passwordOptions{}, &passwordOptions{}
	return &cli.Command{
		Name:  "password",
		Usage: "store or remove an account's password in the OS keyring",
		Description: "popfetch password set ACCOUNT asks for the password (without echo on a\n" +
			"terminal, else it reads one line of standard input) and stores it in the OS\n" +
			"keyring; popfetch password delete ACCOUNT removes it.",
		OnUsageError:       onUsageError,
		CustomHelpTemplate: cli.SubcommandHelpTemplate + passwordKeyringHelp + passwordExitHelp + "\n",
		Subcommands: []*cli.Command{
			{
				Name:      "set",
				Usage:     "store the password of ACCOUNT in the OS keyring",
				ArgsUsage: "ACCOUNT | USER@HOST[:PORT] | --host HOST --user USER [--port PORT] [--tls MODE]",
				Description: "Asks for the password without echo when standard input is a terminal;\n" +
					"otherwise reads exactly one line of standard input (a final LF or CRLF is\n" +
					"not part of the password), e.g.: pass show mail | popfetch password set work",
				Flags:              set.oneOff.identityFlags("store the password of"),
				OnUsageError:       onUsageError,
				CustomHelpTemplate: cli.CommandHelpTemplate + passwordKeyringHelp + passwordExitHelp + "\n",
				Action: func(c *cli.Context) error {
					if err := set.args(c); err != nil {
						return err
					}
					set.stdin, set.prompt = os.Stdin, terminalPrompt()
					return runPasswordSet(c.Context, g, set)
				},
			},
			{
				Name:               "delete",
				Usage:              "remove the password of ACCOUNT from the OS keyring",
				ArgsUsage:          "ACCOUNT | USER@HOST[:PORT] | --host HOST --user USER [--port PORT] [--tls MODE]",
				Description:        "Removes the stored password. If none was stored, says so and exits 0.",
				Flags:              del.oneOff.identityFlags("remove the password of"),
				OnUsageError:       onUsageError,
				CustomHelpTemplate: cli.CommandHelpTemplate + passwordKeyringHelp + passwordExitHelp + "\n",
				Action: func(c *cli.Context) error {
					if err := del.args(c); err != nil {
						return err
					}
					return runPasswordDelete(c.Context, g, del)
				},
			},
		},
	}
}

const passwordExitHelp = `
EXIT STATUS
   0   the password was stored, or deleted; delete also when none was stored
   64  bad command line, unknown account, or an empty password
   78  configuration error, or the OS keyring is not available`

// args reads the ACCOUNT argument, or the one-off flags.
func (o *passwordOptions) args(c *cli.Context) error {
	o.oneOff.read(c)
	oneOff, err := o.oneOff.active(c.Args().Slice())
	switch {
	case err != nil:
		return err
	case !oneOff && c.NArg() != 1:
		return usageError{err: fmt.Errorf("%s takes one ACCOUNT, or --host and --user", c.Command.HelpName)}
	}
	o.account = c.Args().First()
	return nil
}

// passwordAccount resolves the account: the one-off flags' mailbox,
// USER@HOST[:PORT] as it is (an account name has no @), else a configured
// account. legacy is the key an adopted mailbox's password may still be
// under (see config.Account.AdoptKey), or "".
func passwordAccount(g *globalOptions, o *passwordOptions) (label, key, legacy string, acct *config.Account, err error) {
	if o.oneOff.host == "" && strings.Contains(o.account, "@") {
		return o.account, o.account, "", nil, nil
	}
	a, err := o.oneOff.resolve(g, o.account, true)
	if err != nil {
		return "", "", "", nil, err
	}
	if isOneOff(a) {
		return a.Key(), a.Key(), "", nil, nil
	}
	return o.account, a.Key(), legacyKey("", a), a, nil
}

// runPasswordSet stores an account's password in the OS keyring.
func runPasswordSet(_ context.Context, g *globalOptions, o *passwordOptions) error {
	label, key, _, acct, err := passwordAccount(g, o)
	if err != nil {
		return err
	}
	var pw string
	if o.prompt != nil {
		pw, err = o.prompt("password for " + key)
	} else {
		pw, err = readLine(o.stdin)
	}
	if err != nil {
		return err
	}
	if pw == "" {
		return usageError{err: errors.New("the password is empty: nothing stored")}
	}
	if err := keyringSet(key, pw); err != nil {
		return err
	}
	log := g.logger().With("account", label)
	if acct != nil {
		switch {
		case acct.PasswordCommand != "":
			log.Warn("password_command is set and comes first: the stored password is not used while it is")
		case acct.Password != "":
			log.Warn("password is set in the configuration and comes first: the stored password is not used while it is")
		}
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "popfetch: %s: password stored in the OS keyring (service %q, key %q)\n", label, keyringService, key)
	}
	return nil
}

// runPasswordDelete removes an account's password from the OS keyring.
func runPasswordDelete(_ context.Context, g *globalOptions, o *passwordOptions) error {
	label, key, legacy, _, err := passwordAccount(g, o)
	if err != nil {
		return err
	}
	found, err := keyringDelete(key)
	if err != nil {
		return err
	}
	oldFound := false
	if legacy != "" {
		// The mailbox's password under its old name goes too: else fetch
		// would still find it there.
		if oldFound, err = keyringDelete(legacy); err != nil {
			return err
		}
	}
	switch {
	case !found && !oldFound:
		fmt.Fprintf(g.stderr, "popfetch: %s: no password stored in the OS keyring for %s: nothing to delete\n", label, key)
	case g.quiet:
	case found:
		fmt.Fprintf(g.stderr, "popfetch: %s: password deleted from the OS keyring (key %q)\n", label, key)
		fallthrough
	case oldFound:
		if oldFound {
			fmt.Fprintf(g.stderr, "popfetch: %s: password deleted from the OS keyring (key %q, the mailbox's name before the port was part of it)\n", label, legacy)
		}
	}
	return nil
}

// maxSecretLine bounds the line read from standard input.
const maxSecretLine = 64 << 10

// readLine reads exactly one line, byte by byte so that nothing after it
// is consumed: up to LF or the end of input, without the LF and a CR
// before it.
func readLine(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) == maxSecretLine {
				return "", usageError{err: fmt.Errorf("the password line is longer than %d bytes", maxSecretLine)}
			}
			line = append(line, b[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
	}
	return strings.TrimSuffix(string(line), "\r"), nil
}

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
	account string // a configured account's name, or USER@HOST
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
   account. fetch uses it when the account has neither password_command nor
   password, which come first. ACCOUNT is the name of a configured account,
   or USER@HOST itself.
`

func passwordCommand(g *globalOptions) *cli.Command {
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
				ArgsUsage: "ACCOUNT",
				Description: "Asks for the password without echo when standard input is a terminal;\n" +
					"otherwise reads exactly one line of standard input (a final LF or CRLF is\n" +
					"not part of the password), e.g.: pass show mail | popfetch password set work",
				OnUsageError:       onUsageError,
				CustomHelpTemplate: cli.CommandHelpTemplate + passwordKeyringHelp + passwordExitHelp + "\n",
				Action: func(c *cli.Context) error {
					o, err := passwordArgs(c)
					if err != nil {
						return err
					}
					o.stdin, o.prompt = os.Stdin, terminalPrompt()
					return runPasswordSet(c.Context, g, o)
				},
			},
			{
				Name:               "delete",
				Usage:              "remove the password of ACCOUNT from the OS keyring",
				ArgsUsage:          "ACCOUNT",
				Description:        "Removes the stored password. If none was stored, says so and exits 0.",
				OnUsageError:       onUsageError,
				CustomHelpTemplate: cli.CommandHelpTemplate + passwordKeyringHelp + passwordExitHelp + "\n",
				Action: func(c *cli.Context) error {
					o, err := passwordArgs(c)
					if err != nil {
						return err
					}
					return runPasswordDelete(c.Context, g, o)
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

func passwordArgs(c *cli.Context) (*passwordOptions, error) {
	if c.NArg() != 1 {
		return nil, usageError{fmt.Errorf("%s takes one ACCOUNT", c.Command.HelpName)}
	}
	return &passwordOptions{account: c.Args().First()}, nil
}

// passwordAccount resolves the ACCOUNT argument: USER@HOST as it is (an
// account name has no @), else a configured account.
func passwordAccount(g *globalOptions, name string) (label, key string, acct *config.Account, err error) {
	if strings.Contains(name, "@") {
		return name, name, nil, nil
	}
	a, err := loadAccount(g, name)
	if err != nil {
		return "", "", nil, err
	}
	return name, a.Key(), a, nil
}

// runPasswordSet stores an account's password in the OS keyring.
func runPasswordSet(_ context.Context, g *globalOptions, o *passwordOptions) error {
	label, key, acct, err := passwordAccount(g, o.account)
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
		return usageError{errors.New("the password is empty: nothing stored")}
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
	label, key, _, err := passwordAccount(g, o.account)
	if err != nil {
		return err
	}
	found, err := keyringDelete(key)
	if err != nil {
		return err
	}
	switch {
	case !found:
		fmt.Fprintf(g.stderr, "popfetch: %s: no password stored in the OS keyring for %s: nothing to delete\n", label, key)
	case !g.quiet:
		fmt.Fprintf(g.stderr, "popfetch: %s: password deleted from the OS keyring (key %q)\n", label, key)
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
				return "", usageError{fmt.Errorf("the password line is longer than %d bytes", maxSecretLine)}
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

package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// oneOffOptions define an account on the command line, without a
// configuration file: fetch takes all of them, serverinfo those of the
// server and its certificate, password those of the mailbox's identity.
type oneOffOptions struct {
	host, user, tls, tlsCAFile, tlsFingerprint string
	port                                       int
	maildir, mbox, mda, passwordCmd            string
	// given are the one-off flags on the command line, as --NAME.
	given []string
}

// oneOffCategory is where --help lists the one-off flags.
const oneOffCategory = "one-off account, without a configuration file"

// identityFlags are the flags that name a mailbox: --host, --port, --tls,
// --user.
func (o *oneOffOptions) identityFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "host", Usage: what + " the server `HOST`, instead of a configured ACCOUNT", Destination: &o.host, Category: oneOffCategory},
		&cli.IntFlag{Name: "port", Usage: "the server's `PORT`", Destination: &o.port, Category: oneOffCategory, DefaultText: "995, or 110 without implicit TLS"},
		&cli.StringFlag{Name: "tls", Value: "implicit", Usage: "`MODE`: implicit, starttls or none", Destination: &o.tls, Category: oneOffCategory, DefaultText: "implicit"},
		&cli.StringFlag{Name: "user", Usage: "log in as `USER`", Destination: &o.user, Category: oneOffCategory},
	}
}

// trustFlags are the flags that decide whether the server's certificate
// is trusted.
func (o *oneOffOptions) trustFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-ca-file", Usage: "also trust the CAs in `FILE`", Destination: &o.tlsCAFile, Category: oneOffCategory},
		&cli.StringFlag{Name: "tls-fingerprint", Usage: "trust the certificate whose SHA-256 is `PIN` (\"sha256:HEX\", as serverinfo prints it)", Destination: &o.tlsFingerprint, Category: oneOffCategory},
	}
}

// deliveryFlags are the rest of a one-off fetch's flags.
func (o *oneOffOptions) deliveryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "maildir", Usage: "deliver into the Maildir `DIR`", Destination: &o.maildir, Category: oneOffCategory},
		&cli.StringFlag{Name: "mbox", Usage: "deliver into the mbox `FILE`", Destination: &o.mbox, Category: oneOffCategory},
		&cli.StringFlag{Name: "mda", Usage: "deliver through `COMMAND` (%F sender, %T user)", Destination: &o.mda, Category: oneOffCategory},
		&cli.StringFlag{Name: "password-command", Usage: "the password is the first line printed by `COMMAND`", Destination: &o.passwordCmd, Category: oneOffCategory},
	}
}

// read records which one-off flags c was given.
func (o *oneOffOptions) read(c *cli.Context) {
	o.given = nil
	for _, f := range c.Command.Flags {
		if cf, ok := f.(cli.CategorizableFlag); !ok || cf.GetCategory() != oneOffCategory {
			continue
		}
		name := f.Names()[0]
		if c.IsSet(name) {
			o.given = append(o.given, "--"+name)
		}
	}
}

// active reports whether the command line defines a one-off account. A
// one-off flag without --host is a usage error that names it: it would
// be ignored for a configured account (CONTRACT §3).
func (o *oneOffOptions) active(accounts []string) (bool, error) {
	if o.host == "" {
		if len(o.given) > 0 {
			return false, usageError{err: fmt.Errorf("%s needs --host: the one-off flags define an account without a configuration file "+
				"(a configured account's settings are changed in the configuration)", o.given[0])}
		}
		return false, nil
	}
	if len(accounts) > 0 {
		return false, usageError{err: fmt.Errorf("--host defines a one-off account: give no ACCOUNT (%q) with it", accounts[0])}
	}
	return true, nil
}

// resolve returns the account a command that takes one ACCOUNT is to work
// on: the one-off flags' (with a user, unless the server alone matters),
// else the configured one named.
func (o *oneOffOptions) resolve(g *globalOptions, name string, needUser bool) (*config.Account, error) {
	if o.host == "" {
		return loadAccount(g, name)
	}
	if needUser && o.user == "" {
		return nil, usageError{err: errors.New("--host needs --user: the mailbox is USER@HOST")}
	}
	return o.account(false)
}

// account builds the one-off account of the flags, starting from
// config.NewAccount like a configured one. fetch needs a user and exactly
// one delivery target; serverinfo neither.
func (o *oneOffOptions) account(forFetch bool) (*config.Account, error) {
	if forFetch && o.user == "" {
		return nil, usageError{err: errors.New("a one-off fetch needs both --host and --user")}
	}
	n := 0
	for _, s := range []string{o.maildir, o.mbox, o.mda} {
		if s != "" {
			n++
		}
	}
	if forFetch && n != 1 {
		return nil, usageError{err: errors.New("a one-off fetch needs exactly one of --maildir, --mbox or --mda")}
	}
	mode := config.TLSMode(o.tls)
	switch mode {
	case config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
	default:
		return nil, usageError{err: fmt.Errorf("--tls %q: want implicit, starttls or none", o.tls)}
	}
	port := o.port
	if port == 0 {
		port = config.StandardPort(mode)
	}
	if port < 1 || port > 65535 {
		return nil, usageError{err: fmt.Errorf("--port %d: want 1 to 65535", port)}
	}
	env := config.OSEnv()
	expand := func(flag, p string) (string, error) {
		if p == "" {
			return "", nil
		}
		x, err := config.ExpandPath(p, env)
		if err != nil {
			return "", usageError{err: fmt.Errorf("%s: %w", flag, err)}
		}
		return x, nil
	}
	a := config.NewAccount(env)
	a.Name, a.Host, a.Port, a.TLS, a.User = o.host, o.host, port, mode, o.user
	a.PasswordCommand = o.passwordCmd
	a.Deliver.MDA = o.mda
	var err error
	if o.tlsFingerprint != "" {
		if a.TLSFingerprint, err = config.ParseFingerprint(o.tlsFingerprint); err != nil {
			return nil, usageError{err: fmt.Errorf("--tls-fingerprint: %w", err)}
		}
	}
	if a.TLSCAFile, err = expand("--tls-ca-file", o.tlsCAFile); err != nil {
		return nil, err
	}
	if a.Deliver.Maildir, err = expand("--maildir", o.maildir); err != nil {
		return nil, err
	}
	if a.Deliver.Mbox, err = expand("--mbox", o.mbox); err != nil {
		return nil, err
	}
	return a, nil
}

// terminalPrompt returns a function asking for a secret on the terminal,
// without echo, or nil when standard input is not a terminal.
func terminalPrompt() func(string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return func(what string) (string, error) {
		fmt.Fprintf(os.Stderr, "popfetch: %s: ", what)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", &credentialError{msg: "reading the password from the terminal", err: err}
		}
		return string(b), nil
	}
}

// loadAccount returns the configured account named, for commands that
// take one ACCOUNT.
func loadAccount(g *globalOptions, name string) (*config.Account, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	accts, err := cfg.Select([]string{name})
	if err != nil {
		return nil, err
	}
	return accts[0], nil
}

// loadConfig loads the configuration of -c, or the default one.
func loadConfig(g *globalOptions) (*config.Config, error) {
	path := g.configPath
	if path == "" {
		path = config.DefaultPath(config.OSEnv())
	}
	return config.Load(path)
}

package cmd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// account builds the account of a one-off fetch from the flags, with the
// defaults a configured account would have.
func (o *oneOffOptions) account() (*config.Account, error) {
	if o.host == "" || o.user == "" {
		return nil, usageError{errors.New("a one-off fetch needs both --host and --user")}
	}
	n := 0
	for _, s := range []string{o.maildir, o.mbox, o.mda} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, usageError{errors.New("a one-off fetch needs exactly one of --maildir, --mbox or --mda")}
	}
	mode := config.TLSMode(o.tls)
	switch mode {
	case config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
	default:
		return nil, usageError{fmt.Errorf("--tls %q: want implicit, starttls or none", o.tls)}
	}
	port := o.port
	if port == 0 {
		port = config.StandardPort(mode)
	}
	if port < 1 || port > 65535 {
		return nil, usageError{fmt.Errorf("--port %d: want 1 to 65535", port)}
	}
	env := config.OSEnv()
	expand := func(flag, p string) (string, error) {
		if p == "" {
			return "", nil
		}
		x, err := config.ExpandPath(p, env)
		if err != nil {
			return "", usageError{fmt.Errorf("%s: %w", flag, err)}
		}
		return x, nil
	}
	a := config.NewAccount(env)
	a.Name, a.Host, a.Port, a.TLS, a.User = o.host, o.host, port, mode, o.user
	a.PasswordCommand = o.passwordCmd
	a.Deliver.MDA = o.mda
	var err error
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

package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// keyringService is the OS keyring service popfetch's secrets live under,
// with the account's USER@HOST as the key (CONTRACT §2).
const keyringService = "popfetch"

// credentialError is a credential that could not be found or obtained:
// a configuration problem (exit 78).
type credentialError struct {
	account string
	msg     string
	err     error
	keyring bool // the OS keyring could not be used
}

func (e *credentialError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *credentialError) Unwrap() error { return e.err }

// accountCredentials finds an account's secrets in the order of CONTRACT
// §2: password_command, then password, then the OS keyring, then (for a
// one-off fetch on a terminal) a prompt.
type accountCredentials struct {
	acct   *config.Account
	prompt func(what string) (string, error) // nil: no terminal
	log    *slog.Logger                      // nil: warnings to stderr
	oauth  oauthState                        // oauth_provider's tokens, for this run
	g      *globalOptions                    // for hints: the commands that fix things
}

func (c *accountCredentials) Password(ctx context.Context) (string, error) {
	a := c.acct
	if a.PasswordCommand != "" {
		return runSecretCommand(ctx, "password_command", a.PasswordCommand)
	}
	if a.Password != "" {
		return string(a.Password), nil
	}
	pw, err := keyringLookup(a.Key(), legacyKey("", a))
	if err == nil && pw != "" {
		return pw, nil
	}
	if c.prompt != nil {
		return c.prompt(fmt.Sprintf("password for %s", a.Key()))
	}
	if err != nil {
		// Say why the keyring could not be read, and what works without
		// it: under cron there is no session bus.
		var ce *credentialError
		if errors.As(err, &ce) && ce.err != nil {
			err = ce.err
		}
		return "", &credentialError{account: a.Name, keyring: true, msg: fmt.Sprintf("no password for %s: %v; "+
			"use password_command (e.g. `secret-tool lookup service %s username %s`, or any command that prints it)",
			a.Key(), err, keyringService, a.Key())}
	}
	return "", &credentialError{account: a.Name, msg: fmt.Sprintf("no password for %s: set password_command, or store one with `%s`",
		a.Key(), c.g.commandFor(a, "password", "set"))}
}

func (c *accountCredentials) Token(ctx context.Context) (string, error) {
	a := c.acct
	if a.OAuthTokenCommand != "" {
		return runSecretCommand(ctx, "oauth_token_command", a.OAuthTokenCommand)
	}
	if a.OAuthProvider != "" {
		// Built-in refresh from the refresh token in the OS keyring.
		return c.oauth.token(ctx, c.g, a, c.log)
	}
	return "", &credentialError{account: a.Name, msg: "no OAuth2 token source: set oauth_token_command, or oauth_provider and oauth_client_id"}
}

// runSecretCommand runs a user's command through sh (it is the user's own
// configuration, like fetchmail's passwordeval) and returns the first line
// of its output. Its stderr goes to ours, so a prompting tool still works.
func runSecretCommand(ctx context.Context, key, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.Stdin = os.Stdin
	if err := cmd.Run(); err != nil {
		return "", &credentialError{msg: fmt.Sprintf("%s %q failed", key, command), err: err}
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", &credentialError{msg: fmt.Sprintf("%s %q printed nothing", key, command)}
	}
	return line, nil
}

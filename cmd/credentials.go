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
	"sync/atomic"
	"syscall"
	"time"

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
	// ready is what the secret command said, run by prepare before
	// connecting; nil if prepare did not run it.
	ready *string
}

// errStoppedEarly is prepare's answer when a graceful stop came while the
// secret command ran: the account's run ends before it began.
var errStoppedEarly = errors.New("stopped before connecting")

// prepare runs, now, the command that the login will ask a secret of
// (password_command or oauth_token_command), so that a command that
// fails, hangs or asks for something never holds a connection open or
// makes a server wait: nothing goes to the network before it has
// answered. A closed stop cuts the command and returns errStoppedEarly.
func (c *accountCredentials) prepare(ctx context.Context, stop <-chan struct{}) error {
	key, command := secretCommand(c.acct)
	if command == "" {
		return nil
	}
	s, err := runSecretCommand(ctx, stop, c.acct.Timeout, key, command)
	if err != nil {
		return err
	}
	c.ready = &s
	return nil
}

// secretCommand returns the command, and its key, that the login of a
// will run for its secret, or "" if none: oauth_token_command when the
// login is by a bearer token (as engine's chooseAuth decides: auth says
// so, or auth is "auto" and a token source is configured), else
// password_command.
func secretCommand(a *config.Account) (key, command string) {
	token := false
	switch a.Auth {
	case config.AuthXOAuth2, config.AuthOAuthBearer:
		token = true
	case config.AuthAuto, "":
		token = a.OAuthTokenCommand != "" || a.OAuthProvider != ""
	}
	switch {
	case token && a.OAuthTokenCommand != "":
		return "oauth_token_command", a.OAuthTokenCommand
	case !token && a.PasswordCommand != "":
		return "password_command", a.PasswordCommand
	}
	return "", ""
}

func (c *accountCredentials) Password(ctx context.Context) (string, error) {
	a := c.acct
	if a.PasswordCommand != "" {
		if c.ready != nil {
			return *c.ready, nil
		}
		return runSecretCommand(ctx, nil, a.Timeout, "password_command", a.PasswordCommand)
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
		if c.ready != nil {
			return *c.ready, nil
		}
		return runSecretCommand(ctx, nil, a.Timeout, "oauth_token_command", a.OAuthTokenCommand)
	}
	if a.OAuthProvider != "" {
		// Built-in refresh from the refresh token in the OS keyring.
		return c.oauth.token(ctx, c.g, a, c.log)
	}
	return "", &credentialError{account: a.Name, msg: "no OAuth2 token source: set oauth_token_command, or oauth_provider and oauth_client_id"}
}

// secretOutputLimit bounds what a secret command may print: a password or
// a token is a line, not a stream.
const secretOutputLimit = 64 << 10

// runSecretCommand runs a user's command through sh (it is the user's own
// configuration, like fetchmail's passwordeval) and returns the first line
// of its output. It runs in a process group of its own, with no standard
// input (/dev/null) and our stderr, for at most timeout (the account's;
// 0: config.DefaultTimeout). When the time runs out, ctx ends or stop
// closes, the whole group is killed — the shell and whatever it started —
// and a process that keeps the output pipe open is not waited for. The
// output is capped at secretOutputLimit.
func runSecretCommand(ctx context.Context, stop <-chan struct{}, timeout time.Duration, key, command string) (string, error) {
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stopped atomic.Bool
	if stop != nil {
		go func() {
			select {
			case <-stop:
				stopped.Store(true)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// The shell's children may hold the output pipe after it exits or
	// is killed: Wait stops waiting for them after this.
	cmd.WaitDelay = time.Second
	out := &capBuffer{limit: secretOutputLimit}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited but left a process holding its output: end it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	what := fmt.Sprintf("%s %q", key, command)
	switch {
	case stopped.Load() && ctx.Err() != nil:
		return "", errStoppedEarly
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", &credentialError{msg: fmt.Sprintf("%s did not finish within %v (the account's timeout): "+
			"it was killed, with every process it started; it runs without a terminal to read from", what, timeout)}
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s: %w", what, ctx.Err())
	case out.over:
		return "", &credentialError{msg: fmt.Sprintf("%s printed more than %d KiB: a password or a token is one line", what, secretOutputLimit>>10)}
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		return "", &credentialError{msg: what + " failed", err: err}
	}
	line, _, _ := strings.Cut(out.b.String(), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", &credentialError{msg: what + " printed nothing"}
	}
	return line, nil
}

// capBuffer keeps what is written to it, up to limit bytes; past that it
// fails the write, so that the command's output pipe is closed.
type capBuffer struct {
	b     bytes.Buffer
	limit int
	over  bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > c.limit {
		c.over = true
		return 0, errors.New("output too long")
	}
	return c.b.Write(p)
}

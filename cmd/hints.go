package cmd

import (
	"strconv"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// Hints and messages that tell a command must print one that works as
// printed: pasted into the same shell, it acts on the same account. So
// they carry -c FILE when the configuration is not the default one, and
// name a one-off account (no configuration: fetch --host ...) by its
// one-off flags, which serverinfo and password take too.

// commandFor returns "popfetch [-c FILE] WORDS... ACCOUNT" for the account
// a, with the one-off flags in place of ACCOUNT for a one-off account: all
// of them for fetch, those of the server and its certificate for
// serverinfo, those of the mailbox for the other commands.
func (g *globalOptions) commandFor(a *config.Account, words ...string) string {
	if isOneOff(a) {
		return shellJoin(append(append([]string{"popfetch"}, words...), oneOffArgs(a, words[0])...))
	}
	return shellJoin(append(append(g.configArgs(), words...), a.Name))
}

// isOneOff reports whether a was defined on the command line rather than
// read from a configuration file.
func isOneOff(a *config.Account) bool { return a.File == "" }

// oneOffArgs are the flags that define a one-off account again for the
// command: its server and user, how its certificate is checked
// (serverinfo, fetch), and where its mail goes (fetch).
func oneOffArgs(a *config.Account, command string) []string {
	trust := command == "serverinfo" || command == "fetch"
	args := []string{"--host", a.Host}
	if a.Port != config.StandardPort(a.TLS) {
		args = append(args, "--port", strconv.Itoa(a.Port))
	}
	if a.TLS != config.TLSImplicit {
		args = append(args, "--tls", string(a.TLS))
	}
	args = append(args, "--user", a.User)
	if trust && a.TLSCAFile != "" {
		args = append(args, "--tls-ca-file", a.TLSCAFile)
	}
	if trust && a.TLSFingerprint != "" {
		args = append(args, "--tls-fingerprint", a.TLSFingerprint)
	}
	if command != "fetch" {
		return args
	}
	for _, f := range []struct{ flag, v string }{
		{"--maildir", a.Deliver.Maildir}, {"--mbox", a.Deliver.Mbox}, {"--mda", a.Deliver.MDA},
		{"--password-command", a.PasswordCommand},
	} {
		if f.v != "" {
			args = append(args, f.flag, f.v)
		}
	}
	return args
}

// shellJoin joins words into a command line for a POSIX shell, quoting
// those that need it.
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

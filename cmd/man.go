package cmd

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// The manual page is made from what --help shows — the commands, their
// flags and descriptions — and the configuration keys of config.Keys, as
// the starter of config init and the check of config.example.toml are:
// one source, so none of them can fall behind.

// exitStatus is a line of the exit status table (CONTRACT §4).
type exitStatus struct {
	code    int
	meaning string
}

// exitStatuses are the exit statuses of every command; --help ends with
// them and the manual page has them.
var exitStatuses = []exitStatus{
	{exitOK, "success, whether or not there was new mail (check: there is new mail)"},
	{exitNoMail, "check only: no new mail"},
	{exitUsage, "bad command line"},
	{exitCacheMatch, "the UID cache does not match the server (see --accept-all-as-new)"},
	{exitUnavailable, "server unreachable, connection lost, TLS failure, or SYS/PERM"},
	{exitIOErr, "local delivery failed (disk full, MDA failed, mbox locked too long)"},
	{exitTempFail, "temporary: account locked by another popfetch, IN-USE, LOGIN-DELAY, SYS/TEMP, or an MDA asked to try later"},
	{exitProtocol, "the server broke the protocol"},
	{exitNoPerm, "authentication failed"},
	{exitConfig, "configuration error, or no credential found"},
}

// exitStatusHelp is the EXIT STATUS section of --help.
var exitStatusHelp = func() string {
	var b strings.Builder
	b.WriteString("\nEXIT STATUS")
	for _, s := range exitStatuses {
		for i, line := range wrapWords(s.meaning, 70) {
			if i == 0 {
				fmt.Fprintf(&b, "\n   %-3d %s", s.code, line)
			} else {
				fmt.Fprintf(&b, "\n       %s", line)
			}
		}
	}
	return b.String()
}()

// flagString shows a flag in --help as urfave/cli does, but gives a
// default only where it says something: not false, 0 or "".
func flagString(f cli.Flag) string {
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return ""
	}
	placeholder, usage := unquoteUsage(df.GetUsage())
	if df.TakesValue() && placeholder == "" {
		placeholder = "value"
	}
	var names []string
	for _, n := range df.Names() {
		name := flagPrefix(n) + n
		if df.TakesValue() {
			name += " " + placeholder
		}
		names = append(names, name)
	}
	if d := flagDefault(df); d != "" {
		usage += " (default: " + d + ")"
	}
	return strings.Join(names, ", ") + "\t" + usage
}

// flagDefault is a flag's default worth showing, or "".
func flagDefault(df cli.DocGenerationFlag) string {
	if !df.TakesValue() {
		return ""
	}
	d := df.GetDefaultText()
	if u, err := strconv.Unquote(d); err == nil {
		d = u
	}
	switch d {
	case "", "0", "false", "[]":
		return ""
	}
	return d
}

func flagPrefix(name string) string {
	if len(name) == 1 {
		return "-"
	}
	return "--"
}

// unquoteUsage returns the `PLACEHOLDER` of a usage text and the text
// without its backticks.
func unquoteUsage(usage string) (placeholder, text string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	placeholder = usage[i+1 : i+1+j]
	return placeholder, usage[:i] + placeholder + usage[i+2+j:]
}

// writeMan writes the manual page, in roff, of the application.
func writeMan(w io.Writer, app *cli.App) error {
	m := &manWriter{}
	m.line(`.TH POPFETCH 1 "" "popfetch %s" "User Commands"`, roffText(app.Version))
	m.section("NAME")
	m.text("popfetch \\- " + roffText(app.Usage))
	m.section("SYNOPSIS")
	m.line(`.B popfetch`)
	m.line(`[\fIglobal flags\fR] [\fIcommand\fR] [\fIargs\fR]`)
	m.section("DESCRIPTION")
	m.para(app.Description)
	m.para("It is built around one promise: a message is deleted from the server only after it is safely on " +
		"disk. Deliveries are fsynced before the server is told to delete anything, the record of what was " +
		"fetched is replaced atomically, and a session cut before the server confirmed the deletions is " +
		"finished on the next run, without fetching anything twice.")

	m.section("GLOBAL FLAGS")
	m.para("They go before or after the command word: popfetch fetch -v is popfetch -v fetch.")
	for _, f := range app.Flags {
		if cat, ok := f.(cli.CategorizableFlag); ok && cat.GetCategory() == globalCategory {
			m.flag(f)
		}
	}

	m.section("COMMANDS")
	m.para("Without a command, popfetch fetches: it takes fetch's flags and arguments.")
	for _, c := range app.Commands {
		m.command(c, "")
	}

	m.section("CONFIGURATION")
	m.para("The configuration is a TOML file: $XDG_CONFIG_HOME/popfetch/config.toml, else " +
		"~/.config/popfetch/config.toml, or the FILE of -c. Each [[account]] table is an account; a " +
		"[defaults] table gives any key (but name) a default for every account, and an account undoes one " +
		"with an empty string. The delivery target goes in the account's [account.deliver] table " +
		"(or [defaults.deliver]). ~ and $VAR are expanded in paths, which must then be absolute. Mistakes " +
		"are reported as FILE:LINE: what is wrong, and nothing runs; popfetch config check lists them all. " +
		"popfetch config init writes a starter file with every key.")
	m.para("An account's mailbox is USER@HOST, or USER@HOST:PORT on a port that is not the standard one of " +
		"its TLS mode (995 for implicit TLS, 110 otherwise): its UID cache, its lock and its keyring entry " +
		"belong to it, so renaming an account fetches nothing again.")
	m.subsection("Keys of [[account]] and [defaults]")
	for _, k := range config.Keys() {
		if !strings.HasPrefix(k.Name, "deliver.") {
			m.key(k, k.Name)
		}
	}
	m.subsection("Keys of [account.deliver]")
	m.para("Exactly one delivery target: " + orListRoff(config.Keys()) + ".")
	for _, k := range config.Keys() {
		if name, ok := strings.CutPrefix(k.Name, "deliver."); ok {
			m.key(k, name)
		}
	}

	m.section("EXIT STATUS")
	m.para("With several accounts, each failure is reported and the exit status is that of the first failed " +
		"account in configuration order; the other accounts are still fetched.")
	for _, s := range exitStatuses {
		m.line(".TP")
		m.line(`.B %d`, s.code)
		m.text(roffText(s.meaning))
	}

	m.section("FILES")
	for _, f := range [][2]string{
		{"$XDG_CONFIG_HOME/popfetch/config.toml, ~/.config/popfetch/config.toml", "the configuration (mode 0600 when it holds a password)."},
		{"$XDG_STATE_HOME/popfetch/, ~/.local/state/popfetch/", "the state directory (state_dir), mode 0700: for each mailbox USER@HOST.uidl, the UID cache (what was retrieved, and when it was first seen), and USER@HOST.lock, its lock."},
		{"~/.fetchmailrc, ~/.mpoprc", "what popfetch config import translates."},
	} {
		m.line(".TP")
		m.line(`.I %s`, roffText(f[0]))
		m.text(roffText(f[1]))
	}

	m.section("ENVIRONMENT")
	for _, e := range [][2]string{
		{"HOME, XDG_CONFIG_HOME, XDG_STATE_HOME", "where the configuration and the state directory are; ~ in paths."},
		{"DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR", "the session bus of the OS keyring (the Secret Service); without one (cron), a password from the keyring cannot be had, and popfetch says so: it never starts a bus or a keyring itself."},
		{"TMPDIR", "where the message an MDA reads is spooled."},
		{"PATH", "where the program of an mda command is looked up."},
		{clientSecretEnv, "the OAuth2 client secret, given once to popfetch oauth login."},
		{"JOURNAL_STREAM", "set by systemd when standard error is the journal: the daemon then writes no timestamps of its own."},
	} {
		m.line(".TP")
		m.line(`.B %s`, roffText(e[0]))
		m.text(roffText(e[1]))
	}

	m.section("EXAMPLES")
	for _, ex := range [][2]string{
		{"popfetch demo", "Fetch sample mail from a POP3 server built into popfetch, into ./popfetch-demo/: no setup."},
		{"popfetch config init", "Write a starter configuration to fill in; then popfetch config check."},
		{"popfetch config import > ~/.config/popfetch/config.toml", "Start from ~/.fetchmailrc or ~/.mpoprc."},
		{"popfetch -v", "Fetch every account and say what each did."},
		{"popfetch check --list work", "Show the new messages of the account work, without fetching them."},
		{"popfetch password set work", "Store the password of work in the OS keyring."},
		{"popfetch fetch --host pop.example.org --user alice --maildir ~/Mail", "Fetch once from a server, without a configuration (asks for the password on a terminal)."},
		{"popfetch serverinfo work", "Show what the server offers, and its certificate's fingerprint."},
		{"*/5 * * * * $HOME/.local/bin/popfetch", "A crontab line: cron mails whatever popfetch prints, which is only ever a problem."},
		{"popfetch daemon --interval 5m", "Poll every five minutes; SIGHUP re-reads the configuration, SIGUSR1 polls now."},
	} {
		m.line(".TP")
		m.line(`.B %s`, roffText(ex[0]))
		m.text(roffText(ex[1]))
	}

	m.section("SEE ALSO")
	m.text(`\fBfetchmail\fR(1), \fBmpop\fR(1), \fBprocmail\fR(1), \fBsecret\-tool\fR(1)`)
	_, err := io.WriteString(w, m.b.String())
	return err
}

// manWriter builds a roff page.
type manWriter struct{ b strings.Builder }

func (m *manWriter) line(format string, args ...any) {
	fmt.Fprintf(&m.b, format, args...)
	m.b.WriteByte('\n')
}

// text writes roff text that is escaped already.
func (m *manWriter) text(s string) {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		m.b.WriteString(l + "\n")
	}
}

func (m *manWriter) section(name string)    { m.line(".SH %s", name) }
func (m *manWriter) subsection(name string) { m.line(".SS %s", roffText(name)) }

// para writes plain text as a paragraph, its line breaks as spaces.
func (m *manWriter) para(s string) {
	m.line(".PP")
	m.text(roffText(strings.Join(strings.Fields(s), " ")))
}

// flag writes a flag as a tagged paragraph.
func (m *manWriter) flag(f cli.Flag) {
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return
	}
	placeholder, usage := unquoteUsage(df.GetUsage())
	var names []string
	for _, n := range df.Names() {
		name := `\fB` + roffText(flagPrefix(n)+n) + `\fR`
		if df.TakesValue() && placeholder != "" {
			name += ` \fI` + roffText(placeholder) + `\fR`
		}
		names = append(names, name)
	}
	if d := flagDefault(df); d != "" {
		usage += " (default: " + d + ")"
	}
	m.line(".TP")
	m.text(strings.Join(names, ", "))
	m.text(roffText(usage))
}

// command writes a command, its flags (but the global ones, which have
// their section) and its subcommands.
func (m *manWriter) command(c *cli.Command, parent string) {
	if c.Hidden || c.Name == "help" {
		return
	}
	name := strings.TrimSpace(parent + " " + c.Name)
	m.subsection(strings.TrimSpace(name + " " + c.ArgsUsage))
	m.para(upperFirst(c.Usage) + ".")
	if c.Description != "" {
		m.para(c.Description)
	}
	var local []cli.Flag
	for _, f := range c.Flags {
		if cat, ok := f.(cli.CategorizableFlag); ok && cat.GetCategory() == globalCategory {
			continue
		}
		local = append(local, f)
	}
	if len(local) > 0 {
		m.line(".RS")
		for _, f := range local {
			m.flag(f)
		}
		m.line(".RE")
	}
	for _, sub := range c.Subcommands {
		m.command(sub, name)
	}
}

// key writes a configuration key as a tagged paragraph.
func (m *manWriter) key(k config.Key, name string) {
	m.line(".TP")
	what := k.Type
	if k.Required {
		what += ", required"
	}
	if k.PerAccount {
		what += ", not in [defaults]"
	}
	m.text(`\fB` + roffText(name) + `\fR (` + roffText(what) + ")")
	doc := k.Doc
	if k.Default != "" {
		doc += " Default: " + k.Default + "."
	}
	doc += " Example: " + name + " = " + k.Example
	m.text(roffText(doc))
}

// roffText escapes text for roff: backslashes, and hyphens that are
// minus signs in options.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

func orListRoff(keys []config.Key) string {
	var names []string
	for _, k := range keys {
		if k.Target {
			names = append(names, strings.TrimPrefix(k.Name, "deliver."))
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

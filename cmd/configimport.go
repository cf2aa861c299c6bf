package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// config import translates a fetchmail or mpop configuration into
// popfetch's: each mailbox an [[account]], each setting its key, and a
// comment for every setting that has none, saying why and what to do.
// The readers follow the files' own parsers: fetchmail's lexer (quoted
// strings with C escapes, noise words and punctuation, # comments at a
// token's start) and mpop's conf.c (a command and the rest of the line,
// outer double quotes removed, nothing unescaped).

// configImportOptions are config import's arguments.
type configImportOptions struct {
	file   string // "" finds ~/.fetchmailrc, else ~/.mpoprc
	format string // "fetchmail", "mpop", or "" to tell by the content
}

const configImportDescription = "Reads a fetchmail configuration (~/.fetchmailrc) or an mpop one (~/.mpoprc,\n" +
	"or $XDG_CONFIG_HOME/mpop/config), or FILE, and prints the same accounts as\n" +
	"popfetch TOML on standard output: popfetch config import > config.toml.\n" +
	"Every setting popfetch has no equivalent for becomes a comment saying so, at\n" +
	"the account it belongs to. Nothing is written, and no password is looked up:\n" +
	"a password of the file is carried over as it is (the output must then be\n" +
	"kept private: chmod 600), a password command as password_command.\n" +
	"\n" +
	"popfetch keeps its own record of what was retrieved: an account in keep mode\n" +
	"fetches every message on the server once more on its first run."

func configImportCommand(g *globalOptions) *cli.Command {
	o := &configImportOptions{}
	return &cli.Command{
		Name:        "import",
		Usage:       "translate ~/.fetchmailrc or ~/.mpoprc (or FILE) into popfetch TOML on stdout",
		ArgsUsage:   "[FILE]",
		Description: configImportDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "read FILE as `FORMAT`: fetchmail or mpop (default: told by its content)", Destination: &o.format},
		},
		OnUsageError:       onUsageError,
		CustomHelpTemplate: commandHelp(""),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageError{err: errors.New("config import takes at most one FILE")}
			}
			o.file = c.Args().First()
			return runConfigImport(g, o)
		},
	}
}

// runConfigImport reads the file and prints its translation.
func runConfigImport(g *globalOptions, o *configImportOptions) error {
	switch o.format {
	case "", "fetchmail", "mpop":
	default:
		return usageError{err: fmt.Errorf("--format %q: want fetchmail or mpop", o.format)}
	}
	path := o.file
	env := config.OSEnv()
	if path == "" {
		var tried []string
		for _, p := range []string{
			filepath.Join(env.Home, ".fetchmailrc"),
			filepath.Join(env.Home, ".mpoprc"),
			filepath.Join(firstNonEmpty(env.XDGConfigHome, filepath.Join(env.Home, ".config")), "mpop", "config"),
		} {
			tried = append(tried, p)
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
		if path == "" {
			return &config.Errors{List: []config.Error{{File: tried[0],
				Msg: fmt.Sprintf("nothing to import: none of %s exists (give the FILE)", strings.Join(tried, ", "))}}}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return &config.Errors{List: []config.Error{{File: path, Msg: "cannot read: " + errReason(err), Err: err}}}
	}
	format := o.format
	if format == "" {
		format = sniffFormat(string(data))
		if format == "" {
			return usageError{err: fmt.Errorf("%s is neither a fetchmail nor an mpop configuration that popfetch can tell (give --format)", path)}
		}
	}
	var imp *imported
	if format == "fetchmail" {
		imp = importFetchmail(path, string(data))
	} else {
		imp = importMpop(path, string(data))
	}
	imp.source, imp.format = path, format
	imp.dedupe()
	if !g.quiet {
		fmt.Fprintf(g.stderr, "popfetch: %s: %d account(s) from %s configuration; check the result with popfetch -c FILE config check\n",
			path, imp.active(), format)
	}
	return imp.write(g.stdout)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// sniffFormat tells a fetchmail configuration from an mpop one by the
// first word of its lines: poll, skip and set are fetchmail's, account
// and host mpop's.
func sniffFormat(data string) string {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "poll", "skip", "set":
			return "fetchmail"
		case "account", "host":
			return "mpop"
		}
	}
	return ""
}

// imported is a configuration translated: notes about the file as a
// whole, and the accounts.
type imported struct {
	source   string // the file read
	format   string
	notes    []string
	accounts []*importedAccount
}

// importedAccount is one account of the translation. Keys and values are
// written in the order set; a value is TOML already.
type importedAccount struct {
	name     string
	origin   string // where it was defined, "FILE:LINE (what)"
	keys     []keyValue
	deliver  []keyValue
	notes    []string // settings without an equivalent
	disabled string   // why the account is written commented out, if it is
}

type keyValue struct{ key, value string }

func (a *importedAccount) set(key, value string) {
	for i, kv := range a.keys {
		if kv.key == key {
			a.keys[i].value = value
			return
		}
	}
	a.keys = append(a.keys, keyValue{key, value})
}

func (a *importedAccount) unset(key string) {
	for i, kv := range a.keys {
		if kv.key == key {
			a.keys = append(a.keys[:i], a.keys[i+1:]...)
			return
		}
	}
}

func (a *importedAccount) get(key string) string {
	for _, kv := range a.keys {
		if kv.key == key {
			return kv.value
		}
	}
	return ""
}

func (a *importedAccount) setDeliver(key, value string) {
	a.deliver = []keyValue{{key, value}}
}

func (a *importedAccount) note(format string, args ...any) {
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
}

func (imp *imported) active() int {
	n := 0
	for _, a := range imp.accounts {
		if a.disabled == "" {
			n++
		}
	}
	return n
}

// write prints the translation as TOML.
func (imp *imported) write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# popfetch configuration, translated from the %s configuration %s\n", imp.format, imp.source)
	b.WriteString("# by \"popfetch config import\". Check it with \"popfetch -c FILE config check\";\n")
	b.WriteString("# \"man popfetch\" documents every key.\n")
	for _, n := range imp.notes {
		writeComment(&b, "", n)
	}
	seen := map[string]int{}
	for _, a := range imp.accounts {
		// Names must be unique; a second "work" becomes "work-2".
		base := a.name
		for seen[a.name] > 0 || a.name == "" {
			seen[base]++
			a.name = fmt.Sprintf("%s-%d", base, seen[base])
		}
		seen[a.name]++
		prefix := ""
		b.WriteString("\n")
		writeComment(&b, "", "from "+a.origin)
		if a.disabled != "" {
			writeComment(&b, "", "not carried over: "+a.disabled)
			prefix = "# "
		}
		fmt.Fprintf(&b, "%s[[account]]\n", prefix)
		fmt.Fprintf(&b, "%sname = %s\n", prefix, tomlString(a.name))
		for _, kv := range a.keys {
			fmt.Fprintf(&b, "%s%s = %s\n", prefix, kv.key, kv.value)
		}
		for _, n := range a.notes {
			writeComment(&b, prefix, n)
		}
		if len(a.deliver) > 0 {
			fmt.Fprintf(&b, "\n%s[account.deliver]\n", prefix)
			for _, kv := range a.deliver {
				fmt.Fprintf(&b, "%s%s = %s\n", prefix, kv.key, kv.value)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// dedupe comments out an account whose mailbox (user, host, port) an
// earlier one has: popfetch refuses two accounts of one mailbox (mpop's
// "account default : work" is the usual case).
func (imp *imported) dedupe() {
	first := map[string]*importedAccount{}
	for _, a := range imp.accounts {
		if a.disabled != "" {
			continue
		}
		id := a.get("user") + "@" + a.get("host") + ":" + a.get("port") + ":" + a.get("tls")
		if f, ok := first[id]; ok {
			a.disabled = fmt.Sprintf("the same mailbox as %q, which popfetch fetches once", f.name)
			continue
		}
		first[id] = a
	}
}

// writeComment writes text as comment lines, wrapped.
func writeComment(b *strings.Builder, prefix, text string) {
	for _, line := range wrapWords(text, 76-len(prefix)) {
		fmt.Fprintf(b, "%s# %s\n", prefix, line)
	}
}

// tomlString returns s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// accountName makes a popfetch account name of s: letters, digits, ".",
// "_" and "-", others replaced by "-".
func accountName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(regexp.MustCompile(`-+`).ReplaceAllString(b.String(), "-"), "-")
	if name == "." || name == ".." {
		name = ""
	}
	return name
}

// shellOps notes an MDA command that has shell operators: fetchmail and
// mpop ran it through /bin/sh, popfetch runs no shell.
func shellNote(a *importedAccount, from, command string) {
	if ops := shellOperators(command); len(ops) > 0 {
		a.note("%s ran the mda command through /bin/sh; popfetch runs no shell, so %s would reach the command as "+
			"arguments: wrap it as mda = \"sh -c '...'\" if a shell is meant (the sender in %%F is then the shell's to "+
			"quote), or use one program", from, quoteList(ops))
	}
}

// systemCABundles are the system's CA bundles, which popfetch trusts
// anyway: a translation need not name them.
var systemCABundles = map[string]bool{
	"/etc/ssl/certs/ca-certificates.crt": true, "/etc/ssl/certs": true,
	"/etc/pki/tls/certs/ca-bundle.crt": true, "/etc/ssl/cert.pem": true,
}

// sizeValue turns a size in bytes into a TOML value.
func sizeValue(n int64) string { return strconv.FormatInt(n, 10) }

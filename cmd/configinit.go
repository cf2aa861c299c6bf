package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
)

// configInitOptions are config init's (none but the global -c).
type configInitOptions struct{}

const configInitDescription = "Writes a starter configuration to the configuration file (-c FILE, or\n" +
	"$XDG_CONFIG_HOME/popfetch/config.toml), mode 0600, creating its directory:\n" +
	"one account to fill in, and every other key commented out with what it does\n" +
	"and its default. It never overwrites a file that is there."

// runConfigInit writes the starter configuration, never over a file.
func runConfigInit(g *globalOptions, _ *configInitOptions) error {
	path := g.configPath
	if path == "" {
		path = config.DefaultPath(config.OSEnv())
		if path == "" {
			return usageError{err: errors.New("no configuration path: $HOME is not set (use -c FILE)")}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return &engine.StateError{Err: fmt.Errorf("creating the directory of %s: %w", path, err)}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return usageError{err: fmt.Errorf("%s exists: config init never overwrites a file (check it with `%s`, or give another with -c FILE)",
			path, shellJoin(append(g.configArgs(), "config", "check")))}
	}
	if err != nil {
		return &engine.StateError{Err: fmt.Errorf("writing %s: %w", path, err)}
	}
	_, err = f.WriteString(starterConfig())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return &engine.StateError{Err: fmt.Errorf("writing %s: %w", path, err)}
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "popfetch: wrote a starter configuration to %s (mode 0600)\n", path)
		fmt.Fprintf(g.stderr, "popfetch: fill in its account, then run `%s`, and `%s` to fetch\n",
			shellJoin(append(g.configArgs(), "config", "check")), shellJoin(append(g.configArgs(), "-v")))
	}
	return nil
}

// configHint returns a hint for a configuration file that is not there:
// config init writes one.
func (g *globalOptions) configHint(err error) string {
	var errs *config.Errors
	if !errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return fmt.Sprintf("`%s` writes a starter configuration there", shellJoin(append(g.configArgs(), "config", "init")))
}

// configArgs are the words "popfetch [-c FILE]" that name the
// configuration in use, for commands printed to be run.
func (g *globalOptions) configArgs() []string {
	if g.configPath != "" && g.configPath != config.DefaultPath(config.OSEnv()) {
		return []string{"popfetch", "-c", g.configPath}
	}
	return []string{"popfetch"}
}

// starterKeys are the keys the starter's account sets, with their value.
var starterKeys = map[string]string{
	"name":             `"personal"`,
	"host":             `"pop.example.org"`,
	"user":             `"alice"`,
	"password_command": `"pass show mail/personal"`,
	"deliver.maildir":  `"~/Mail/personal"`,
}

// starterConfig returns the starter configuration: the account of
// starterKeys, and every other key of config.Keys commented out, each with
// its documentation, so that it is complete whatever keys are added.
func starterConfig() string {
	var b strings.Builder
	b.WriteString(`# popfetch configuration, written by "popfetch config init".
# Fill in the account, check it with "popfetch config check", then run
# "popfetch -v". Every key is below, commented out, with its default;
# "man popfetch" says more. Paths expand ~ and $VAR.

[defaults]
# Any account key (except name) may be given here, as the default of every
# account.

[[account]]
`)
	var deliver []config.Key
	for _, k := range config.Keys() {
		if strings.HasPrefix(k.Name, "deliver.") {
			deliver = append(deliver, k)
			continue
		}
		writeStarterKey(&b, k, k.Name)
	}
	b.WriteString("\n[account.deliver]\n# Exactly one delivery target.\n")
	for _, k := range deliver {
		writeStarterKey(&b, k, strings.TrimPrefix(k.Name, "deliver."))
	}
	return b.String()
}

// writeStarterKey writes a key's documentation as comments, then the key,
// set if it is one of starterKeys, else commented out.
func writeStarterKey(b *strings.Builder, k config.Key, name string) {
	b.WriteString("\n")
	doc := k.Doc
	if k.Default != "" {
		doc += " Default: " + k.Default + "."
	}
	for _, line := range wrapWords(doc, 74) {
		b.WriteString("# " + line + "\n")
	}
	if v, ok := starterKeys[k.Name]; ok {
		fmt.Fprintf(b, "%s = %s\n", name, v)
		return
	}
	fmt.Fprintf(b, "# %s = %s\n", name, k.Example)
}

// wrapWords breaks text into lines of at most width bytes where it can.
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

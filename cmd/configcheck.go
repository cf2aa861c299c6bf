package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// configCheckOptions are config check's flags (none but the global -c).
type configCheckOptions struct{}

func configCommand(g *globalOptions) *cli.Command {
	o := &configCheckOptions{}
	return &cli.Command{
		Name:               "config",
		Usage:              "check, start or import the configuration file",
		OnUsageError:       onUsageError,
		CustomHelpTemplate: subcommandHelp(""),
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the configuration and say what is wrong where",
			Description: "Reads the configuration (-c FILE, or the default path) as every command\n" +
				"does, and prints each problem as FILE:LINE: what is wrong, all of them, on\n" +
				"standard error. Without problems it prints \"FILE: N accounts OK\". It also\n" +
				"warns, without failing, about what is valid but probably not meant, such as\n" +
				"an mda command with shell operators: popfetch runs no shell.",
			OnUsageError:       onUsageError,
			CustomHelpTemplate: commandHelp(""),
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageError{err: fmt.Errorf("config check takes no arguments (use -c FILE before the command)")}
				}
				return runConfigCheck(g, o)
			},
		}, {
			Name:               "init",
			Usage:              "write a commented starter configuration (0600), never over a file",
			Description:        configInitDescription,
			OnUsageError:       onUsageError,
			CustomHelpTemplate: commandHelp(""),
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageError{err: fmt.Errorf("config init takes no arguments (use -c FILE to write another file)")}
				}
				return runConfigInit(g, &configInitOptions{})
			},
		}, configImportCommand(g)},
	}
}

// subcommandHelp is commandHelp for a command that has subcommands.
func subcommandHelp(extra string) string {
	return cli.SubcommandHelpTemplate + extra + exitStatusHelp + "\n"
}

// runConfigCheck loads the configuration and reports on it.
func runConfigCheck(g *globalOptions, _ *configCheckOptions) error {
	cfg, err := loadConfig(g)
	if err != nil {
		var errs *config.Errors
		if !errors.As(err, &errs) {
			return err
		}
		for _, e := range errs.List {
			fmt.Fprintln(g.stderr, e.Error())
		}
		if h := g.configHint(err); h != "" {
			fmt.Fprintf(g.stderr, "popfetch: hint: %s\n", h)
		}
		return reportedError{err}
	}
	// What a fetch would hit on this machine, as FILE:LINE lines too.
	var problems []config.Error
	for _, a := range cfg.Accounts {
		bad, warn := preflight(a)
		for _, f := range bad {
			e := findingError(a, f)
			fmt.Fprintln(g.stderr, e.Error())
			problems = append(problems, e)
		}
		for _, f := range warn {
			e := findingError(a, f)
			fmt.Fprintf(g.stderr, "%s:%d: warning: %s\n", e.File, e.Line, e.Msg)
		}
	}
	for _, a := range cfg.Accounts {
		if a.Deliver.MDA == "" {
			continue
		}
		if ops := shellOperators(a.Deliver.MDA); len(ops) > 0 {
			fmt.Fprintf(g.stderr, "%s:%d: warning: mda of account %q contains %s outside quotes; popfetch runs the command without a shell, so %s passed to it as arguments (wrap the command in sh -c '...' if a shell is meant)\n",
				cfg.Path, a.Line("deliver.mda"), a.Name, quoteList(ops), itThey(len(ops)))
		}
	}
	if len(problems) > 0 {
		return reportedError{&config.Errors{List: problems}}
	}
	if !g.quiet {
		n := len(cfg.Accounts)
		s := "s"
		if n == 1 {
			s = ""
		}
		fmt.Fprintf(g.stdout, "%s: %d account%s OK\n", cfg.Path, n, s)
	}
	return nil
}

// shellOperators returns the shell operators (|, ;, &, >, <) that appear in
// a command outside quotes and unescaped, in order of first appearance.
// popfetch splits the command into words as a shell would (single and
// double quotes, backslash) but runs no shell, so such an operator reaches
// the command as an argument or part of one — almost never what was meant.
func shellOperators(cmd string) []string {
	var ops []string
	seen := map[byte]bool{}
	inSingle, inDouble := false, false
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case inSingle:
			inSingle = c != '\''
		case c == '\\':
			i++ // the next byte is literal, in double quotes or out
		case inDouble:
			inDouble = c != '"'
		case c == '\'':
			inSingle = true
		case c == '"':
			inDouble = true
		case strings.IndexByte("|;&><", c) >= 0:
			if !seen[c] {
				seen[c] = true
				ops = append(ops, string(c))
			}
		}
	}
	return ops
}

func quoteList(ops []string) string {
	q := make([]string, len(ops))
	for i, op := range ops {
		q[i] = fmt.Sprintf("%q", op)
	}
	return strings.Join(q, ", ")
}

func itThey(n int) string {
	if n == 1 {
		return "it is"
	}
	return "they are"
}

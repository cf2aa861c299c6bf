package cmd

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// TestManPage: popfetch man documents every command and subcommand with
// its flags, every configuration key of config.Keys (which config init and
// the config.example.toml check use too), the exit statuses, FILES,
// ENVIRONMENT and EXAMPLES; and groff reads it without a warning.
func TestManPage(t *testing.T) {
	out, _ := mustMain(t, 0, "man")
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL FLAGS", "COMMANDS", "CONFIGURATION",
		"EXIT STATUS", "FILES", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(out, "\n.SH "+section+"\n") {
			t.Errorf("no section %s", section)
		}
	}
	for _, k := range config.Keys() {
		name := strings.TrimPrefix(k.Name, "deliver.")
		if !strings.Contains(out, `\fB`+roffText(name)+`\fR (`) {
			t.Errorf("the key %s is not documented", k.Name)
		}
	}
	for _, s := range exitStatuses {
		if !strings.Contains(out, ".B "+strconv.Itoa(s.code)+"\n") {
			t.Errorf("exit status %d is not documented", s.code)
		}
	}
	var walk func(cmds []*cli.Command, parent string)
	walk = func(cmds []*cli.Command, parent string) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			name := strings.TrimSpace(parent + " " + c.Name)
			if !strings.Contains(out, "\n.SS "+roffText(name)) {
				t.Errorf("the command %q is not documented", name)
			}
			for _, f := range c.Flags {
				if !strings.Contains(out, `\fB`+roffText(flagPrefix(f.Names()[0])+f.Names()[0])+`\fR`) {
					t.Errorf("%s: the flag %s is not documented", name, f.Names()[0])
				}
			}
			walk(c.Subcommands, name)
		}
	}
	walk(newApp(&globalOptions{}).Commands, "")

	cmd := exec.Command(needTool(t, "groff"), "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("groff: %v\n%s", err, msg)
	}
}

// TestHelpShowsOnlyUsefulDefaults: no flag's help says (default: false),
// (default: 0) or (default: ""), and --limit says what 0 means.
func TestHelpShowsOnlyUsefulDefaults(t *testing.T) {
	var walk func(cmds []*cli.Command, parent []string)
	walk = func(cmds []*cli.Command, parent []string) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			args := append(append([]string(nil), parent...), c.Name)
			out, _ := mustMain(t, 0, append(args, "--help")...)
			for _, noise := range []string{"(default: false)", "(default: 0)", `(default: "")`} {
				if strings.Contains(out, noise) {
					t.Errorf("popfetch %s --help shows %s:\n%s", strings.Join(args, " "), noise, out)
				}
			}
			walk(c.Subcommands, args)
		}
	}
	walk(newApp(&globalOptions{}).Commands, nil)
	out, _ := mustMain(t, 0, "fetch", "--help")
	if !strings.Contains(out, "--limit N            retrieve at most N messages per account (0: no limit)") {
		t.Errorf("fetch --help:\n%s", out)
	}
}

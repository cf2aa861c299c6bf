package cmd

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Completion scripts ask popfetch itself for the words that fit, with
// urfave/cli's --generate-bash-completion, so they follow the commands,
// flags and configured accounts as they are.
const bashCompletion = `# bash completion for popfetch: source it, or put it in
# /usr/share/bash-completion/completions/popfetch
_popfetch() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ $cur == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -F _popfetch popfetch
`

const zshCompletion = `#compdef popfetch
# zsh completion for popfetch: put it in a directory of $fpath as _popfetch
_popfetch() {
  local -a opts
  local cur=${words[CURRENT]}
  if [[ $cur == -* ]]; then
    opts=("${(@f)$(${words[@]:0:CURRENT-1} $cur --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:CURRENT-1} --generate-bash-completion 2>/dev/null)}")
  fi
  _describe 'popfetch' opts
}
compdef _popfetch popfetch
`

func completionCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Prints the completion script for the shell. For bash:\n" +
			"   popfetch completion bash > /usr/share/bash-completion/completions/popfetch\n" +
			"Commands, flags and the configured account names complete.",
		OnUsageError:       onUsageError,
		CustomHelpTemplate: commandHelp(""),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{err: fmt.Errorf("completion takes one shell: bash, zsh or fish")}
			}
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(g.stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(g.stdout, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(g.stdout, s)
			default:
				return usageError{err: fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", c.Args().First())}
			}
			return nil
		},
	}
}

// manCommand prints the manual page, made from the command definitions
// (make man writes popfetch.1).
func manCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the manual page (roff)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, s)
			return nil
		},
	}
}

// completeAccounts offers the configured account names, for commands that
// take them.
func completeAccounts(g *globalOptions) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		cfg, err := loadConfig(g)
		if err != nil {
			return
		}
		for _, a := range cfg.Accounts {
			fmt.Fprintln(g.stdout, a.Name)
		}
	}
}

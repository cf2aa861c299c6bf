package cmd

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shell completion. The scripts ask popfetch itself for the words that
// fit, so they follow the commands, flags and configured accounts as they
// are:
//
//	popfetch WORDS... CUR --generate-bash-completion
//
// prints the candidates for CUR (the word being completed, "" for a new
// one), one a line, or the single line ":file" when CUR is a file name
// (after -c, --maildir, ...), which the scripts leave to the shell's own
// file completion. popfetch answers this itself instead of urfave/cli,
// whose completion panics on a partial flag (`fetch --k<TAB>`) and reads
// os.Args rather than the command line it is given.

// completeFlag is the flag that asks for completions (urfave/cli's name,
// which older scripts use).
const completeFlag = "--generate-bash-completion"

// fileCompletion is the answer that means "complete a file name".
const fileCompletion = ":file"

const bashCompletion = `# bash completion for popfetch: source it, or put it in
# /usr/share/bash-completion/completions/popfetch
_popfetch() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local opts
  opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  if [[ $opts == :file ]]; then
    COMPREPLY=()   # -o default: the shell completes a file name
    return
  fi
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -F _popfetch popfetch
`

const zshCompletion = `#compdef popfetch
# zsh completion for popfetch: put it in a directory of $fpath as _popfetch
_popfetch() {
  local -a opts
  opts=("${(@f)$(${words[@]:0:CURRENT-1} "${words[CURRENT]}" --generate-bash-completion 2>/dev/null)}")
  if [[ ${opts[1]} == :file ]]; then
    _files
    return
  fi
  compadd -a opts
}
compdef _popfetch popfetch
`

const fishCompletion = `# fish completion for popfetch: put it in ~/.config/fish/completions/popfetch.fish
function __popfetch_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l opts ($words[1] $words[2..-1] "$cur" --generate-bash-completion 2>/dev/null)
    if test "$opts[1]" = ":file"
        __fish_complete_path "$cur"
    else
        string join \n -- $opts
    end
end
complete -c popfetch -f -a '(__popfetch_complete)'
`

func completionCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Prints the completion script for the shell. For bash:\n" +
			"   popfetch completion bash > /usr/share/bash-completion/completions/popfetch\n" +
			"for zsh, as _popfetch in a directory of $fpath; for fish:\n" +
			"   popfetch completion fish > ~/.config/fish/completions/popfetch.fish\n" +
			"Commands, flags, flag values and the configured account names complete;\n" +
			"file names after -c, --maildir, --mbox and --tls-ca-file.",
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
				fmt.Fprint(g.stdout, fishCompletion)
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
		Action: func(c *cli.Context) error { return writeMan(g.stdout, c.App) },
	}
}

// flagValues are the values a flag's argument can take, for completion;
// fileCompletion for a file name.
var flagValues = map[string][]string{
	"tls":         {"implicit", "starttls", "none"},
	"progress":    {"auto", "always", "never"},
	"config":      {fileCompletion},
	"maildir":     {fileCompletion},
	"mbox":        {fileCompletion},
	"tls-ca-file": {fileCompletion},
	"dir":         {fileCompletion},
}

// complete writes the completions of the last word of args (after the
// program name), the one being typed, given the words before it.
func complete(app *cli.App, g *globalOptions, args []string, w io.Writer) {
	if len(args) == 0 {
		args = []string{""}
	}
	cur := args[len(args)-1]
	words := args[:len(args)-1]

	// Follow the words to the command being typed, and its arguments so
	// far. A flag that takes a value takes the next word, unless given
	// as --flag=value.
	var cmd *cli.Command
	flags := app.Flags
	subs := app.Commands
	var positional []string
	var pending cli.Flag // a flag whose value is the next word
	for _, word := range words {
		if pending != nil {
			if pending.Names()[0] == "config" {
				g.configPath = word
			}
			pending = nil
			continue
		}
		if strings.HasPrefix(word, "-") && word != "-" {
			name, value, hasValue := strings.Cut(strings.TrimLeft(word, "-"), "=")
			f := findFlag(flags, name)
			if f == nil {
				continue
			}
			if f.Names()[0] == "config" && hasValue {
				g.configPath = value
			}
			if takesValue(f) && !hasValue {
				pending = f
			}
			continue
		}
		if len(positional) == 0 {
			if sub := findCommand(subs, word); sub != nil {
				cmd, flags, subs = sub, sub.Flags, sub.Subcommands
				continue
			}
		}
		positional = append(positional, word)
	}

	var out []string
	switch {
	case pending != nil:
		out = flagValues[pending.Names()[0]]
	case strings.HasPrefix(cur, "-"):
		if name, _, ok := strings.Cut(strings.TrimLeft(cur, "-"), "="); ok {
			// --tls=<TAB>: the values, with the flag before them.
			if f := findFlag(flags, name); f != nil {
				for _, v := range flagValues[f.Names()[0]] {
					if v != fileCompletion {
						out = append(out, "--"+name+"="+v)
					}
				}
			}
			break
		}
		for _, f := range flags {
			if isHidden(f) {
				continue
			}
			for _, n := range f.Names() {
				if len(n) == 1 {
					out = append(out, "-"+n)
				} else {
					out = append(out, "--"+n)
				}
			}
		}
	default:
		if len(positional) == 0 {
			for _, sub := range subs {
				if !sub.Hidden {
					out = append(out, sub.Name)
				}
			}
		}
		out = append(out, argCompletions(g, cmd, positional)...)
	}
	for _, o := range out {
		if o == fileCompletion || strings.HasPrefix(o, cur) {
			fmt.Fprintln(w, o)
		}
	}
}

// argCompletions are the arguments that fit a command after the ones
// given: account names where its ArgsUsage takes an ACCOUNT there, or the
// words of a literal choice ("bash|zsh|fish").
func argCompletions(g *globalOptions, cmd *cli.Command, given []string) []string {
	usage := "[ACCOUNT...]" // popfetch alone fetches
	if cmd != nil {
		usage = cmd.ArgsUsage
	}
	first, _, _ := strings.Cut(usage, " ")
	switch {
	case first == "[ACCOUNT...]":
	case first == "ACCOUNT" && len(given) == 0:
	case strings.Contains(first, "|") && strings.ToLower(first) == first && len(given) == 0:
		return strings.Split(first, "|")
	default:
		return nil
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return nil
	}
	var names []string
	for _, a := range cfg.Accounts {
		if !slices.Contains(given, a.Name) {
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	return names
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

func isHidden(f cli.Flag) bool {
	v, ok := f.(cli.VisibleFlag)
	return ok && !v.IsVisible()
}

package cmd

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/uidcache"
)

// cacheOptions are the arguments of cache list and cache forget.
type cacheOptions struct {
	account string
	uids    []string      // forget: as printed by list (bytes outside 0x21-0x7E and % as %XX)
	oneOff  oneOffOptions // or the mailbox of a one-off fetch
}

// args reads ACCOUNT [UID...], or with the one-off flags UID... alone.
func (o *cacheOptions) args(c *cli.Context, uids bool) error {
	o.oneOff.read(c)
	args := c.Args().Slice()
	if o.oneOff.host == "" {
		if _, err := o.oneOff.active(nil); err != nil {
			return err
		}
		if len(args) == 0 || !uids && len(args) > 1 {
			return usageError{err: fmt.Errorf("%s takes one ACCOUNT%s, or --host and --user", c.Command.HelpName, map[bool]string{true: " and UIDs"}[uids])}
		}
		o.account, args = args[0], args[1:]
	} else if !uids && len(args) > 0 {
		return usageError{err: fmt.Errorf("--host names the mailbox: %s takes no ACCOUNT with it", c.Command.HelpName)}
	}
	o.uids = args
	return nil
}

const cacheListHelp = `
OUTPUT
   A line naming the account, its mailbox (USER@HOST) and the cache file, then
   a table: UID, when it was first seen (UTC) and its state: retrieved (left on
   the server), deleted (delivered; QUIT not confirmed, so the next fetch
   deletes it if it is still there) or skipped (too large, reported once).
   Bytes of a UID outside 0x21-0x7E, and %, are shown as %XX, as cache forget
   takes them. Reading needs no lock: it works while a fetch runs.
`

const cacheForgetHelp = `
   Forgetting is all or nothing: if a UID given is not in the cache, nothing
   is forgotten and the exit status is 64. It takes the account's lock (75 if
   a fetch is running) and replaces the cache atomically.
`

func cacheCommand(g *globalOptions) *cli.Command {
	list, forget := &cacheOptions{}, &cacheOptions{}
	return &cli.Command{
		Name:               "cache",
		Usage:              "show or edit what has been retrieved (the UID cache)",
		OnUsageError:       onUsageError,
		CustomHelpTemplate: subcommandHelp(""),
		Subcommands: []*cli.Command{
			{
				Name:               "list",
				Usage:              "print the UIDs remembered for an account",
				ArgsUsage:          "ACCOUNT | --host HOST --user USER [--port PORT] [--tls MODE]",
				Flags:              list.oneOff.identityFlags("the mailbox on"),
				OnUsageError:       onUsageError,
				CustomHelpTemplate: commandHelp(cacheListHelp),
				Action: func(c *cli.Context) error {
					if err := list.args(c, false); err != nil {
						return err
					}
					return runCacheList(g, list)
				},
			},
			{
				Name:      "forget",
				Usage:     "forget UIDs (all, if none is given), so the next fetch retrieves them again",
				ArgsUsage: "ACCOUNT [UID...] | --host HOST --user USER [--port PORT] [--tls MODE] [UID...]",
				Description: "Removes the UIDs from the account's cache, or all of them when no UID is\n" +
					"given: the next fetch retrieves those messages again if the server still\n" +
					"has them (in keep mode too). Give UIDs as cache list prints them.",
				Flags:              forget.oneOff.identityFlags("the mailbox on"),
				OnUsageError:       onUsageError,
				CustomHelpTemplate: commandHelp(cacheForgetHelp),
				Action: func(c *cli.Context) error {
					if err := forget.args(c, true); err != nil {
						return err
					}
					return runCacheForget(g, forget)
				},
			},
		},
	}
}

func runCacheList(g *globalOptions, o *cacheOptions) error {
	a, err := o.oneOff.resolve(g, o.account, true)
	if err != nil {
		return err
	}
	cache, err := uidcache.Open(a.StateDir, a.Key())
	if err != nil {
		return &engine.StateError{Err: err}
	}
	uids := cache.UIDs()
	n := fmt.Sprintf("%d UIDs", len(uids))
	if len(uids) == 1 {
		n = "1 UID"
	}
	fmt.Fprintf(g.stdout, "%s (%s): %s: %s\n", a.Name, a.Key(), cache.Path(), n)
	if len(uids) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "UID\tFIRST SEEN (UTC)\tSTATE")
	for _, uid := range uids {
		e, _ := cache.Get(uid)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", escapeUID(uid), e.Seen.UTC().Format(time.DateTime), stateName(e))
	}
	return tw.Flush()
}

func stateName(e uidcache.Entry) string {
	switch e.State {
	case uidcache.Retrieved:
		return "retrieved"
	case uidcache.Deleted:
		return "deleted"
	case uidcache.Skipped:
		return "skipped"
	case uidcache.Broken:
		return fmt.Sprintf("broke the session (%d of %d runs before quarantine)", e.Breaks, 3)
	case uidcache.Quarantined:
		return "quarantined: left on the server (cache forget retries it)"
	}
	return fmt.Sprintf("unknown (%q)", byte(e.State))
}

func runCacheForget(g *globalOptions, o *cacheOptions) error {
	a, err := o.oneOff.resolve(g, o.account, true)
	if err != nil {
		return err
	}
	uids := make([]string, len(o.uids))
	for i, u := range o.uids {
		uids[i] = unescapeUID(u)
	}
	n, err := engine.Forget(a, uids)
	var unknown *engine.UnknownUIDError
	if errors.As(err, &unknown) {
		shown := make([]string, len(unknown.UIDs))
		for i, u := range unknown.UIDs {
			shown[i] = escapeUID(u)
		}
		fmt.Fprintf(g.stderr, "popfetch: %s: error: not in the cache: %s; nothing forgotten\n", a.Name, strings.Join(shown, " "))
		fmt.Fprintf(g.stderr, "popfetch: hint: `%s` shows the UIDs remembered\n", g.commandFor(a, "cache", "list"))
		return reportedError{usageError{err: err}}
	}
	if err != nil {
		return err
	}
	if !g.quiet {
		s := "s"
		if n == 1 {
			s = ""
		}
		fmt.Fprintf(g.stdout, "%s: forgot %d UID%s; the next fetch retrieves those messages again if the server still has them\n", a.Name, n, s)
	}
	return nil
}

// escapeUID shows a UID as the cache file stores it (uidcache.EncodeUID),
// so no UID a server sends can garble a terminal or be mistaken for another.
func escapeUID(uid string) string { return uidcache.EncodeUID(uid) }

// unescapeUID undoes escapeUID. A string that is not a valid escape is
// taken as it is.
func unescapeUID(s string) string {
	if uid, err := uidcache.DecodeUID(s); err == nil {
		return uid
	}
	return s
}

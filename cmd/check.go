package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/mail"
	"os/signal"
	"strings"
	"syscall"
	"time"

	message "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // RFC 2047 words in any charset it knows
	"github.com/emersion/go-message/textproto"
	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/cmd/internal/termsafe"
)

// checkOptions are check's flags.
type checkOptions struct {
	accounts       []string
	list           bool
	json           bool
	jobs           int
	acceptAllAsNew bool
}

const checkHelp = `
OUTPUT
   One line per account: "personal: 3 new messages, 45.2 KiB"; with --list, an
   indented line per new message: date, sender and subject, decoded. -q prints
   nothing but errors: the exit status alone answers. --json prints, whatever
   -q says:
     {"accounts":[{"name":"personal","new":3,"new_bytes":46285,
       "messages":[{"uid":"..","size":1234,"date":"2024-05-01T10:00:00+02:00",
                    "from":"..","subject":".."}]}]}
   "error" is set for an account that could not be checked; "messages" is
   there only with --list; "date" is RFC 3339 when the Date header parses,
   else the header as it is.
`

func checkCommand(g *globalOptions) *cli.Command {
	o := &checkOptions{}
	return &cli.Command{
		Name:      "check",
		Usage:     "count new messages and bytes without retrieving them",
		ArgsUsage: "[ACCOUNT...]",
		Description: "Logs in to each account (or the named ones) and counts the messages a fetch\n" +
			"would retrieve now, with the same rules (keep, fetch_all, max_size,\n" +
			"max_messages), without retrieving, deleting or recording anything. It takes\n" +
			"the account's lock, so it waits for no fetch: a locked account is an error.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Aliases: []string{"l"}, Usage: "show the date, sender and subject of each new message", Destination: &o.list},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON, for scripts", Destination: &o.json},
			&cli.IntFlag{Name: "jobs", Value: 4, Usage: "check `N` accounts in parallel", Destination: &o.jobs},
			&cli.BoolFlag{Name: "accept-all-as-new", Usage: "count as fetch --accept-all-as-new would (disarm the cache tripwire)", Destination: &o.acceptAllAsNew},
		},
		OnUsageError:           onUsageError,
		CustomHelpTemplate:     commandHelp(checkHelp),
		UseShortOptionHandling: true,
		Action: func(c *cli.Context) error {
			o.accounts = c.Args().Slice()
			return runCheck(c.Context, g, o)
		},
	}
}

// checkMessage is a new message in check's JSON output.
type checkMessage struct {
	UID     string `json:"uid"`
	Size    int64  `json:"size"`
	Date    string `json:"date"`
	From    string `json:"from"`
	Subject string `json:"subject"`

	human string // the date as shown to a person
}

// checkAccount is an account in check's JSON output (CONTRACT §3).
type checkAccount struct {
	Name     string `json:"name"`
	New      int    `json:"new"`
	NewBytes int64  `json:"new_bytes"`
	Error    string `json:"error,omitempty"`
	// Messages is nil without --list, and then left out.
	Messages *[]checkMessage `json:"messages,omitempty"`

	err     error
	skipped int
}

// runCheck checks the selected accounts, prints what it found and returns
// errNoNewMail when no account has new mail, or the first failure in
// configuration order.
func runCheck(ctx context.Context, g *globalOptions, o *checkOptions) error {
	if o.jobs < 1 {
		return usageError{err: errors.New("--jobs must be at least 1")}
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	accts, err := cfg.Select(o.accounts)
	if err != nil {
		return err
	}
	// SIGINT or SIGTERM ends the check at once: the sessions are dropped
	// and a secret command still running is killed with its process group
	// (which the terminal's ^C does not reach).
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	results := make([]checkAccount, len(accts))
	log := g.logger()
	parallel(o.jobs, len(accts), func(i int) {
		results[i] = checkOne(ctx, g, o, accts[i], log.With("account", accts[i].Name))
	})

	if o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(struct {
			Accounts []checkAccount `json:"accounts"`
		}{results}); err != nil {
			return err
		}
	} else if !g.quiet {
		printCheck(g.stdout, results)
	}
	var first error
	newMail := false
	for _, r := range results {
		if r.err != nil {
			printError(g.stderr, r.Name, r.err)
			if first == nil {
				first = r.err
			}
		}
		newMail = newMail || r.New > 0
	}
	switch {
	case first != nil:
		return reportedError{first}
	case !newMail:
		return errNoNewMail{}
	}
	return nil
}

// checkOne checks one account.
func checkOne(ctx context.Context, g *globalOptions, o *checkOptions, a *config.Account, log *slog.Logger) checkAccount {
	out := checkAccount{Name: a.Name}
	var msgs []checkMessage
	var header engine.HeaderFunc
	if o.list {
		header = func(m engine.NewMessage, r io.Reader) error {
			msgs = append(msgs, summarizeHeader(m, r))
			return nil
		}
	}
	creds := &accountCredentials{acct: a, g: g}
	if err := creds.prepare(ctx, nil); err != nil {
		out.err = err
		out.Error = termsafe.Escape(err.Error())
		return out
	}
	res, err := engine.Check(ctx, engine.Options{
		Account:        a,
		Credentials:    creds,
		Log:            log,
		Trace:          g.verbose >= 2,
		AcceptAllAsNew: o.acceptAllAsNew,
	}, header)
	if err != nil {
		out.err = err
		out.Error = termsafe.Escape(err.Error())
		return out
	}
	log.Info(fmt.Sprintf("%d new of %d on the server", len(res.New), res.Listed))
	out.New, out.NewBytes, out.skipped = len(res.New), res.NewBytes, res.Skipped
	if o.list {
		if msgs == nil {
			msgs = []checkMessage{}
		}
		out.Messages = &msgs
	}
	return out
}

// printCheck writes check's human output.
func printCheck(w io.Writer, results []checkAccount) {
	for _, r := range results {
		if r.err != nil {
			continue // said on stderr
		}
		var line string
		switch r.New {
		case 0:
			line = fmt.Sprintf("%s: no new messages", r.Name)
		case 1:
			line = fmt.Sprintf("%s: 1 new message, %s", r.Name, humanBytes(r.NewBytes))
		default:
			line = fmt.Sprintf("%s: %d new messages, %s", r.Name, r.New, humanBytes(r.NewBytes))
		}
		if r.skipped > 0 {
			line += fmt.Sprintf(" (and %d larger than max_size, which fetch leaves on the server)", r.skipped)
		}
		fmt.Fprintln(w, line)
		if r.Messages == nil {
			continue
		}
		for _, m := range *r.Messages {
			from, subject := m.From, m.Subject
			if from == "" {
				from = "(no sender)"
			}
			if subject == "" {
				subject = "(no subject)"
			}
			date := m.human
			if date == "" {
				date = "(no date)"
			}
			fmt.Fprintf(w, "  %s  %s  %s  (%s)\n", date, from, subject, humanBytes(m.Size))
		}
	}
}

// maxHeaderBytes bounds the header read for --list: enough for any real
// header; a longer one is shown as far as it was read.
const maxHeaderBytes = 256 << 10

// summarizeHeader decodes the Date, From and Subject of a header. It never
// fails: what cannot be parsed or decoded is shown as it is, made safe for
// a terminal.
func summarizeHeader(m engine.NewMessage, r io.Reader) checkMessage {
	out := checkMessage{UID: m.UID, Size: m.Size}
	if r == nil {
		return out
	}
	// A header cut short or malformed is still shown as far as it parsed.
	h, _ := textproto.ReadHeader(bufio.NewReader(io.LimitReader(r, maxHeaderBytes)))
	dec := &mime.WordDecoder{CharsetReader: message.CharsetReader}
	out.From = decodeHeader(dec, h.Get("From"))
	out.Subject = decodeHeader(dec, h.Get("Subject"))
	if raw := h.Get("Date"); raw != "" {
		if t, err := mail.ParseDate(raw); err == nil {
			out.Date = t.Format(time.RFC3339)
			out.human = t.Format("2006-01-02 15:04")
		} else {
			out.Date = cleanText(raw)
			out.human = out.Date
		}
	}
	return out
}

// decodeHeader decodes the RFC 2047 encoded words of a header value. A
// value that does not decode (unknown charset, bad encoding) is shown raw.
func decodeHeader(dec *mime.WordDecoder, v string) string {
	if s, err := dec.DecodeHeader(v); err == nil {
		v = s
	}
	return cleanText(v)
}

// cleanText makes header text safe to print on one line: folding and
// other runs of blanks become one space, and whatever could act on a
// terminal is escaped (termsafe.Escape).
func cleanText(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
	return termsafe.Escape(strings.Join(fields, " "))
}

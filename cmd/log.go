package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/popfetch/popfetch/cmd/internal/termsafe"
	"github.com/popfetch/popfetch/deliver"
)

// Verbosity levels: warnings and errors always, info at -v, the protocol
// trace at -vv.
func levelFor(verbose int, quiet bool) slog.Level {
	switch {
	case quiet:
		return slog.LevelError
	case verbose >= 2:
		return slog.LevelDebug
	case verbose == 1:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// lineHandler writes one plain line a record, the way CONTRACT §3 and
// STYLE rule 25 want them: "popfetch: ACCOUNT: warning: what happened:
// key=value ...". Records are whole lines, whatever the goroutine. The
// message and every value may hold what a server, a certificate or a
// message said (a -ERR text, a UID, a traced line): they are escaped
// (termsafe), so a record is one line and never drives the terminal.
type lineHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	level slog.Leveler
	attrs []slog.Attr
	shown *shownErrors // nil: not recorded
	stamp bool         // start each line with the local time
}

// withTimestamps returns h writing the time before each line.
func (h *lineHandler) withTimestamps() *lineHandler {
	h2 := *h
	h2.stamp = true
	return &h2
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return newLoggerShown(w, level, nil)
}

// newLoggerShown is newLogger recording in shown the delivery errors of
// the message lines it writes.
func newLoggerShown(w io.Writer, level slog.Level, shown *shownErrors) *slog.Logger {
	return slog.New(&lineHandler{w: w, mu: &sync.Mutex{}, level: level, shown: shown})
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool {
	// A message's temporary failure comes down to Info in Handle; Warn
	// must be let in for it to get there.
	return l >= min(h.level.Level(), slog.LevelWarn)
}

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	level, msg, attrs := h.messageRecord(r.Level, r.Message, attrs)
	if level < h.level.Level() {
		return nil
	}
	var b strings.Builder
	if h.stamp {
		b.WriteString(r.Time.Format("2006-01-02 15:04:05 "))
	}
	b.WriteString("popfetch: ")
	for _, a := range attrs {
		if a.Key == "account" {
			b.WriteString(termsafe.Escape(a.Value.String()))
			b.WriteString(": ")
		}
	}
	switch {
	case level >= slog.LevelError:
		b.WriteString("error: ")
	case level >= slog.LevelWarn:
		b.WriteString("warning: ")
	}
	b.WriteString(termsafe.Escape(msg))
	sep := ": "
	for _, a := range attrs {
		if a.Key == "account" {
			continue
		}
		fmt.Fprintf(&b, "%s%s=%s", sep, a.Key, termsafe.Escape(fmt.Sprint(a.Value.Any())))
		sep = " "
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &h2
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// messageRecord formats the engine's lines about one message — a record
// with "uid" and "number" attributes, whose text starts with "message" —
// like the other lines: "message 3 (uid X) not delivered; ...: ERROR",
// with the error after the text instead of key=value pairs. A message
// that failed to be delivered is an error; one whose destination said
// "try later" (an MDA's exit 75, deliver.Error.Temporary) is no error but
// a notice, shown at -v: it stays on the server for the next run, which
// the exit status 75 tells a script. The delivery errors are recorded in
// h.shown, so the run's summary does not repeat them.
func (h *lineHandler) messageRecord(level slog.Level, msg string, attrs []slog.Attr) (slog.Level, string, []slog.Attr) {
	var uid, number string
	var err error
	var rest []slog.Attr
	for _, a := range attrs {
		switch a.Key {
		case "uid":
			uid = a.Value.String()
		case "number":
			number = a.Value.String()
		case "error":
			if e, ok := a.Value.Any().(error); ok {
				err = e
				continue
			}
			rest = append(rest, a)
		default:
			rest = append(rest, a)
		}
	}
	after, ok := strings.CutPrefix(msg, "message")
	if uid == "" || number == "" || !ok {
		return level, msg, attrs
	}
	msg = fmt.Sprintf("message %s (uid %s)%s", number, uid, after)
	if err == nil {
		return level, msg, rest
	}
	msg += ": " + err.Error()
	var de *deliver.Error
	if errors.As(err, &de) && level >= slog.LevelWarn {
		level = slog.LevelError
		if de.Temporary {
			level = slog.LevelInfo
		}
		h.shown.add(de)
	}
	return level, msg, rest
}

// shownErrors are the delivery errors that message lines have shown (or,
// at their level, chosen not to show), so that the run's summary does not
// repeat them.
type shownErrors struct {
	mu   sync.Mutex
	errs map[*deliver.Error]bool
}

func (s *shownErrors) add(e *deliver.Error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = make(map[*deliver.Error]bool)
	}
	s.errs[e] = true
}

// has reports whether err is, or wraps, a delivery error already shown.
func (s *shownErrors) has(err error) bool {
	var de *deliver.Error
	if s == nil || !errors.As(err, &de) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs[de]
}

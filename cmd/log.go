package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/popfetch/popfetch/cmd/internal/termsafe"
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
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(&lineHandler{w: w, mu: &sync.Mutex{}, level: level})
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("popfetch: ")
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for _, a := range attrs {
		if a.Key == "account" {
			b.WriteString(termsafe.Escape(a.Value.String()))
			b.WriteString(": ")
		}
	}
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	}
	b.WriteString(termsafe.Escape(r.Message))
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

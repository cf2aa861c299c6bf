package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a configuration file, at a line.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem is with the file as a whole
	Msg  string
	// Err is the underlying error, if any (e.g. from reading the file), so
	// errors.Is(err, fs.ErrNotExist) works through *Errors.
	Err error
}

// Error formats e as FILE:LINE: MSG, or FILE: MSG without a line.
func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e Error) Unwrap() error { return e.Err }

// Errors is every problem found in a configuration, in line order. Load and
// Parse return it (as *Errors) for anything that is the configuration's
// fault, so cmd maps it to exit 78 with errors.As.
type Errors struct {
	List []Error
}

// Error returns one problem per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, x := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, x := range e.List {
		errs[i] = x
	}
	return errs
}

// UnknownAccountError is returned by Config.Select for account names that
// are not in the configuration: a command-line mistake, not a configuration
// one.
type UnknownAccountError struct {
	Names []string // the unknown names, in the order given
	Hints []string // for each name, a known name close to it, or ""
	Known []string // the accounts of the configuration, in its order
	File  string   // the configuration file
}

func (e *UnknownAccountError) Error() string {
	var parts []string
	for i, n := range e.Names {
		s := fmt.Sprintf("unknown account %q", n)
		if i < len(e.Hints) && e.Hints[i] != "" {
			s += fmt.Sprintf(" (did you mean %q?)", e.Hints[i])
		}
		parts = append(parts, s)
	}
	msg := strings.Join(parts, "; ")
	if len(e.Known) > 0 {
		what := "the accounts"
		if e.File != "" {
			what += " of " + e.File
		}
		msg += fmt.Sprintf(": %s are %s", what, strings.Join(e.Known, ", "))
	}
	return msg
}

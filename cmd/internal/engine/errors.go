package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3"
)

// ErrLocked is returned when another popfetch holds the account's lock.
var ErrLocked = errors.New("another popfetch is fetching this account")

// CacheMismatchError is the tripwire of CONTRACT §5: in keep mode, none of
// the cached UIDs is on a server that lists many messages, so fetching would
// retrieve everything again.
type CacheMismatchError struct {
	Cached, Listed int
	Path           string
}

func (e *CacheMismatchError) Error() string {
	return fmt.Sprintf("none of the %d messages remembered in %s is among the %d on the server "+
		"(the server's UIDs changed, or the cache belongs to another mailbox); "+
		"refusing to fetch them all again: run with --accept-all-as-new if that is what you want",
		e.Cached, e.Path, e.Listed)
}

// NoUIDLError is a server without UIDL (RFC 1939 §7) for an account in
// keep mode, which must remember what it retrieved by UID. The server does
// nothing wrong, it lacks what popfetch needs here: like a server that
// cannot be used, this exits 69 (EX_UNAVAILABLE), not 76. Err is the
// server's refusal; it is not unwrapped, so that a -ERR without a code
// does not read as a broken protocol.
type NoUIDLError struct{ Err error }

func (e *NoUIDLError) Error() string {
	return fmt.Sprintf("the server does not support UIDL (%v), so with keep = true popfetch cannot "+
		"tell new messages from old ones; with keep = false it retrieves and deletes every message", e.Err)
}

// ConfigError is a problem of the account's settings found when running,
// such as credentials that would go out in the clear or a missing password.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// AuthError is a login the server refused.
type AuthError struct {
	Mechanism string
	Err       error
	// Offered, when the mechanism was chosen by auth and the server does
	// not list it, are the methods the server does list (in popfetch's
	// auth names), so that the message can say what to choose instead.
	Offered []string
}

func (e *AuthError) Error() string {
	if e.Offered != nil {
		offers := "nothing popfetch can use"
		if len(e.Offered) > 0 {
			offers = strings.Join(e.Offered, ", ")
		}
		return fmt.Sprintf("login with %s refused: %v (the server does not offer %s; it offers %s: set auth to one of them, or to \"auto\")",
			e.Mechanism, e.Err, e.Mechanism, offers)
	}
	return fmt.Sprintf("login with %s refused: %v", e.Mechanism, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// StateError is a failure to read or write popfetch's own state (cache,
// lock).
type StateError struct{ Err error }

func (e *StateError) Error() string { return e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

// TLSModeError is an account whose tls mode does not fit what its port
// speaks: a port of implicit TLS (995) with tls = "starttls" or "none",
// which would never greet, or a plain POP3 port (110) with tls =
// "implicit", which greets where a TLS handshake is expected. The pop3
// client tells both within about a second (pop3.ErrImplicitTLS,
// pop3.ErrNotTLS); the fix is in the configuration.
type TLSModeError struct {
	Port      int
	Mode      config.TLSMode // as configured
	SpeaksTLS bool           // the port speaks TLS from the first byte
	Err       error          // what the pop3 client found
}

func (e *TLSModeError) Error() string {
	if e.SpeaksTLS {
		return fmt.Sprintf("port %d speaks TLS from the first byte, where tls = %q waits for a greeting in plain text: set tls = \"implicit\"", e.Port, e.Mode)
	}
	return fmt.Sprintf("port %d speaks POP3 without TLS (it greeted where a TLS handshake was expected): set tls = \"starttls\" (or \"none\")", e.Port)
}

func (e *TLSModeError) Unwrap() error { return e.Err }

// tlsModeError returns err as a *TLSModeError when it says the account's
// port speaks another TLS mode than its tls; else err.
func tlsModeError(a *config.Account, err error) error {
	switch {
	case errors.Is(err, pop3.ErrImplicitTLS):
		return &TLSModeError{Port: a.Port, Mode: a.TLS, SpeaksTLS: true, Err: err}
	case errors.Is(err, pop3.ErrNotTLS):
		return &TLSModeError{Port: a.Port, Mode: a.TLS, Err: err}
	}
	return err
}

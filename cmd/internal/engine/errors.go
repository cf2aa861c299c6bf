package engine

import (
	"errors"
	"fmt"
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

// ConfigError is a problem of the account's settings found when running,
// such as credentials that would go out in the clear or a missing password.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// AuthError is a login the server refused.
type AuthError struct {
	Mechanism string
	Err       error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("login with %s refused: %v", e.Mechanism, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// StateError is a failure to read or write popfetch's own state (cache,
// lock).
type StateError struct{ Err error }

func (e *StateError) Error() string { return e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

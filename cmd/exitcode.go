package cmd

import (
	"errors"
	"net"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/deliver"
	"github.com/popfetch/popfetch/pop3"
)

// Exit codes of CONTRACT §4 (sysexits.h).
const (
	exitOK          = 0
	exitNoMail      = 1  // check: no new mail
	exitUsage       = 64 // EX_USAGE
	exitCacheMatch  = 65 // EX_DATAERR: the tripwire
	exitUnavailable = 69 // EX_UNAVAILABLE: network, TLS, SYS/PERM
	exitIOErr       = 74 // EX_IOERR: local delivery failed
	exitTempFail    = 75 // EX_TEMPFAIL
	exitProtocol    = 76 // EX_PROTOCOL
	exitNoPerm      = 77 // EX_NOPERM: authentication failed
	exitConfig      = 78 // EX_CONFIG
)

// usageError is a bad command line.
type usageError struct {
	err  error
	help string // the command whose --help to see ("popfetch fetch"), if known
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode maps an error to the exit code of CONTRACT §4. This is the only
// place that decides exit codes. Of errors joined together, the first
// decides: it is what went wrong first.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var (
		usage    usageError
		unknown  *config.UnknownAccountError
		cfgErrs  *config.Errors
		cfgErr   *engine.ConfigError
		credErr  *credentialError
		mismatch *engine.CacheMismatchError
		noUIDL   *engine.NoUIDLError
		authErr  *engine.AuthError
		popErr   *pop3.Error
		delErr   *deliver.Error
		stateErr *engine.StateError
		protoErr *pop3.ProtocolError
		noCheck  errNoNewMail
	)
	switch {
	case errors.As(err, &noCheck):
		return exitNoMail
	case errors.As(err, &usage), errors.As(err, &unknown):
		return exitUsage
	case errors.As(err, &cfgErrs):
		return exitConfig
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return exitCode(errs[0])
		}
	}
	var oauthRefused *oauthRefusedError
	var tlsMode *engine.TLSModeError
	switch {
	case errors.As(err, &oauthRefused):
		return exitNoPerm
	case errors.As(err, &cfgErr), errors.As(err, &credErr), errors.As(err, &tlsMode):
		return exitConfig
	case errors.Is(err, engine.ErrLocked):
		return exitTempFail
	case errors.As(err, &noUIDL):
		// The server breaks no rule (UIDL is optional); it cannot serve
		// keep mode: unusable, as CONTRACT §4's 69 says.
		return exitUnavailable
	case errors.As(err, &mismatch):
		return exitCacheMatch
	case errors.As(err, &popErr):
		switch {
		case popErr.Temporary():
			return exitTempFail
		case popErr.Code == pop3.CodeSysPerm, popErr.Command == "STLS":
			// A server that refuses STLS cannot be used with tls =
			// "starttls": like a failed handshake, not a protocol error.
			return exitUnavailable
		case popErr.Code == pop3.CodeAuth || errors.As(err, &authErr):
			return exitNoPerm
		}
		return exitProtocol
	case errors.As(err, &delErr):
		if delErr.Temporary {
			return exitTempFail
		}
		return exitIOErr
	case errors.As(err, &stateErr):
		return exitIOErr
	case errors.As(err, &protoErr):
		return exitProtocol
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return exitUnavailable
	}
	// TLS failures, refused connections, connections cut short: the
	// server could not be used.
	return exitUnavailable
}

// errNoNewMail is check's "nothing new": exit 1 without a message.
type errNoNewMail struct{}

func (errNoNewMail) Error() string { return "no new mail" }

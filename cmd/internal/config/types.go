// Package config loads popfetch's TOML configuration (CONTRACT §2) into
// typed, validated account definitions, and reports every problem as
// FILE:LINE: what is wrong.
package config

import (
	"strconv"
	"time"
)

// TLSMode is how an account's connection is protected.
type TLSMode string

// TLS modes.
const (
	TLSImplicit TLSMode = "implicit" // TLS from the first byte (port 995)
	TLSStartTLS TLSMode = "starttls" // STLS after the greeting (port 110)
	TLSNone     TLSMode = "none"     // no TLS
)

// AuthMethod is the configured authentication method.
type AuthMethod string

// Authentication methods.
const (
	AuthAuto        AuthMethod = "auto"
	AuthUser        AuthMethod = "user"
	AuthAPOP        AuthMethod = "apop"
	AuthPlain       AuthMethod = "plain"
	AuthLogin       AuthMethod = "login"
	AuthCRAMMD5     AuthMethod = "cram-md5"
	AuthXOAuth2     AuthMethod = "xoauth2"
	AuthOAuthBearer AuthMethod = "oauthbearer"
)

// Secret is a string that never prints: fmt shows REDACTED.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return "REDACTED" }

// Config is a loaded configuration.
type Config struct {
	// Path is the file it was read from.
	Path string
	// Accounts in the order of the file.
	Accounts []*Account
}

// Account is one [[account]], with the [defaults] applied, every default
// of CONTRACT §2 filled in, and every path expanded (~ and $VAR).
type Account struct {
	Name              string
	Host              string
	Port              int // 995 for implicit TLS, else 110, unless set
	TLS               TLSMode
	TLSCAFile         string
	TLSFingerprint    string // "" or "sha256:" and 64 lower-case hex digits
	AllowInsecure     bool
	User              string
	Auth              AuthMethod
	PasswordCommand   string
	Password          Secret
	OAuthTokenCommand string
	OAuthProvider     string // "", "google", "microsoft" or a token URL
	OAuthClientID     string
	Keep              bool
	FetchAll          bool
	DeleteAfter       time.Duration // 0: never
	MaxSize           int64         // bytes; 0: no limit
	MaxMessages       int           // 0: no limit
	ReceivedHeader    bool          // default true
	Timeout           time.Duration // default 60s
	StateDir          string        // default $XDG_STATE_HOME/popfetch or ~/.local/state/popfetch
	Deliver           Deliver

	// AdoptKey, when set, is the identity under which an older popfetch
	// kept this mailbox's cache (see LegacyKey): the cache is renamed to
	// Key's on first use if Key has none. Set by the loader only where no
	// other account's Key is AdoptKey.
	AdoptKey string

	// File is the configuration file, and Lines the line of each key set
	// for this account (e.g. "host", "deliver.maildir"), with "" for the
	// [[account]] header itself, so later checks can say FILE:LINE too.
	File  string
	Lines map[string]int
}

// Deliver is an account's delivery target: exactly one field is set.
type Deliver struct {
	Maildir string // a directory (expanded)
	Mbox    string // a file (expanded)
	MDA     string // a command line, split like a shell would, never run by one
	LMTP    string // "unix:/path" (expanded) or "host:port"
	SMTP    string // "host" or "host:port"
	// Recipient is the RCPT TO of LMTP and SMTP, %T for the account's
	// user; "" means the user. Given only with LMTP or SMTP.
	Recipient string
}

// Key returns the identity of the account's mailbox (CONTRACT §2):
// USER@HOST, or USER@HOST:PORT when the port is not the standard one of
// the TLS mode (995 for implicit TLS, 110 otherwise). The UID cache, the
// lock and the keyring entry belong to it: renaming an account, or moving
// between 110/STLS and 995/TLS, keeps them; two SSH tunnels to one
// server on two local ports are two mailboxes.
func (a *Account) Key() string {
	if a.Port == 0 || a.Port == StandardPort(a.TLS) {
		return a.User + "@" + a.Host
	}
	return a.User + "@" + a.Host + ":" + strconv.Itoa(a.Port)
}

// LegacyKey returns the identity that versions before the port counted
// used for this mailbox, USER@HOST, when it differs from Key; else "".
// Its cache is adopted (renamed to Key's) when Key has none, and when no
// other account of the configuration has it as its Key.
func (a *Account) LegacyKey() string {
	if old := a.User + "@" + a.Host; old != a.Key() {
		return old
	}
	return ""
}

// StandardPort returns the standard port of a TLS mode: 995 (pop3s, RFC
// 8314) for implicit TLS, 110 (RFC 1939) otherwise.
func StandardPort(mode TLSMode) int {
	if mode == TLSImplicit || mode == "" {
		return 995
	}
	return 110
}

// Line returns the line of key in the account's file, or the line of the
// account's header if the key was not set there.
func (a *Account) Line(key string) int {
	if n, ok := a.Lines[key]; ok {
		return n
	}
	return a.Lines[""]
}

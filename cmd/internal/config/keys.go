package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/popfetch/popfetch/deliver"
)

// Key is one configuration key of an account: its name, how it is
// written, what it does, how its value is checked and where it goes in an
// Account. The table of them (Keys) is the one place that knows the keys:
// the loader checks and sets values through it, and the manual page and
// the check of config.example.toml read their names and documentation
// from it.
type Key struct {
	// Name as written in [[account]] and [defaults], or "deliver." and
	// the name for a key of [account.deliver] ("deliver.maildir").
	Name string
	// Type is how a value is written, for documentation: "string",
	// "path", "command", "integer", "boolean", "duration" or "size".
	Type string
	// Default is the value used when the key is not given, as
	// documentation ("" when there is none or the key is required).
	Default string
	// Example is a value as it is written in TOML, for the starter
	// configuration and the manual page.
	Example string
	// Doc says what the key does: sentences, without line breaks.
	Doc string
	// Required keys must be given for every account.
	Required bool
	// Target marks the delivery targets of [account.deliver], of which an
	// account gives exactly one.
	Target bool
	// PerAccount keys cannot be given in [defaults].
	PerAccount bool
	// Secret keys' values are never shown in messages.
	Secret bool

	// parse checks a value as toml.Decode made it and converts it to
	// what set takes; it reports problems through p itself.
	parse func(p *parser, s *scope, k *Key, v any, line int) (any, bool)
	// set puts a checked value into an account made by NewAccount. An
	// empty string (or 0 for durations) leaves the default alone, so
	// that an account can undo a value of [defaults] with "".
	set func(a *Account, v any)
}

// Keys returns the configuration keys, in the order of CONTRACT §2.
func Keys() []Key { return append([]Key(nil), keyTable...) }

// Defaults of CONTRACT §2 that are not the zero value; NewAccount applies
// them.
const (
	DefaultTimeout        = 60 * time.Second
	defaultReceivedHeader = true
)

// NewAccount returns an account with every default of CONTRACT §2: implicit
// TLS on port 995, auth "auto", a Received: header, a 60 s timeout and the
// default state directory of env. The loader starts every account from it,
// and so should anything that builds an account by other means (a one-off
// fetch, the demo), so that the defaults live in one place. An account
// that changes TLS without choosing a port should set Port to
// StandardPort(TLS).
func NewAccount(env Env) *Account {
	return &Account{
		Port:           StandardPort(TLSImplicit),
		TLS:            TLSImplicit,
		Auth:           AuthAuto,
		ReceivedHeader: defaultReceivedHeader,
		Timeout:        DefaultTimeout,
		StateDir:       DefaultStateDir(env),
		Lines:          map[string]int{},
	}
}

var (
	tlsModes    = []string{string(TLSImplicit), string(TLSStartTLS), string(TLSNone)}
	authMethods = []string{
		string(AuthAuto), string(AuthUser), string(AuthAPOP), string(AuthPlain), string(AuthLogin),
		string(AuthCRAMMD5), string(AuthXOAuth2), string(AuthOAuthBearer),
	}
)

// keyTable is every key. Keep it in the order of CONTRACT §2; the manual
// page lists the keys in this order.
var keyTable = []Key{
	{Name: "name", Example: `"personal"`, Type: "string", Required: true, PerAccount: true,
		Doc:   "The account's name, used on the command line and in messages: letters, digits, \".\", \"_\" and \"-\"; unique in the file.",
		parse: checkedString(validName),
		set:   func(a *Account, v any) { a.Name = v.(string) }},
	{Name: "host", Example: `"pop.example.org"`, Type: "string", Required: true,
		Doc:   "The POP3 server's host name or IP address (without a port: see port).",
		parse: checkedString(checkHost),
		set:   func(a *Account, v any) { a.Host = v.(string) }},
	{Name: "port", Example: `995`, Type: "integer", Default: "995 with tls = \"implicit\", else 110",
		Doc:   "The server's port.",
		parse: intRange(1, 65535, "port %d is out of range 1-65535"),
		set:   func(a *Account, v any) { a.Port = v.(int) }},
	{Name: "tls", Example: `"implicit"`, Type: "string", Default: `"implicit"`,
		Doc: "How the connection is protected: \"implicit\" (TLS from the first byte, port 995), \"starttls\" " +
			"(STLS after the greeting, port 110; a server that does not offer it is refused) or \"none\".",
		parse: oneOf(tlsModes),
		set: func(a *Account, v any) {
			if s := v.(string); s != "" {
				a.TLS = TLSMode(s)
			}
		}},
	{Name: "tls_ca_file", Example: `"~/.config/popfetch/ca.pem"`, Type: "path",
		Doc:   "A PEM file of CA certificates to trust besides the system's.",
		parse: pathValue,
		set:   func(a *Account, v any) { a.TLSCAFile = v.(string) }},
	{Name: "tls_fingerprint", Example: `"sha256:..."`, Type: "string",
		Doc: "\"sha256:\" and the hex SHA-256 of the server certificate (DER), as popfetch serverinfo prints it; " +
			"when set, this pin alone decides trust, so self-signed servers work.",
		parse: fingerprintValue,
		set:   func(a *Account, v any) { a.TLSFingerprint = v.(string) }},
	{Name: "allow_insecure", Example: `false`, Type: "boolean", Default: "false",
		Doc:   "Allow sending credentials without TLS to a host that is not loopback.",
		parse: boolValue,
		set:   func(a *Account, v any) { a.AllowInsecure = v.(bool) }},
	{Name: "user", Example: `"alice"`, Type: "string", Required: true,
		Doc:   "The user name to log in with.",
		parse: checkedString(checkUser),
		set:   func(a *Account, v any) { a.User = v.(string) }},
	{Name: "auth", Example: `"auto"`, Type: "string", Default: `"auto"`,
		Doc: "The login method: \"auto\" (the best the server offers that does not expose the password), " +
			"\"user\", \"apop\", \"plain\", \"login\", \"cram-md5\", \"xoauth2\" or \"oauthbearer\".",
		parse: oneOf(authMethods),
		set: func(a *Account, v any) {
			if s := v.(string); s != "" {
				a.Auth = AuthMethod(s)
			}
		}},
	{Name: "password_command", Example: `"pass show mail/personal"`, Type: "command",
		Doc: "A command run by /bin/sh whose first line of output is the password; it comes first. " +
			"It runs before connecting, without standard input, and is killed with all it started after timeout.",
		parse: stringValue,
		set:   func(a *Account, v any) { a.PasswordCommand = v.(string) }},
	{Name: "password", Example: `"..."`, Type: "string", Secret: true,
		Doc: "The password itself, accepted only in a file that neither group nor others can read. " +
			"Without password_command or password, the OS keyring is asked (popfetch password set).",
		parse: passwordValue,
		set:   func(a *Account, v any) { a.Password = Secret(v.(string)) }},
	{Name: "oauth_token_command", Example: `"oama access alice@gmail.com"`, Type: "command",
		Doc: "A command that prints an OAuth2 bearer token, for auth = \"xoauth2\" or \"oauthbearer\"; " +
			"run as password_command is.",
		parse: stringValue,
		set:   func(a *Account, v any) { a.OAuthTokenCommand = v.(string) }},
	{Name: "oauth_provider", Example: `"google"`, Type: "string",
		Doc: "Built-in OAuth2 token refresh: \"google\", \"microsoft\" or a token URL, with oauth_client_id; " +
			"popfetch oauth login ACCOUNT obtains the refresh token once and keeps it in the OS keyring.",
		parse: checkedString(checkProvider),
		set:   func(a *Account, v any) { a.OAuthProvider = v.(string) }},
	{Name: "oauth_client_id", Example: `"..."`, Type: "string",
		Doc:   "The OAuth2 client ID for oauth_provider.",
		parse: stringValue,
		set:   func(a *Account, v any) { a.OAuthClientID = v.(string) }},
	{Name: "keep", Example: `false`, Type: "boolean", Default: "false",
		Doc:   "Leave messages on the server; the UID cache makes later runs fetch only new ones.",
		parse: boolValue,
		set:   func(a *Account, v any) { a.Keep = v.(bool) }},
	{Name: "fetch_all", Example: `false`, Type: "boolean", Default: "false",
		Doc:   "Also retrieve messages retrieved before.",
		parse: boolValue,
		set:   func(a *Account, v any) { a.FetchAll = v.(bool) }},
	{Name: "delete_after", Example: `"30d"`, Type: "duration",
		Doc:   "With keep: delete messages first seen longer ago than this, e.g. \"30d\".",
		parse: durationValue,
		set:   func(a *Account, v any) { a.DeleteAfter = v.(time.Duration) }},
	{Name: "max_size", Example: `"25MB"`, Type: "size",
		Doc: "Leave messages larger than this on the server and report them: \"25MB\" (10^6 bytes), " +
			"\"25MiB\" (2^20 bytes) or a number of bytes; 0 or \"\" for no limit.",
		parse: sizeValue,
		set:   func(a *Account, v any) { a.MaxSize = v.(int64) }},
	{Name: "max_messages", Example: `0`, Type: "integer", Default: "0",
		Doc:   "Retrieve at most this many messages per run; 0 for no limit.",
		parse: intRange(0, math.MaxInt32, "max_messages must be 0 (no limit) or more, not %d"),
		set:   func(a *Account, v any) { a.MaxMessages = v.(int) }},
	{Name: "received_header", Example: `true`, Type: "boolean", Default: "true",
		Doc:   "Prepend a Received: header naming the server, the account and the time.",
		parse: boolValue,
		set:   func(a *Account, v any) { a.ReceivedHeader = v.(bool) }},
	{Name: "timeout", Example: `"60s"`, Type: "duration", Default: `"60s"`,
		Doc: "How long the server may keep popfetch waiting: connecting, and each answer; while it sends, " +
			"each timeout spent waiting must bring 4 KiB or the end of the answer.",
		parse: durationValue,
		set: func(a *Account, v any) {
			if d := v.(time.Duration); d != 0 {
				a.Timeout = d
			}
		}},
	{Name: "state_dir", Example: `"~/.local/state/popfetch"`, Type: "path", Default: "$XDG_STATE_HOME/popfetch, else ~/.local/state/popfetch",
		Doc:   "Where the UID cache and the lock of each mailbox are kept (created 0700).",
		parse: pathValue,
		set: func(a *Account, v any) {
			if s := v.(string); s != "" {
				a.StateDir = s
			}
		}},
	{Name: "deliver.maildir", Example: `"~/Mail/personal"`, Type: "path", Target: true,
		Doc:   "Deliver into this Maildir, created (0700, with cur, new and tmp) if missing.",
		parse: pathValue,
		set:   func(a *Account, v any) { a.Deliver.Maildir = v.(string) }},
	{Name: "deliver.mbox", Example: `"~/mbox"`, Type: "path", Target: true,
		Doc:   "Deliver into this mbox file (mboxrd, fcntl and dotlock locking), created 0600 if missing.",
		parse: pathValue,
		set:   func(a *Account, v any) { a.Deliver.Mbox = v.(string) }},
	{Name: "deliver.mda", Example: `"/usr/bin/procmail -d %T"`, Type: "command", Target: true,
		Doc: "Deliver by running this command with the message on standard input: split into arguments " +
			"like a shell would, never run by one; %F is the envelope sender, %T the account's user. " +
			"Exit 0 is delivered, 75 is try later.",
		parse: stringValue,
		set:   func(a *Account, v any) { a.Deliver.MDA = v.(string) }},
	{Name: "deliver.lmtp", Example: `"unix:/run/dovecot/lmtp"`, Type: "string", Target: true,
		Doc: "Deliver over LMTP (RFC 2033) to \"unix:/path\" or \"host:port\", e.g. Dovecot's " +
			"\"unix:/run/dovecot/lmtp\", so that its Sieve filters, quotas and indexes see the mail; " +
			"a message is delivered once the server answers 250 for it, and a 4xx answer leaves it for later.",
		parse: lmtpValue,
		set:   func(a *Account, v any) { a.Deliver.LMTP = v.(string) }},
	{Name: "deliver.smtp", Example: `"localhost:25"`, Type: "string", Target: true,
		Doc: "Forward over SMTP (RFC 5321) to \"host\" or \"host:port\" (port 25 by default), the local MTA as " +
			"fetchmail does; STARTTLS when offered, the certificate verified unless the host is loopback. " +
			"A message is delivered once the server answers 250 after its data; a 4xx answer leaves it for later.",
		parse: smtpValue,
		set:   func(a *Account, v any) { a.Deliver.SMTP = v.(string) }},
	{Name: "deliver.recipient", Example: `"%T"`, Type: "string", Default: "the account's user",
		Doc:   "The RCPT TO address for deliver.lmtp and deliver.smtp; %T is the account's user.",
		parse: checkedString(checkRecipient),
		set:   func(a *Account, v any) { a.Deliver.Recipient = v.(string) }},
}

// lookupKey returns the key named, or nil.
func lookupKey(name string) *Key {
	for i := range keyTable {
		if keyTable[i].Name == name {
			return &keyTable[i]
		}
	}
	return nil
}

// accountKeyNames are the keys of an [[account]] outside its deliver table,
// plus "deliver" itself; deliverKeyNames those of the deliver table,
// without "deliver.".
func accountKeyNames() []string {
	var names []string
	for _, k := range keyTable {
		if !strings.HasPrefix(k.Name, "deliver.") {
			names = append(names, k.Name)
		}
	}
	return append(names, "deliver")
}

func deliverKeyNames() []string {
	var names []string
	for _, k := range keyTable {
		if n, ok := strings.CutPrefix(k.Name, "deliver."); ok {
			names = append(names, n)
		}
	}
	return names
}

// targetNames are the delivery targets, without "deliver.".
func targetNames() []string {
	var names []string
	for _, k := range keyTable {
		if k.Target {
			names = append(names, strings.TrimPrefix(k.Name, "deliver."))
		}
	}
	return names
}

// isSecretKey reports whether a key's value must never be shown.
func isSecretKey(name string) bool {
	k := lookupKey(name)
	return k != nil && k.Secret
}

// The parsers of the table. Each reports its problems at line, in scope s.

func stringValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	return p.str(s, k.Name, v, line)
}

// checkedString is a string that check finds nothing wrong with (it
// returns what is wrong, or ""). The empty string is not checked.
func checkedString(check func(string) string) func(*parser, *scope, *Key, any, int) (any, bool) {
	return func(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
		str, ok := p.str(s, k.Name, v, line)
		if !ok {
			return nil, false
		}
		if msg := check(str); str != "" && msg != "" {
			p.errAt(s, line, "%s", msg)
			return nil, false
		}
		return str, true
	}
}

// oneOf is a string from a list, or "" for the default.
func oneOf(values []string) func(*parser, *scope, *Key, any, int) (any, bool) {
	return func(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
		str, ok := p.str(s, k.Name, v, line)
		if !ok {
			return nil, false
		}
		if str != "" && !contains(values, str) {
			p.errAt(s, line, "%s must be one of %s, not %q%s", k.Name, strings.Join(values, ", "), str, hint(str, values, ""))
			return nil, false
		}
		return str, true
	}
}

func pathValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, ok := p.str(s, k.Name, v, line)
	if !ok {
		return nil, false
	}
	return p.path(s, k.Name, str, line)
}

func boolValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	b, ok := v.(bool)
	if !ok {
		msg := fmt.Sprintf("%s must be true or false, not %s", k.Name, typeName(v))
		if _, isStr := v.(string); isStr {
			msg += fmt.Sprintf(" (write %s = true or %s = false, without quotes)", k.Name, k.Name)
		}
		p.errAt(s, line, "%s", msg)
	}
	return b, ok
}

// intRange is an integer from lo to hi; outside, format (with the value)
// says what is wrong.
func intRange(lo, hi int64, format string) func(*parser, *scope, *Key, any, int) (any, bool) {
	return func(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
		n, ok := p.integer(s, k.Name, v, line)
		if !ok {
			return nil, false
		}
		switch {
		case n > hi && hi == math.MaxInt32:
			p.errAt(s, line, "%s %d is too large", k.Name, n)
			return nil, false
		case n < lo || n > hi:
			p.errAt(s, line, format, n)
			return nil, false
		}
		return int(n), true
	}
}

func sizeValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	switch n := v.(type) {
	case int64:
		if n < 0 {
			p.errAt(s, line, "%s must not be negative", k.Name)
			return nil, false
		}
		return n, true
	case string:
		if n == "" {
			return int64(0), true
		}
		size, err := ParseSize(n)
		if err != nil {
			p.errAt(s, line, "%s: %v", k.Name, err)
			return nil, false
		}
		return size, true
	}
	p.errAt(s, line, "%s must be a size like \"25MB\" or a number of bytes, not %s", k.Name, typeName(v))
	return nil, false
}

// durationValue is a duration string; "" is 0. timeout must be more than
// 0, the others not negative.
func durationValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, isStr := v.(string)
	if !isStr {
		msg := fmt.Sprintf("%s must be a duration string like \"60s\", not %s", k.Name, typeName(v))
		switch n := v.(type) {
		case int64:
			msg += fmt.Sprintf(" (write %s = \"%ds\" for %d seconds)", k.Name, n, n)
		case float64:
			msg += fmt.Sprintf(" (write %s = \"%gs\" for %g seconds)", k.Name, n, n)
		}
		p.errAt(s, line, "%s", msg)
		return nil, false
	}
	if str == "" {
		return time.Duration(0), true
	}
	d, err := ParseDuration(str)
	switch {
	case err != nil:
		p.errAt(s, line, "%s: %v", k.Name, err)
		return nil, false
	case k.Name == "timeout" && d <= 0:
		p.errAt(s, line, "timeout must be more than 0")
		return nil, false
	case d < 0:
		p.errAt(s, line, "%s must not be negative", k.Name)
		return nil, false
	}
	return d, true
}

func fingerprintValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, ok := p.str(s, k.Name, v, line)
	if !ok || str == "" {
		return str, ok
	}
	fp, err := ParseFingerprint(str)
	if err != nil {
		p.errAt(s, line, "%s: %v", k.Name, err)
		return nil, false
	}
	return fp, true
}

func passwordValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, ok := p.str(s, k.Name, v, line)
	if ok && str != "" && p.opts.haveMode && p.opts.mode.Perm()&0o044 != 0 {
		p.errAt(s, line, "password in a file that group or others can read (mode %04o): chmod 600 %s, or use password_command",
			p.opts.mode.Perm(), p.file)
		return nil, false
	}
	return str, ok
}

// checkHost returns what is wrong with a host, or "".
func checkHost(str string) string {
	if strings.ContainsFunc(str, isSpaceOrControl) || strings.ContainsAny(str, "/[]") {
		return fmt.Sprintf("host %q is not a host name or IP address", str)
	}
	if strings.Count(str, ":") == 1 {
		h, port, _ := strings.Cut(str, ":")
		return fmt.Sprintf("host %q includes a port: write host = %q and port = %s", str, h, port)
	}
	return ""
}

// lmtpValue is "unix:/path" (~ and $VAR expanded) or "host:port".
func lmtpValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, ok := p.str(s, k.Name, v, line)
	if !ok || str == "" {
		return str, ok
	}
	if path, isUnix := strings.CutPrefix(str, "unix:"); isUnix {
		x, ok := p.path(s, k.Name, path, line)
		if !ok {
			return nil, false
		}
		str = "unix:" + x
	}
	if _, _, err := deliver.LMTPAddress(str); err != nil {
		p.errAt(s, line, "%s: %v", k.Name, err)
		return nil, false
	}
	return str, true
}

// smtpValue is "host" or "host:port".
func smtpValue(p *parser, s *scope, k *Key, v any, line int) (any, bool) {
	str, ok := p.str(s, k.Name, v, line)
	if !ok || str == "" {
		return str, ok
	}
	if _, err := deliver.SMTPAddress(str); err != nil {
		p.errAt(s, line, "%s: %v", k.Name, err)
		return nil, false
	}
	return str, true
}

// checkRecipient returns what is wrong with a recipient address, or "".
func checkRecipient(str string) string {
	if strings.ContainsFunc(str, isSpaceOrControl) || strings.ContainsAny(str, "<>") {
		return fmt.Sprintf("deliver.recipient %q is not an address (no blanks, control characters or <>)", str)
	}
	if strings.Contains(strings.ReplaceAll(str, "%%", ""), "%F") {
		return "deliver.recipient: %F (the envelope sender) makes no sense here; %T is the account's user"
	}
	return ""
}

// checkUser returns what is wrong with a user name, or "".
func checkUser(str string) string {
	if strings.ContainsFunc(str, isControl) {
		return "user must not contain control characters"
	}
	return ""
}

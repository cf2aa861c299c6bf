package engine

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3"
)

// Credentials supply the secrets of an account, when the chosen
// authentication needs them and not before.
type Credentials interface {
	// Password returns the account's password.
	Password(ctx context.Context) (string, error)
	// Token returns an OAuth2 bearer token.
	Token(ctx context.Context) (string, error)
}

// tlsConfig returns the TLS settings of an account: system roots plus
// tls_ca_file, or, with tls_fingerprint, the pin alone.
func tlsConfig(a *config.Account) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: a.Host, MinVersion: tls.VersionTLS12}
	if a.TLSFingerprint != "" {
		want := strings.TrimPrefix(a.TLSFingerprint, "sha256:")
		// The pin alone decides trust (CONTRACT §2), so self-signed
		// servers work: the chain is not verified, the leaf must match.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); got != want {
				return &PinError{Got: "sha256:" + got, Want: "sha256:" + want}
			}
			return nil
		}
		return cfg, nil
	}
	if a.TLSCAFile != "" {
		pem, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return nil, &ConfigError{Msg: fmt.Sprintf("tls_ca_file: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Msg: fmt.Sprintf("tls_ca_file %s: no PEM certificate found", a.TLSCAFile)}
		}
		// Trust is the system roots plus tls_ca_file (CONTRACT §6). A chain
		// ends at one root, so that is "valid under tls_ca_file, or else
		// under the system roots": checking the small pool first spares
		// parsing the whole system bundle (5 MB of memory, and time) in
		// the usual case where tls_ca_file is what signed the server.
		cfg.InsecureSkipVerify = true // verified below, fully
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, pool)
		}
	}
	return cfg, nil
}

// PinError is a server certificate that is not the one tls_fingerprint
// pins. Both fingerprints are "sha256:" and 64 lower-case hex digits.
type PinError struct{ Got, Want string }

func (e *PinError) Error() string {
	return fmt.Sprintf("certificate fingerprint %s does not match tls_fingerprint %s", e.Got, e.Want)
}

// verifyChain verifies the server's chain and name against roots, and
// failing that against the system roots, as crypto/tls would against the
// union of the two.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	_, err := leaf.Verify(opts)
	if err == nil {
		return nil
	}
	opts.Roots = nil // the system roots
	if _, serr := leaf.Verify(opts); serr == nil {
		return nil
	}
	return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}

// checkCleartext refuses, before connecting, to send credentials without
// TLS to a host that is not loopback (CONTRACT §6), unless allow_insecure.
func checkCleartext(ctx context.Context, a *config.Account) error {
	if a.TLS != config.TLSNone || a.AllowInsecure {
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, a.Host)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", a.Host, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return insecureError(a)
		}
	}
	return nil
}

func insecureError(a *config.Account) error {
	return &ConfigError{Msg: fmt.Sprintf("refusing to send credentials to %s without TLS: "+
		"set tls = \"implicit\" or \"starttls\", or allow_insecure = true", a.Host)}
}

// connect opens the session as the account's tls mode says.
func connect(ctx context.Context, a *config.Account, opts *pop3.Options) (*pop3.Client, error) {
	if err := checkCleartext(ctx, a); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	var c *pop3.Client
	var err error
	switch a.TLS {
	case config.TLSImplicit:
		c, err = pop3.DialTLS(ctx, addr, opts)
	case config.TLSStartTLS:
		c, err = pop3.DialStartTLS(ctx, addr, opts)
		if errors.Is(err, pop3.ErrNoSTLS) {
			err = noSTLSError(a, err)
		}
	default:
		c, err = pop3.Dial(ctx, addr, opts)
	}
	if err != nil {
		return nil, tlsModeError(a, err)
	}
	if a.TLS == config.TLSNone && !a.AllowInsecure && !isLoopback(c.RemoteAddr()) {
		c.Close()
		return nil, insecureError(a)
	}
	return c, nil
}

// askCaps asks for the capabilities before login, unless DialStartTLS
// did (before and after STLS).
func askCaps(a *config.Account, c *pop3.Client) error {
	if a.TLS == config.TLSStartTLS {
		return nil
	}
	if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
		return err
	}
	return nil
}

// noSTLSError refuses a server without STLS for tls = "starttls" (RFC 2595
// §4; CONTRACT §6: never a silent fall-back to plaintext).
func noSTLSError(a *config.Account, err error) error {
	return fmt.Errorf("%s offers no STLS, and tls = \"starttls\" forbids going on without TLS: %w", a.Host, err)
}

func isRefusal(err error) bool {
	var e *pop3.Error
	return errors.As(err, &e)
}

// startLogin authenticates with the account's method; "auto" picks the
// best that the server offers and the credentials allow. When the server
// pipelines and the method takes one exchange (USER/PASS, APOP, PLAIN),
// it only issues the login's commands and returns: wait returns their
// outcome, so that commands issued before them (the first CAPA, from
// remembered capabilities) are read in their turn (RFC 2449 §6.6). Other
// methods are done before it returns. It returns the method chosen.
func startLogin(ctx context.Context, c *pop3.Client, a *config.Account, creds Credentials) (config.AuthMethod, func() error, error) {
	method, err := chooseAuth(c, a)
	if err != nil {
		return method, nil, err
	}
	secret := func() (string, error) {
		if method == config.AuthXOAuth2 || method == config.AuthOAuthBearer {
			return creds.Token(ctx)
		}
		return creds.Password(ctx)
	}
	s, err := secret()
	if err != nil {
		return method, nil, err
	}
	if c.Caps().Has("UTF8") {
		// RFC 6856 §2: UTF8, valid only before authentication, has the
		// server send each message as stored, where Courier wraps one
		// with 8-bit header fields for a legacy client. Its answer is
		// read in order with the login's; a refusal changes nothing else.
		c.UTF8()
	}
	refused := func(err error) error {
		if isRefusal(err) {
			return &AuthError{Mechanism: string(method), Err: err, Offered: offeredInstead(c, a, method)}
		}
		return err
	}
	var mech sasl.Client
	switch method {
	case config.AuthUser:
		// RFC 2449 §6.6: USER and PASS may go out together; a refused
		// USER makes PASS fail too, and USER's answer says why.
		u, p := c.User(a.User), c.Pass(s)
		return method, func() error {
			err := u.Wait()
			if perr := p.Wait(); err == nil {
				err = perr
			}
			return refused(err)
		}, nil
	case config.AuthAPOP:
		cmd := c.APOP(a.User, s)
		return method, func() error { return refused(cmd.Wait()) }, nil
	case config.AuthPlain:
		mech = sasl.NewPlainClient("", a.User, s)
		if c.Pipelining() {
			cmd := c.AuthPipelined(mech)
			return method, func() error { return refused(cmd.Wait()) }, nil
		}
	case config.AuthLogin:
		mech = sasl.NewLoginClient(a.User, s)
	case config.AuthCRAMMD5:
		mech = pop3.NewCRAMMD5Client(a.User, s)
	case config.AuthXOAuth2:
		mech = pop3.NewXOAUTH2Client(a.User, s)
	case config.AuthOAuthBearer:
		mech = pop3.NewOAuthBearerClient(a.User, s, a.Host, a.Port)
	default:
		return method, nil, &ConfigError{Msg: fmt.Sprintf("auth method %q is not supported", method)}
	}
	err = refused(c.Auth(mech))
	return method, func() error { return err }, nil
}

// offeredInstead returns, when auth names a method the server does not
// list in CAPA, the methods it does list, in auth's names; else nil. A
// server without CAPA lists nothing, and says nothing of what it takes.
func offeredInstead(c *pop3.Client, a *config.Account, method config.AuthMethod) []string {
	caps := c.Caps()
	if a.Auth == config.AuthAuto || caps == nil {
		return nil
	}
	offered := []string{}
	if caps.Has("USER") {
		offered = append(offered, string(config.AuthUser))
	}
	if c.APOPTimestamp() != "" {
		offered = append(offered, string(config.AuthAPOP))
	}
	listed := false
	for _, m := range caps.Args("SASL") {
		name := config.AuthMethod(strings.ToLower(m))
		switch name {
		case config.AuthPlain, config.AuthLogin, config.AuthCRAMMD5, config.AuthXOAuth2, config.AuthOAuthBearer:
			offered = append(offered, string(name))
			listed = listed || name == method
		}
	}
	switch {
	case method == config.AuthUser && caps.Has("USER"),
		method == config.AuthAPOP && c.APOPTimestamp() != "",
		listed:
		return nil
	}
	return offered
}

// chooseAuth resolves "auto" (RFC 2449 §6.3, RFC 5034 §3): a bearer token
// when one is configured, else the SASL mechanisms the server lists — PLAIN
// or LOGIN once the connection is protected or local, else CRAM-MD5 — then
// USER/PASS (protected or local) and APOP. The listed mechanisms come
// before USER because they say what the server accepts, while USER may be
// listed regardless: Dovecot lists it even when its auth_mechanisms lack
// PLAIN, and then refuses PASS as an unsupported mechanism.
func chooseAuth(c *pop3.Client, a *config.Account) (config.AuthMethod, error) {
	if a.Auth != config.AuthAuto && a.Auth != "" {
		return a.Auth, nil
	}
	caps := c.Caps()
	mechs := map[string]bool{}
	for _, m := range caps.Args("SASL") {
		mechs[strings.ToUpper(m)] = true
	}
	if a.OAuthTokenCommand != "" || a.OAuthProvider != "" {
		switch {
		case mechs["OAUTHBEARER"]:
			return config.AuthOAuthBearer, nil
		case mechs["XOAUTH2"]:
			return config.AuthXOAuth2, nil
		}
		return "", &ConfigError{Msg: "an OAuth2 token is configured, but the server offers neither XOAUTH2 nor OAUTHBEARER"}
	}
	_, protected := c.TLSConnectionState()
	cleartext := protected || isLoopback(c.RemoteAddr()) || a.AllowInsecure
	switch {
	case cleartext && mechs["PLAIN"]:
		return config.AuthPlain, nil
	case cleartext && mechs["LOGIN"]:
		return config.AuthLogin, nil
	case mechs["CRAM-MD5"]:
		return config.AuthCRAMMD5, nil
	case cleartext && (caps == nil || caps.Has("USER")):
		// RFC 1939 servers without CAPA all take USER/PASS.
		return config.AuthUser, nil
	case c.APOPTimestamp() != "":
		return config.AuthAPOP, nil
	}
	return "", &ConfigError{Msg: "the server offers no authentication method that popfetch can use safely here; set auth explicitly"}
}

// ServerInfo is what Probe learned of a server without logging in.
type ServerInfo struct {
	// Addr is the address connected to.
	Addr net.Addr
	// Greeting is the text of the greeting, after "+OK".
	Greeting string
	// APOP reports whether the greeting carries an APOP timestamp.
	APOP bool
	// CapsBeforeTLS are the capabilities listed before STLS (tls =
	// "starttls" only); nil if CAPA was refused.
	CapsBeforeTLS pop3.Caps
	// Caps are the capabilities of the connection a login would use (after
	// STLS); nil if CAPA was refused or, for starttls, STLS failed.
	Caps pop3.Caps
	// TLS is the state of the TLS connection, nil without TLS.
	TLS *tls.ConnectionState
	// Untrusted is why the certificate was not trusted, nil if it was
	// (or there is no TLS). The rest of the information then comes from a
	// second connection made without verification.
	Untrusted error
}

// Probe connects to the account's server as a fetch would (tls mode,
// tls_ca_file, tls_fingerprint), reads the greeting, asks for the
// capabilities and quits. It never logs in and never asks for a credential,
// so unlike a fetch it also connects without TLS to any host.
//
// When the certificate is not trusted (verification failed, or it is not
// the pinned one), Probe connects once more without verification, only to
// learn the certificate and what else the server says, so that the user
// can judge it; it returns that information with ServerInfo.Untrusted set
// and, as the error, the verification failure of the first connection.
// Other failures return what was learned before them (possibly nil) and
// the error.
func Probe(ctx context.Context, a *config.Account, log *slog.Logger) (*ServerInfo, error) {
	tc, err := tlsConfig(a)
	if err != nil {
		return nil, err
	}
	opts := &pop3.Options{TLSConfig: tc, Timeout: a.Timeout, Logger: log}
	info, err := probe(ctx, a, opts)
	if err == nil || !isCertificateError(err) {
		return info, err
	}
	display := tc.Clone()
	display.InsecureSkipVerify = true
	display.VerifyConnection = nil
	opts.TLSConfig = display
	if shown, _ := probe(ctx, a, opts); shown != nil && shown.TLS != nil {
		shown.Untrusted = err
		return shown, err
	}
	return info, err
}

// isCertificateError reports whether err is a certificate that failed
// verification or the pin, as opposed to a handshake that failed.
func isCertificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	var perr *PinError
	return errors.As(err, &verr) || errors.As(err, &perr)
}

func probe(ctx context.Context, a *config.Account, opts *pop3.Options) (*ServerInfo, error) {
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	var c *pop3.Client
	var err error
	if a.TLS == config.TLSImplicit {
		c, err = pop3.DialTLS(ctx, addr, opts)
	} else {
		c, err = pop3.Dial(ctx, addr, opts)
	}
	if err != nil {
		return nil, tlsModeError(a, err)
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	info := &ServerInfo{Addr: c.RemoteAddr(), Greeting: c.Greeting(), APOP: c.APOPTimestamp() != ""}
	info.TLS = tlsState(c)
	if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
		return info, err
	}
	if a.TLS == config.TLSStartTLS {
		info.CapsBeforeTLS = c.Caps()
		if err := c.StartTLS(ctx, opts.TLSConfig); err != nil {
			if errors.Is(err, pop3.ErrNoSTLS) {
				c.Quit()
				return info, noSTLSError(a, err)
			}
			return info, err
		}
		info.TLS = tlsState(c)
		// RFC 2595 §4: the capabilities may differ once protected.
		if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
			return info, err
		}
	}
	info.Caps = c.Caps()
	// What was to be learned is learned; a QUIT that fails changes nothing.
	c.Quit()
	return info, nil
}

func tlsState(c *pop3.Client) *tls.ConnectionState {
	if cs, ok := c.TLSConnectionState(); ok {
		return &cs
	}
	return nil
}

package engine

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
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
				return fmt.Errorf("certificate fingerprint sha256:%s does not match tls_fingerprint sha256:%s", got, want)
			}
			return nil
		}
		return cfg, nil
	}
	if a.TLSCAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return nil, &ConfigError{Msg: fmt.Sprintf("tls_ca_file: %v", err)}
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Msg: fmt.Sprintf("tls_ca_file %s: no PEM certificate found", a.TLSCAFile)}
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
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
			err = fmt.Errorf("%s offers no STLS, and tls = \"starttls\" forbids going on without TLS: %w", a.Host, err)
		}
	default:
		c, err = pop3.Dial(ctx, addr, opts)
	}
	if err != nil {
		return nil, err
	}
	if a.TLS == config.TLSNone && !a.AllowInsecure && !isLoopback(c.RemoteAddr()) {
		c.Close()
		return nil, insecureError(a)
	}
	if a.TLS != config.TLSStartTLS {
		// DialStartTLS asked already, before and after STLS.
		if _, err := c.Capa().Wait(); err != nil && !isRefusal(err) {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func isRefusal(err error) bool {
	var e *pop3.Error
	return errors.As(err, &e)
}

// login authenticates with the account's method; "auto" picks the best
// that the server offers and the credentials allow.
func login(ctx context.Context, c *pop3.Client, a *config.Account, creds Credentials) error {
	method, err := chooseAuth(c, a)
	if err != nil {
		return err
	}
	secret := func() (string, error) {
		if method == config.AuthXOAuth2 || method == config.AuthOAuthBearer {
			return creds.Token(ctx)
		}
		return creds.Password(ctx)
	}
	s, err := secret()
	if err != nil {
		return err
	}
	var mech sasl.Client
	switch method {
	case config.AuthUser:
		// RFC 2449 §6.6: USER and PASS may go out together; a refused
		// USER makes PASS fail too, and USER's answer says why.
		u, p := c.User(a.User), c.Pass(s)
		err = u.Wait()
		if perr := p.Wait(); err == nil {
			err = perr
		}
	case config.AuthAPOP:
		err = c.APOP(a.User, s).Wait()
	case config.AuthPlain:
		mech = sasl.NewPlainClient("", a.User, s)
	case config.AuthLogin:
		mech = sasl.NewLoginClient(a.User, s)
	case config.AuthCRAMMD5:
		mech = pop3.NewCRAMMD5Client(a.User, s)
	case config.AuthXOAuth2:
		mech = pop3.NewXOAUTH2Client(a.User, s)
	case config.AuthOAuthBearer:
		mech = pop3.NewOAuthBearerClient(a.User, s, a.Host, a.Port)
	default:
		return &ConfigError{Msg: fmt.Sprintf("auth method %q is not supported", method)}
	}
	if mech != nil {
		err = c.Auth(mech)
	}
	if err != nil {
		if isRefusal(err) {
			return &AuthError{Mechanism: string(method), Err: err}
		}
		return err
	}
	return nil
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

package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/oauth2"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/oauth"
)

// clientSecretEnv names the environment variable that gives `oauth login`
// the OAuth2 client secret, for clients that have one (Google's); login
// stores it in the keyring for the refreshes. It is not a configuration
// key: a secret does not belong in the configuration file.
const clientSecretEnv = "POPFETCH_OAUTH_CLIENT_SECRET"

// oauthLoginOptions are oauth login's flags.
type oauthLoginOptions struct {
	account      string
	browser      bool
	device       bool
	deviceURL    string
	authURL      string
	scopes       []string
	port         int
	clientSecret string // from clientSecretEnv; "" if unset
}

const oauthLoginHelp = `
PROVIDERS
   oauth_provider = "google": the browser flow by default (Google's device flow
   does not grant mail scopes); scope https://mail.google.com/. Google's
   clients have a secret: give it once in the environment,
   ` + clientSecretEnv + `=... popfetch oauth login ACCOUNT
   oauth_provider = "microsoft": the device flow by default; scopes
   https://outlook.office.com/POP.AccessAsUser.All offline_access; a public
   client needs no secret.
   oauth_provider = a token URL: give --device-url for the device flow or
   --auth-url for the browser flow, and --scope as the provider wants (a
   Microsoft tenant's .../oauth2/v2.0/token URL needs none of them).

KEYRING
   The refresh token is stored in the OS keyring under the service "popfetch"
   and the key oauth:USER@HOST; a client secret under
   oauth-client-secret:USER@HOST. fetch refreshes access tokens with it, stores
   a new refresh token when the provider rotates it, and keeps access tokens
   in memory only.
`

const oauthExitHelp = `
EXIT STATUS
   0   authorized: the refresh token is stored
   64  bad command line or unknown account
   69  the provider could not be reached, or failed
   77  the authorization was refused
   78  configuration error (no oauth_provider, a client the provider does not
       know), or the OS keyring is not available`

func oauthCommand(g *globalOptions) *cli.Command {
	o := &oauthLoginOptions{}
	return &cli.Command{
		Name:               "oauth",
		Usage:              "authorize popfetch to get OAuth2 tokens by itself",
		OnUsageError:       onUsageError,
		CustomHelpTemplate: cli.SubcommandHelpTemplate + oauthLoginHelp + oauthExitHelp + "\n",
		Subcommands: []*cli.Command{{
			Name:      "login",
			Usage:     "authorize popfetch once for ACCOUNT and store the refresh token",
			ArgsUsage: "ACCOUNT",
			Description: "For an account with oauth_provider and oauth_client_id: runs the device flow\n" +
				"(enter a code at the provider's page, from any device) or the browser flow\n" +
				"(open a URL in a browser on this machine; it returns to popfetch on\n" +
				"127.0.0.1), then stores the refresh token in the OS keyring. From then on\n" +
				"fetch gets access tokens by itself. Run it again when the provider revokes\n" +
				"the authorization.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "browser", Usage: "use the browser flow (authorization code with PKCE, loopback redirect)", Destination: &o.browser},
				&cli.BoolFlag{Name: "device", Usage: "use the device flow (a code to enter at the provider's page)", Destination: &o.device},
				&cli.StringFlag{Name: "device-url", Usage: "the provider's device authorization endpoint `URL`", Destination: &o.deviceURL},
				&cli.StringFlag{Name: "auth-url", Usage: "the provider's authorization endpoint `URL`", Destination: &o.authURL},
				&cli.StringSliceFlag{Name: "scope", Usage: "ask for `SCOPE` instead of the provider's default (repeat for more)"},
				&cli.IntFlag{Name: "port", Usage: "browser flow: listen on 127.0.0.1:`PORT` (default any free port; for ssh -L)", Destination: &o.port},
			},
			OnUsageError:       onUsageError,
			CustomHelpTemplate: cli.CommandHelpTemplate + oauthLoginHelp + oauthExitHelp + "\n",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageError{err: errors.New("oauth login takes one ACCOUNT")}
				}
				o.account = c.Args().First()
				o.scopes = c.StringSlice("scope")
				o.clientSecret = os.Getenv(clientSecretEnv)
				return runOAuthLogin(c.Context, g, o)
			},
		}},
	}
}

// runOAuthLogin authorizes popfetch for an account and stores the refresh
// token in the OS keyring.
func runOAuthLogin(ctx context.Context, g *globalOptions, o *oauthLoginOptions) error {
	if o.browser && o.device {
		return usageError{err: errors.New("--browser and --device contradict each other")}
	}
	if o.port < 0 || o.port > 65535 {
		return usageError{err: fmt.Errorf("--port %d: want 1 to 65535", o.port)}
	}
	a, err := loadAccount(g, o.account)
	if err != nil {
		return err
	}
	if a.OAuthProvider == "" {
		return &credentialError{account: a.Name, msg: fmt.Sprintf("account %q has no oauth_provider: "+
			"set oauth_provider and oauth_client_id to have popfetch get tokens by itself", a.Name)}
	}
	p, err := oauth.Lookup(a.OAuthProvider)
	if err != nil {
		return &credentialError{account: a.Name, msg: err.Error()}
	}
	client := newOAuthClient(a, p, o.clientSecret)
	if len(o.scopes) > 0 {
		client.Scopes = o.scopes
	}
	ep := &client.Provider.Endpoint
	if o.deviceURL != "" {
		ep.DeviceAuthURL = o.deviceURL
	}
	if o.authURL != "" {
		ep.AuthURL = o.authURL
	}
	browser := o.browser
	switch {
	case o.browser || o.device:
	case ep.DeviceAuthURL == "" && ep.AuthURL == "":
		return usageError{err: fmt.Errorf("oauth_provider %q is a token URL: give the provider's "+
			"--device-url (device flow) or --auth-url (browser flow)", a.OAuthProvider)}
	case o.deviceURL != "":
		browser = false
	case o.authURL != "":
		browser = true
	default:
		browser = client.Provider.Browser || ep.DeviceAuthURL == ""
	}
	switch {
	case browser && ep.AuthURL == "":
		return usageError{err: errors.New("the browser flow needs the provider's --auth-url")}
	case !browser && ep.DeviceAuthURL == "":
		return usageError{err: errors.New("the device flow needs the provider's --device-url")}
	}

	// The keyring must work before the user goes through the
	// authorization, or its result could not be kept.
	secret, err := keyringLookup(oauthSecretKey(a), legacyKey("oauth-client-secret:", a))
	if err != nil {
		return err
	}
	if client.ClientSecret == "" {
		client.ClientSecret = secret
	}
	fmt.Fprintf(g.stderr, "popfetch: %s: authorizing popfetch for %s at %s\n", a.Name, a.Key(), client.Provider.Name)
	var tok *oauth2.Token
	if browser {
		tok, err = oauth.BrowserLogin(ctx, client, o.port, g.stderr)
	} else {
		tok, err = oauth.DeviceLogin(ctx, client, g.stderr)
	}
	if err != nil {
		return oauthError(g, a, fmt.Errorf("authorization failed: %w", err))
	}
	if err := keyringSet(oauthRefreshKey(a), tok.RefreshToken); err != nil {
		return err
	}
	if client.ClientSecret != "" {
		// From the environment, or adopted from the mailbox's old name.
		if err := keyringSet(oauthSecretKey(a), client.ClientSecret); err != nil {
			return err
		}
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "popfetch: %s: authorized; refresh token stored in the OS keyring (service %q, key %q)\n",
			a.Name, keyringService, oauthRefreshKey(a))
	}
	return nil
}

// oauthClient returns the OAuth2 client of an account: its provider and
// client ID, with the client secret stored at login, if any.
func oauthClient(a *config.Account) (*oauth.Client, error) {
	p, err := oauth.Lookup(a.OAuthProvider)
	if err != nil {
		return nil, &credentialError{account: a.Name, msg: err.Error()}
	}
	secret, err := keyringLookup(oauthSecretKey(a), legacyKey("oauth-client-secret:", a))
	if err != nil {
		return nil, err
	}
	return newOAuthClient(a, p, secret), nil
}

func newOAuthClient(a *config.Account, p oauth.Provider, secret string) *oauth.Client {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	return &oauth.Client{
		Provider:     p,
		ClientID:     a.OAuthClientID,
		ClientSecret: secret,
		HTTPClient:   &http.Client{Timeout: timeout},
	}
}

// oauthState is an account's built-in token source for one run: the
// access token is kept in memory, never on disk.
type oauthState struct {
	mu  sync.Mutex
	src *oauth.Source
}

// token returns an access token for the account, from the refresh token
// in the OS keyring. log gets -vv lines and warnings; nil: warnings go to
// standard error.
func (s *oauthState) token(ctx context.Context, g *globalOptions, a *config.Account, log *slog.Logger) (string, error) {
	s.mu.Lock()
	if s.src == nil {
		client, err := oauthClient(a)
		if err != nil {
			s.mu.Unlock()
			return "", err
		}
		if log == nil {
			log = newLogger(os.Stderr, slog.LevelWarn).With("account", a.Name)
		}
		s.src = &oauth.Source{Client: client, Store: keyringStore{legacy: legacyKey("oauth:", a)}, Key: oauthRefreshKey(a), Log: log}
	}
	src := s.src
	s.mu.Unlock()
	tok, err := src.Token(ctx)
	if err != nil {
		return "", oauthError(g, a, err)
	}
	return tok, nil
}

// oauthRefusedError is a refresh token (or an authorization) that the
// provider refused: the credential is no longer good, as when a server
// rejects a password (exit 77). Only `popfetch oauth login` helps.
type oauthRefusedError struct {
	login string // the command that logs in again
	err   error
}

func (e *oauthRefusedError) Error() string {
	return fmt.Sprintf("%v: authorize popfetch again with `%s`", e.err, e.login)
}

func (e *oauthRefusedError) Unwrap() error { return e.err }

// oauthError sorts the errors of the oauth package by what the user must
// do: log in (again), fix the configuration, or try later.
func oauthError(g *globalOptions, a *config.Account, err error) error {
	var pe *oauth.ProviderError
	login := g.commandFor(a, "oauth", "login")
	switch {
	case errors.Is(err, oauth.ErrNoRefreshToken):
		return &credentialError{account: a.Name, msg: fmt.Sprintf("no OAuth2 refresh token for %s in the OS keyring: "+
			"run `%s` once", a.Key(), login)}
	case errors.Is(err, oauth.ErrNoRefreshTokenIssued):
		return &credentialError{account: a.Name, msg: err.Error()}
	case errors.Is(err, oauth.ErrCodeExpired),
		errors.As(err, &pe) && (pe.Revoked() || pe.Code == "access_denied" || pe.Code == "expired_token"):
		return &oauthRefusedError{login: login, err: err}
	case errors.As(err, &pe) && !pe.Temporary():
		// invalid_client, unauthorized_client, invalid_scope, ...: the
		// client is not one the provider knows, or not like this.
		return &credentialError{account: a.Name, msg: fmt.Sprintf("%v: check oauth_provider and oauth_client_id "+
			"(and the client secret, given in %s at oauth login)", err, clientSecretEnv)}
	}
	return err
}

package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Client is popfetch registered with a provider.
type Client struct {
	Provider Provider
	ClientID string
	// ClientSecret is "" for a public client (Microsoft's, or any that
	// relies on PKCE); Google's installed-app clients have one.
	ClientSecret string
	// Scopes asked for at authorization; nil means Provider.Scopes.
	Scopes []string
	// HTTPClient makes the requests; nil means http.DefaultClient. Give
	// it a timeout.
	HTTPClient *http.Client
}

func (c *Client) config(redirectURL string) *oauth2.Config {
	ep := c.Provider.Endpoint
	if c.ClientSecret == "" {
		// A public client: the client ID goes in the body; HTTP Basic
		// with an empty password, which x/oauth2 would try first, is
		// refused by some providers.
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = c.Provider.Scopes
	}
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     ep,
		Scopes:       scopes,
		RedirectURL:  redirectURL,
	}
}

// context returns ctx carrying the HTTP client, as x/oauth2 wants it.
func (c *Client) context(ctx context.Context) context.Context {
	if c.HTTPClient == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, c.HTTPClient)
}

// Store keeps refresh tokens under keys; popfetch's is the OS keyring.
type Store interface {
	// Get returns the value of key, or an error wrapping ErrNotFound.
	Get(key string) (string, error)
	// Set stores value under key, replacing any.
	Set(key, value string) error
}

// ErrNotFound is a Store's "no such key".
var ErrNotFound = errors.New("not found")

// ErrNoRefreshToken means the Store holds no refresh token for the
// account: it was never authorized.
var ErrNoRefreshToken = errors.New("no OAuth2 refresh token stored")

// ProviderError is the provider's refusal of a token request, with the
// error code of RFC 6749 §5.2 (or RFC 8628 §3.5) when it gave one.
type ProviderError struct {
	URL         string // the endpoint
	Status      int    // the HTTP status
	Code        string // "invalid_grant", "invalid_client", ...; "" if none
	Description string // the provider's error_description, if any
}

func (e *ProviderError) Error() string {
	s := fmt.Sprintf("%s refused the request (HTTP %d", e.URL, e.Status)
	if e.Code != "" {
		s += ", " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s + ")"
}

// Revoked reports whether the grant itself was refused — the refresh
// token expired, was revoked or belongs to another client — so that only
// a new authorization helps (RFC 6749 §5.2 invalid_grant).
func (e *ProviderError) Revoked() bool { return e.Code == "invalid_grant" }

// Temporary reports whether trying later may help: the provider failed
// (HTTP 5xx) or asked to slow down, without refusing the grant.
func (e *ProviderError) Temporary() bool {
	return e.Code == "temporarily_unavailable" || e.Code == "server_error" ||
		(e.Code == "" && e.Status >= 500)
}

// providerError turns x/oauth2's error into a ProviderError, leaving out
// the response body: it is the provider's to word and is not shown.
func providerError(url string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	pe := &ProviderError{URL: url, Code: re.ErrorCode, Description: re.ErrorDescription}
	if re.Response != nil {
		pe.Status = re.Response.StatusCode
	}
	return pe
}

// Source gives the access tokens of one account, refreshed from the
// refresh token that Store keeps under Key. It keeps the access token in
// memory until it expires. Safe for concurrent use.
type Source struct {
	Client *Client
	Store  Store
	Key    string
	// Log receives, at debug level, when tokens are refreshed and, as a
	// warning, a rotated refresh token that could not be stored. Never a
	// token. Nil: silent.
	Log *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time

	mu  sync.Mutex
	tok *oauth2.Token
}

// Token returns a valid access token. The errors are ErrNoRefreshToken
// (wrapped) when the Store holds none, a *ProviderError when the provider
// refuses (Revoked: authorize again), the Store's errors, and network
// errors.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	// Like x/oauth2's reuse, a token counts as expired a little early, so
	// it does not expire between here and the server's check.
	if s.tok != nil && (s.tok.Expiry.IsZero() || now().Add(30*time.Second).Before(s.tok.Expiry)) {
		return s.tok.AccessToken, nil
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt, err := s.Store.Get(s.Key)
	if errors.Is(err, ErrNotFound) || (err == nil && rt == "") {
		return "", fmt.Errorf("%w under %q", ErrNoRefreshToken, s.Key)
	}
	if err != nil {
		return "", fmt.Errorf("reading the refresh token: %w", err)
	}
	tokenURL := s.Client.Provider.Endpoint.TokenURL
	log.Debug("refreshing the OAuth2 access token", "url", tokenURL)
	cfg := s.Client.config("")
	// RFC 6749 §6: grant_type=refresh_token. x/oauth2 keeps the old
	// refresh token in the answer when the provider sends none.
	tok, err := cfg.TokenSource(s.Client.context(ctx), &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return "", fmt.Errorf("refreshing the access token: %w", providerError(tokenURL, err))
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		// The provider rotated the refresh token (RFC 6749 §6, OAuth 2.1
		// §4.3.1): the old one may be dead from now on.
		if err := s.Store.Set(s.Key, tok.RefreshToken); err != nil {
			log.Warn("the provider issued a new refresh token, which could not be stored; "+
				"the next run may need `popfetch oauth login`", "error", err)
		} else {
			log.Debug("stored the provider's new refresh token")
		}
	}
	if !tok.Expiry.IsZero() {
		log.Debug("got an OAuth2 access token", "expires", tok.Expiry.Format(time.RFC3339))
	}
	s.tok = tok
	return tok.AccessToken, nil
}

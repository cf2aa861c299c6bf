package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/popfetch/popfetch/cmd/internal/termsafe"
)

// ErrNoRefreshTokenIssued means an authorization succeeded but the
// provider gave no refresh token, so popfetch could not refresh later.
var ErrNoRefreshTokenIssued = errors.New("the provider issued no refresh token (does the client ask for offline access?)")

// ErrCodeExpired means the user did not authorize popfetch before the
// device flow's code expired.
var ErrCodeExpired = errors.New("the code expired before popfetch was authorized")

// DeviceLogin runs the device authorization grant (RFC 8628): it asks the
// provider for a user code, tells the user on w where to enter it, and
// polls until the user has authorized popfetch, refused, the code expired,
// or ctx ends. It returns the token, which has a refresh token.
func DeviceLogin(ctx context.Context, c *Client, w io.Writer) (*oauth2.Token, error) {
	ep := c.Provider.Endpoint
	if ep.DeviceAuthURL == "" {
		return nil, errors.New("the device authorization endpoint of the provider is not known")
	}
	cfg := c.config("")
	ctx = c.context(ctx)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking for a device code: %w", providerError(ep.DeviceAuthURL, err))
	}
	// RFC 8628 §3.3: show the verification URI and the user code (not the
	// device code, which is the secret between popfetch and the provider),
	// escaped: they are the provider's words, for a terminal.
	fmt.Fprintf(w, "popfetch: to authorize popfetch, open %s\n", termsafe.Escape(da.VerificationURI))
	fmt.Fprintf(w, "popfetch: and enter the code %s\n", termsafe.Escape(da.UserCode))
	if da.VerificationURIComplete != "" && da.VerificationURIComplete != da.VerificationURI {
		fmt.Fprintf(w, "popfetch: (or open %s, which has the code in it)\n", termsafe.Escape(da.VerificationURIComplete))
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(w, "popfetch: waiting until %s for the authorization…\n", da.Expiry.Format("15:04:05"))
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// DeviceAccessToken stops polling when the code expires.
			return nil, ErrCodeExpired
		}
		return nil, fmt.Errorf("waiting for the authorization: %w", providerError(ep.TokenURL, err))
	}
	if tok.RefreshToken == "" {
		return nil, ErrNoRefreshTokenIssued
	}
	return tok, nil
}

// BrowserLogin runs the authorization code grant with PKCE (RFC 7636) for
// a native app (RFC 8252): it listens on 127.0.0.1 (port 0: any free
// port; RFC 8252 §7.3), tells the user on w which URL to open in a
// browser, waits for the browser's redirect with the code, and exchanges
// it. It returns the token, which has a refresh token.
func BrowserLogin(ctx context.Context, c *Client, port int, w io.Writer) (*oauth2.Token, error) {
	ep := c.Provider.Endpoint
	if ep.AuthURL == "" {
		return nil, errors.New("the authorization endpoint of the provider is not known")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listening for the browser's redirect: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/"
	cfg := c.config(redirect)
	state := randomString()
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, c.Provider.AuthParams...)
	authURL := cfg.AuthCodeURL(state, opts...)

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.URL.Path != "/" || q.Get("state") != state {
				// Not the redirect (a favicon, a stray request): the
				// state, known only to the browser we sent, is the proof.
				http.NotFound(rw, r)
				return
			}
			var res result
			switch {
			case q.Get("error") != "":
				// RFC 6749 §4.1.2.1
				res.err = &ProviderError{URL: ep.AuthURL, Status: http.StatusOK, Code: q.Get("error"), Description: q.Get("error_description")}
			case q.Get("code") == "":
				res.err = errors.New("the browser's redirect carried no code")
			default:
				res.code = q.Get("code")
			}
			rw.Header().Set("Content-Type", "text/html; charset=utf-8")
			if res.err != nil {
				fmt.Fprintf(rw, "<p>popfetch: the authorization failed: %s</p>\n", html.EscapeString(res.err.Error()))
			} else {
				fmt.Fprintf(rw, "<p>popfetch: authorized; you may close this window.</p>\n")
			}
			rw.(http.Flusher).Flush()
			select {
			case done <- res:
			default:
			}
		}),
	}
	go srv.Serve(ln)
	defer func() {
		// Let the browser have its page: Shutdown waits for the handler.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}()

	fmt.Fprintf(w, "popfetch: to authorize popfetch, open this URL in a browser on this machine:\n\n    %s\n\n", authURL)
	fmt.Fprintf(w, "popfetch: waiting for the browser at %s…\n", redirect)
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := cfg.Exchange(c.context(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("exchanging the code: %w", providerError(ep.TokenURL, err))
	}
	if tok.RefreshToken == "" {
		return nil, ErrNoRefreshTokenIssued
	}
	return tok, nil
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

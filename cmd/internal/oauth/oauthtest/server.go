// Package oauthtest is an OAuth2 authorization server for tests, on
// loopback over plain HTTP (net/http/httptest): a token endpoint
// (authorization_code with PKCE, device_code, refresh_token grants;
// RFC 6749, 7636, 8628), a device authorization endpoint, and an
// authorization endpoint that approves at once by redirecting back with a
// code, as a user clicking "Allow" would.
//
// It does not import testing. Tokens are random; the server remembers
// which refresh tokens are good and can revoke them.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// UserCode is the user code of every device authorization.
const UserCode = "WDJB-MJHT"

// Server is the authorization server. Set the fields before Start.
type Server struct {
	// ClientID is the only client the server knows.
	ClientID string
	// ClientSecret, if set, must come with every token request (in the
	// body or as HTTP Basic); if "", the client is public and sends none.
	ClientSecret string
	// AccessTTL is the lifetime of access tokens (expires_in); 0: one hour.
	AccessTTL time.Duration
	// Rotate makes every refresh issue a new refresh token and revoke the
	// one used.
	Rotate bool
	// PendingPolls is how many device-flow polls are answered
	// authorization_pending before the user approves.
	PendingPolls int
	// Deny makes the user refuse: access_denied to the device flow and in
	// the browser's redirect.
	Deny bool
	// OmitRefreshToken makes authorizations issue no refresh token.
	OmitRefreshToken bool
	// OnAccessToken, if set, is called with each access token issued, as
	// the mail server must learn it (pop3test.Server.SetToken).
	OnAccessToken func(token string)

	srv *httptest.Server

	mu        sync.Mutex
	refresh   map[string]bool // refresh token -> still good
	codes     map[string]authCode
	devices   map[string]int // device code -> polls so far
	refreshes int
	requests  []url.Values
}

type authCode struct {
	challenge, redirect string
}

// Start serves on 127.0.0.1 on a free port.
func (s *Server) Start() {
	s.refresh = map[string]bool{}
	s.codes = map[string]authCode{}
	s.devices = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.device)
	mux.HandleFunc("GET /authorize", s.authorize)
	s.srv = httptest.NewServer(mux)
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// DeviceURL is the device authorization endpoint.
func (s *Server) DeviceURL() string { return s.srv.URL + "/device" }

// AuthURL is the authorization endpoint.
func (s *Server) AuthURL() string { return s.srv.URL + "/authorize" }

// IssueRefreshToken makes a good refresh token, as an earlier
// authorization would have.
func (s *Server) IssueRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + random()
	s.refresh[rt] = true
	return rt
}

// Valid reports whether rt is a refresh token the server takes.
func (s *Server) Valid(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh[rt]
}

// RevokeAll revokes every refresh token, as a user withdrawing consent.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rt := range s.refresh {
		s.refresh[rt] = false
	}
}

// Refreshes counts the successful refresh_token grants.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// Requests returns the forms of all token and device requests so far,
// with the client's Basic credentials as "basic_client_id" and
// "basic_client_secret".
func (s *Server) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.requests...)
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// oauthError writes an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// form parses a request and records it.
func (s *Server) form(r *http.Request) url.Values {
	r.ParseForm()
	f := url.Values{}
	for k, v := range r.PostForm {
		f[k] = v
	}
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		f.Set("basic_client_id", id)
		f.Set("basic_client_secret", secret)
	}
	s.mu.Lock()
	s.requests = append(s.requests, f)
	s.mu.Unlock()
	return f
}

// clientOK checks the client's identification (RFC 6749 §2.3).
func (s *Server) clientOK(f url.Values) bool {
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if f.Has("basic_client_id") {
		id, secret = f.Get("basic_client_id"), f.Get("basic_client_secret")
	}
	return id == s.ClientID && secret == s.ClientSecret
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	f := s.form(r)
	if f.Get("client_id") != s.ClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	dc := "dc-" + random()
	s.mu.Lock()
	s.devices[dc] = 0
	s.mu.Unlock()
	// RFC 8628 §3.2
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":      dc,
		"user_code":        UserCode,
		"verification_uri": s.srv.URL + "/activate",
		"expires_in":       600,
		"interval":         1,
	})
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" ||
		q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if s.Deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "the user said no")
	} else {
		code := "code-" + random()
		s.mu.Lock()
		s.codes[code] = authCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		s.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	f := s.form(r)
	if !s.clientOK(f) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Get("grant_type") {
	case "authorization_code":
		c, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok || c.redirect != f.Get("redirect_uri"):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "bad code")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			// RFC 7636 §4.6
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		default:
			s.issue(w, !s.OmitRefreshToken)
		}
	case "urn:ietf:params:oauth:grant-type:device_code":
		dc := f.Get("device_code")
		polls, ok := s.devices[dc]
		switch {
		case !ok:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device code")
		case s.Deny:
			delete(s.devices, dc)
			oauthError(w, http.StatusBadRequest, "access_denied", "the user said no")
		case polls < s.PendingPolls:
			s.devices[dc] = polls + 1
			oauthError(w, http.StatusBadRequest, "authorization_pending", "")
		default:
			delete(s.devices, dc)
			s.issue(w, !s.OmitRefreshToken)
		}
	case "refresh_token":
		rt := f.Get("refresh_token")
		if !s.refresh[rt] {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
			return
		}
		s.refreshes++
		if s.Rotate {
			s.refresh[rt] = false
		}
		s.issue(w, s.Rotate)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
	}
}

// issue answers with a new access token, and a new refresh token if
// withRefresh. s.mu is held.
func (s *Server) issue(w http.ResponseWriter, withRefresh bool) {
	ttl := s.AccessTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	at := "at-" + random()
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
	}
	if withRefresh {
		rt := "rt-" + random()
		s.refresh[rt] = true
		resp["refresh_token"] = rt
	}
	if s.OnAccessToken != nil {
		s.OnAccessToken(at)
	}
	writeJSON(w, http.StatusOK, resp)
}

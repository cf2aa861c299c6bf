package oauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/oauth/oauthtest"
)

// memStore is a Store in memory.
type memStore struct {
	mu  sync.Mutex
	m   map[string]string
	err error // returned by every call when set
}

func (s *memStore) Get(key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	v, ok := s.m[key]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (s *memStore) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[key] = value
	return nil
}

func startServer(t *testing.T, configure func(*oauthtest.Server)) *oauthtest.Server {
	t.Helper()
	s := &oauthtest.Server{ClientID: "popfetch-test"}
	if configure != nil {
		configure(s)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func testClient(t *testing.T, s *oauthtest.Server) *Client {
	t.Helper()
	p, err := Lookup(s.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	p.Endpoint.DeviceAuthURL = s.DeviceURL()
	p.Endpoint.AuthURL = s.AuthURL()
	return &Client{Provider: p, ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		Scopes: []string{"mail"}, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		spec, token, device, auth string
		scopes                    int
		browser                   bool
	}{
		{"google", "https://oauth2.googleapis.com/token", "https://oauth2.googleapis.com/device/code", "https://accounts.google.com/o/oauth2/auth", 1, true},
		{"microsoft", "https://login.microsoftonline.com/common/oauth2/v2.0/token",
			"https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
			"https://login.microsoftonline.com/common/oauth2/v2.0/authorize", 2, false},
		{"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize", 2, false},
		{"https://auth.example.org/oauth/token", "https://auth.example.org/oauth/token", "", "", 0, false},
		{"http://127.0.0.1:8080/token", "http://127.0.0.1:8080/token", "", "", 0, false},
	} {
		p, err := Lookup(tc.spec)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.spec, err)
			continue
		}
		if p.Endpoint.TokenURL != tc.token || p.Endpoint.DeviceAuthURL != tc.device || p.Endpoint.AuthURL != tc.auth ||
			len(p.Scopes) != tc.scopes || p.Browser != tc.browser {
			t.Errorf("Lookup(%q) = %+v", tc.spec, p)
		}
	}
	for _, bad := range []string{"", "yahoo", "ftp://example.org/token", "https:///token"} {
		if _, err := Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
	if got := Microsoft.Scopes; got[0] != "https://outlook.office.com/POP.AccessAsUser.All" || got[1] != "offline_access" {
		t.Errorf("Microsoft scopes %q", got)
	}
}

func TestSourceRefreshesOnceAndKeepsTheAccessToken(t *testing.T) {
	var issued []string
	s := startServer(t, func(s *oauthtest.Server) {
		s.OnAccessToken = func(at string) { issued = append(issued, at) }
	})
	store := &memStore{}
	rt := s.IssueRefreshToken()
	store.Set("oauth:u@h", rt)
	src := &Source{Client: testClient(t, s), Store: store, Key: "oauth:u@h"}
	for i := 0; i < 3; i++ {
		at, err := src.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(issued) != 1 || at != issued[0] {
			t.Fatalf("token %q, issued %q", at, issued)
		}
	}
	if n := s.Refreshes(); n != 1 {
		t.Errorf("%d refreshes, want 1: the access token is kept in memory", n)
	}
	if v, _ := store.Get("oauth:u@h"); v != rt {
		t.Errorf("refresh token changed to %q without rotation", v)
	}
	// A public client: client_id in the body, no secret, no Basic.
	req := s.Requests()[0]
	if req.Get("grant_type") != "refresh_token" || req.Get("client_id") != s.ClientID ||
		req.Has("client_secret") || req.Has("basic_client_id") {
		t.Errorf("refresh request %v", req)
	}
}

func TestSourceRefreshesAnExpiringToken(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.AccessTTL = 20 * time.Second })
	store := &memStore{}
	store.Set("k", s.IssueRefreshToken())
	src := &Source{Client: testClient(t, s), Store: store, Key: "k"}
	a1, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a2, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 20s is within the margin before expiry: each call refreshes.
	if a1 == a2 || s.Refreshes() != 2 {
		t.Errorf("tokens %q %q after %d refreshes", a1, a2, s.Refreshes())
	}
}

func TestSourceStoresARotatedRefreshToken(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.Rotate = true; s.AccessTTL = time.Second })
	store := &memStore{}
	old := s.IssueRefreshToken()
	store.Set("k", old)
	src := &Source{Client: testClient(t, s), Store: store, Key: "k"}
	for i := 0; i < 3; i++ {
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		now, _ := store.Get("k")
		if now == old || !s.Valid(now) || s.Valid(old) {
			t.Fatalf("refresh %d: stored %q (valid %v), was %q", i, now, s.Valid(now), old)
		}
		old = now
	}
}

func TestSourceRotationNotStoredWarns(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.Rotate = true })
	store := &failingSetStore{memStore{}}
	store.memStore.Set("k", s.IssueRefreshToken())
	var log bytes.Buffer
	src := &Source{Client: testClient(t, s), Store: store, Key: "k",
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	at, err := src.Token(context.Background())
	if err != nil || at == "" {
		t.Fatalf("token %q, %v: the access token is good even if the new refresh token is not stored", at, err)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "oauth login") {
		t.Errorf("no warning:\n%s", log.String())
	}
	if strings.Contains(log.String(), at) || strings.Contains(log.String(), "rt-") {
		t.Errorf("a token was logged:\n%s", log.String())
	}
}

type failingSetStore struct{ memStore }

func (s *failingSetStore) Set(string, string) error { return errors.New("keyring locked") }

func TestSourceRevoked(t *testing.T) {
	s := startServer(t, nil)
	store := &memStore{}
	store.Set("k", s.IssueRefreshToken())
	s.RevokeAll()
	src := &Source{Client: testClient(t, s), Store: store, Key: "k"}
	_, err := src.Token(context.Background())
	var pe *ProviderError
	if !errors.As(err, &pe) || !pe.Revoked() || pe.Temporary() || pe.Status != http.StatusBadRequest {
		t.Fatalf("error %v (%#v), want a revoked ProviderError", err, pe)
	}
	if !strings.Contains(err.Error(), "expired or revoked") {
		t.Errorf("error %q does not give the provider's reason", err)
	}
}

func TestSourceNoRefreshToken(t *testing.T) {
	s := startServer(t, nil)
	src := &Source{Client: testClient(t, s), Store: &memStore{}, Key: "oauth:u@h"}
	if _, err := src.Token(context.Background()); !errors.Is(err, ErrNoRefreshToken) {
		t.Fatalf("error %v, want ErrNoRefreshToken", err)
	}
	if len(s.Requests()) != 0 {
		t.Error("asked the provider without a refresh token")
	}
	broken := &memStore{err: errors.New("no secret service")}
	src = &Source{Client: testClient(t, s), Store: broken, Key: "k"}
	if _, err := src.Token(context.Background()); err == nil || errors.Is(err, ErrNoRefreshToken) || !errors.Is(err, broken.err) {
		t.Fatalf("error %v, want the store's", err)
	}
}

func TestSourceClientSecret(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.ClientSecret = "shh" })
	store := &memStore{}
	store.Set("k", s.IssueRefreshToken())
	c := testClient(t, s)
	c.ClientSecret = ""
	_, err := (&Source{Client: c, Store: store, Key: "k"}).Token(context.Background())
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "invalid_client" || pe.Revoked() {
		t.Fatalf("without the secret: %v", err)
	}
	c.ClientSecret = "shh"
	if _, err := (&Source{Client: c, Store: store, Key: "k"}).Token(context.Background()); err != nil {
		t.Fatalf("with the secret: %v", err)
	}
}

func TestSourceProviderDown(t *testing.T) {
	s := startServer(t, nil)
	store := &memStore{}
	store.Set("k", "rt")
	c := testClient(t, s)
	c.Provider.Endpoint.TokenURL = s.URL() + "/nowhere" // 404 from the mux
	_, err := (&Source{Client: c, Store: store, Key: "k"}).Token(context.Background())
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Revoked() || pe.Status != http.StatusNotFound {
		t.Fatalf("error %v", err)
	}
	s.Close()
	c.Provider.Endpoint.TokenURL = s.TokenURL()
	_, err = (&Source{Client: c, Store: store, Key: "k"}).Token(context.Background())
	if err == nil || errors.As(err, &pe) {
		t.Fatalf("error %v, want a network error", err)
	}
}

func TestProviderErrorTemporary(t *testing.T) {
	for _, tc := range []struct {
		e    ProviderError
		temp bool
	}{
		{ProviderError{Status: 502}, true},
		{ProviderError{Status: 503, Code: "temporarily_unavailable"}, true},
		{ProviderError{Status: 400, Code: "invalid_grant"}, false},
		{ProviderError{Status: 401, Code: "invalid_client"}, false},
	} {
		if tc.e.Temporary() != tc.temp {
			t.Errorf("%v: Temporary() = %v", &tc.e, !tc.temp)
		}
	}
}

// linesOf returns a writer whose lines arrive on the channel.
func linesOf(t *testing.T) (io.Writer, <-chan string) {
	pr, pw := io.Pipe()
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	t.Cleanup(func() { pw.Close() })
	return pw, ch
}

func TestDeviceLogin(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.PendingPolls = 1 })
	var out bytes.Buffer
	tok, err := DeviceLogin(context.Background(), testClient(t, s), &out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || !s.Valid(tok.RefreshToken) || tok.AccessToken == "" {
		t.Fatalf("token %+v", tok)
	}
	if !strings.Contains(out.String(), s.URL()+"/activate") || !strings.Contains(out.String(), oauthtest.UserCode) {
		t.Errorf("instructions lack the URL or the code:\n%s", out.String())
	}
	var polls int
	for _, r := range s.Requests() {
		if r.Has("device_code") {
			polls++
			if strings.Contains(out.String(), r.Get("device_code")) {
				t.Errorf("the device code was shown:\n%s", out.String())
			}
		} else if r.Get("scope") != "mail" || r.Get("client_id") != s.ClientID {
			t.Errorf("device request %v", r)
		}
	}
	if polls != 2 {
		t.Errorf("%d polls, want 2 (pending, then approved)", polls)
	}
}

func TestDeviceLoginDenied(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.Deny = true })
	_, err := DeviceLogin(context.Background(), testClient(t, s), io.Discard)
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "access_denied" {
		t.Fatalf("error %v", err)
	}
}

func TestDeviceLoginNoRefreshToken(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.OmitRefreshToken = true })
	if _, err := DeviceLogin(context.Background(), testClient(t, s), io.Discard); !errors.Is(err, ErrNoRefreshTokenIssued) {
		t.Fatalf("error %v", err)
	}
}

func TestDeviceLoginUnknownEndpoint(t *testing.T) {
	s := startServer(t, nil)
	c := testClient(t, s)
	c.Provider.Endpoint.DeviceAuthURL = ""
	if _, err := DeviceLogin(context.Background(), c, io.Discard); err == nil {
		t.Fatal("no error")
	}
}

// browse plays the browser: it opens the URL that BrowserLogin prints,
// which the test provider answers by redirecting to the loopback
// listener, and returns what the listener said.
func browse(t *testing.T, lines <-chan string, tamper func(*url.URL)) <-chan string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		defer close(done)
		for line := range lines {
			u, err := url.Parse(strings.TrimSpace(line))
			if err != nil || u.Scheme != "http" || !strings.HasPrefix(strings.TrimSpace(line), "http") {
				continue
			}
			if tamper != nil {
				tamper(u)
			}
			resp, err := http.Get(u.String())
			if err != nil {
				done <- "error: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- string(b)
			return
		}
	}()
	return done
}

func TestBrowserLogin(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.ClientSecret = "installed-app-secret" })
	w, lines := linesOf(t)
	page := browse(t, lines, nil)
	c := testClient(t, s)
	tok, err := BrowserLogin(context.Background(), c, 0, w)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Valid(tok.RefreshToken) {
		t.Fatalf("token %+v", tok)
	}
	if p := <-page; !strings.Contains(p, "authorized") {
		t.Errorf("the browser was told %q", p)
	}
	req := s.Requests()[0]
	if req.Get("grant_type") != "authorization_code" || req.Get("code_verifier") == "" ||
		!strings.HasPrefix(req.Get("redirect_uri"), "http://127.0.0.1:") {
		t.Errorf("token request %v", req)
	}
}

func TestBrowserLoginWrongStateIsIgnored(t *testing.T) {
	s := startServer(t, nil)
	w, lines := linesOf(t)
	// A forged redirect to the listener, with a state the listener did not
	// issue, is refused and does not end the wait.
	page := browse(t, lines, func(u *url.URL) {
		q := u.Query()
		redirect, _ := url.Parse(q.Get("redirect_uri"))
		rq := redirect.Query()
		rq.Set("code", "forged")
		rq.Set("state", "forged")
		redirect.RawQuery = rq.Encode()
		*u = *redirect
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := BrowserLogin(ctx, testClient(t, s), 0, w)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the wait to go on until the deadline", err)
	}
	if p := <-page; !strings.Contains(p, "not found") {
		t.Errorf("the forged redirect got %q", p)
	}
	if len(s.Requests()) != 0 {
		t.Error("a forged code was exchanged")
	}
}

func TestBrowserLoginDenied(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.Deny = true })
	w, lines := linesOf(t)
	page := browse(t, lines, nil)
	_, err := BrowserLogin(context.Background(), testClient(t, s), 0, w)
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "access_denied" {
		t.Fatalf("error %v", err)
	}
	if p := <-page; !strings.Contains(p, "failed") {
		t.Errorf("the browser was told %q", p)
	}
}

// The verification URI and user code are the provider's words, shown on
// a terminal: escaped, never able to drive it.
func TestDeviceLoginEscapesProviderText(t *testing.T) {
	s := startServer(t, func(s *oauthtest.Server) { s.Deny = true })
	mux := http.NewServeMux()
	mux.HandleFunc("/device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"device_code": "dc", "user_code": "\x1b]0;pwned\x07CODE",
			"verification_uri":          "https://x.example/\x1b[2J",
			"verification_uri_complete": "https://x.example/\u009b31m",
			"expires_in":                60, "interval": 1,
		})
	})
	hostile := httptest.NewServer(mux)
	t.Cleanup(hostile.Close)
	c := testClient(t, s)
	c.Provider.Endpoint.DeviceAuthURL = hostile.URL + "/device"
	var out bytes.Buffer
	DeviceLogin(context.Background(), c, &out) // denied by s
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\u009b") || !strings.Contains(got, `\x1b]0;pwned\x07CODE`) ||
		!strings.Contains(got, `https://x.example/\x1b[2J`) || !strings.Contains(got, `https://x.example/\u009b31m`) {
		t.Errorf("DeviceLogin printed:\n%q", got)
	}
}

package cmd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/popfetch/popfetch/cmd/internal/oauth/oauthtest"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

// oauthEnv is a cliEnv with an OAuth2 provider on loopback whose access
// tokens the POP3 server accepts for user, and the account "mail".
type oauthEnv struct {
	*cliEnv
	idp  *oauthtest.Server
	user string
	acct *cliAccount
	mb   *pop3test.Mailbox

	mu     sync.Mutex
	issued []string // access tokens
}

// newOAuthEnv starts a provider (configured by configure) and a POP3
// server offering mechanisms, and configures the account "mail" of user
// with oauth_provider set to the provider's token URL.
func newOAuthEnv(t *testing.T, user string, configure func(*oauthtest.Server), mechanisms ...string) *oauthEnv {
	t.Helper()
	e := &oauthEnv{cliEnv: newCLIEnv(t, serverSetup(func(s *pop3test.Server) { s.Mechanisms = mechanisms })), user: user}
	e.idp = &oauthtest.Server{ClientID: "popfetch-test-client"}
	if configure != nil {
		configure(e.idp)
	}
	e.idp.OnAccessToken = func(at string) {
		e.srv.SetToken(user, at)
		e.mu.Lock()
		e.issued = append(e.issued, at)
		e.mu.Unlock()
	}
	e.idp.Start()
	t.Cleanup(e.idp.Close)
	e.acct = e.addAccount(&cliAccount{name: "mail", user: user,
		extra: fmt.Sprintf("oauth_provider = %q\noauth_client_id = %q", e.idp.TokenURL(), e.idp.ClientID)}, "not-the-password")
	e.mb = e.acct.mb
	return e
}

// accessTokens returns the access tokens the provider issued.
func (e *oauthEnv) accessTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

func (e *oauthEnv) refreshKey() string { return "oauth:" + e.key(e.acct) }

// storedRefreshToken returns what the keyring holds for the account.
func (e *oauthEnv) storedRefreshToken() string {
	e.t.Helper()
	rt, err := keyring.Get("popfetch", e.refreshKey())
	if err != nil {
		e.t.Fatalf("keyring %s: %v", e.refreshKey(), err)
	}
	return rt
}

// authCommands returns the AUTH commands the POP3 server received.
func (e *oauthEnv) authCommands() []string {
	var out []string
	for _, l := range e.srv.Received() {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH ") {
			out = append(out, l)
		}
	}
	return out
}

// TestOAuthLoginDeviceThenFetch: oauth login runs the device flow against
// the provider and stores the refresh token; fetch refreshes an access
// token from it and logs in with XOAUTH2 — with a real Secret Service.
func TestOAuthLoginDeviceThenFetch(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newOAuthEnv(t, "erin@example.org", func(s *oauthtest.Server) { s.PendingPolls = 1 }, "XOAUTH2")
	_, errs := e.mustRun(0, "oauth", "login", "--device-url", e.idp.DeviceURL(), "--scope", "pop", "mail")
	for _, want := range []string{e.idp.URL() + "/activate", oauthtest.UserCode, `key "` + e.refreshKey() + `"`} {
		if !strings.Contains(errs, want) {
			t.Errorf("oauth login did not say %q:\n%s", want, errs)
		}
	}
	rt := e.storedRefreshToken()
	if !e.idp.Valid(rt) {
		t.Fatalf("stored %q, not a refresh token the provider issued", rt)
	}
	if strings.Contains(errs, rt) {
		t.Errorf("oauth login showed the refresh token:\n%s", errs)
	}

	e.mb.Add(testMessage(1))
	e.mustRun(0, "fetch")
	if n := e.delivered(e.acct); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
	if auth := e.authCommands(); len(auth) != 1 || !strings.HasPrefix(auth[0], "AUTH XOAUTH2 ") {
		t.Errorf("AUTH commands %q, want one XOAUTH2", auth)
	}
	if n := e.idp.Refreshes(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// TestOAuthFetchOAuthBearerAndRotation: auto picks OAUTHBEARER; a refresh
// token the provider rotates is stored, and the old one is never used
// again; -vv traces no token.
func TestOAuthFetchOAuthBearerAndRotation(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newOAuthEnv(t, "frank", func(s *oauthtest.Server) { s.Rotate = true; s.AccessTTL = time.Second })
	first := e.idp.IssueRefreshToken()
	if err := keyring.Set("popfetch", e.refreshKey(), first); err != nil {
		t.Fatal(err)
	}
	seen := []string{first}
	for i := 1; i <= 3; i++ {
		e.mb.Add(testMessage(i))
		_, errs := e.mustRun(0, "-vv", "fetch")
		rt := e.storedRefreshToken()
		for _, old := range seen {
			if rt == old {
				t.Fatalf("fetch %d: the keyring still holds an old refresh token", i)
			}
		}
		if !e.idp.Valid(rt) {
			t.Fatalf("fetch %d: the stored refresh token is not good", i)
		}
		seen = append(seen, rt)
		for _, secret := range append(append([]string(nil), seen...), e.accessTokens()...) {
			if strings.Contains(errs, secret) {
				t.Fatalf("fetch %d: -vv shows a token:\n%s", i, errs)
			}
		}
		if !strings.Contains(errs, "AUTH OAUTHBEARER") {
			t.Errorf("fetch %d: no trace of the login:\n%s", i, errs)
		}
	}
	if n := e.delivered(e.acct); n != 3 {
		t.Errorf("%d messages delivered, want 3", n)
	}
	for _, a := range e.authCommands() {
		if !strings.HasPrefix(a, "AUTH OAUTHBEARER ") {
			t.Errorf("AUTH command %q, want OAUTHBEARER", a)
		}
	}
}

// TestOAuthRevoked: a refresh token the provider refuses stops the account
// with exit 77 and tells to run oauth login; none stored at all is exit 78.
func TestOAuthRevoked(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newOAuthEnv(t, "grace", nil)
	e.mb.Add(testMessage(1))

	_, errs := e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "popfetch: mail: error: no OAuth2 refresh token for "+e.key(e.acct)) ||
		!strings.Contains(errs, "popfetch -c "+e.config+" oauth login mail") {
		t.Errorf("fetch before oauth login said:\n%s", errs)
	}

	if err := keyring.Set("popfetch", e.refreshKey(), e.idp.IssueRefreshToken()); err != nil {
		t.Fatal(err)
	}
	e.idp.RevokeAll()
	_, errs = e.mustRun(exitNoPerm, "fetch")
	if !strings.Contains(errs, "invalid_grant") || !strings.Contains(errs, "expired or revoked") ||
		!strings.Contains(errs, "authorize popfetch again with `popfetch -c "+e.config+" oauth login mail`") {
		t.Errorf("fetch with a revoked token said:\n%s", errs)
	}
	if len(e.authCommands()) != 0 {
		t.Error("popfetch tried to log in without a token")
	}
	if n := e.delivered(e.acct); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}

// TestOAuthClientSecret: a client with a secret gets it from the
// environment at oauth login, which stores it for the refreshes.
func TestOAuthClientSecret(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newOAuthEnv(t, "heidi", func(s *oauthtest.Server) { s.ClientSecret = "installed-app-secret" })
	e.mb.Add(testMessage(1))

	_, errs := e.mustRun(exitConfig, "oauth", "login", "--device-url", e.idp.DeviceURL(), "mail")
	if !strings.Contains(errs, "invalid_client") || !strings.Contains(errs, clientSecretEnv) {
		t.Errorf("oauth login without the secret said:\n%s", errs)
	}
	t.Setenv(clientSecretEnv, "installed-app-secret")
	e.mustRun(0, "oauth", "login", "--device-url", e.idp.DeviceURL(), "mail")
	if s, err := keyring.Get("popfetch", "oauth-client-secret:"+e.key(e.acct)); err != nil || s != "installed-app-secret" {
		t.Fatalf("keyring holds the secret %q, %v", s, err)
	}
	t.Setenv(clientSecretEnv, "")
	e.mustRun(0, "fetch")
	if n := e.delivered(e.acct); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
}

// TestOAuthLoginBrowser: the loopback flow with PKCE, the test playing the
// browser that follows the printed URL.
func TestOAuthLoginBrowser(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newOAuthEnv(t, "ivan", nil)
	pr, pw := io.Pipe()
	var (
		wg     sync.WaitGroup
		stderr strings.Builder
		page   string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			if u := strings.TrimSpace(line); strings.HasPrefix(u, e.idp.AuthURL()) && page == "" {
				resp, err := http.Get(u)
				if err != nil {
					page = err.Error()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page = string(b)
			}
		}
	}()
	code := Main(context.Background(), []string{"popfetch", "-c", e.config, "oauth", "login", "--auth-url", e.idp.AuthURL(), "mail"}, io.Discard, pw)
	pw.Close()
	wg.Wait()
	if code != 0 {
		t.Fatalf("oauth login: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(page, "authorized") {
		t.Errorf("the browser was shown %q", page)
	}
	if !e.idp.Valid(e.storedRefreshToken()) {
		t.Error("the stored refresh token is not good")
	}
}

// TestOAuthTokenCommandFails: a failing oauth_token_command is a clear
// configuration error, and nothing is sent to the server.
func TestOAuthTokenCommandFails(t *testing.T) {
	e := newCLIEnv(t)
	e.addAccount(&cliAccount{name: "tc", user: "judy", extra: `oauth_token_command = "echo token-helper broke >&2; exit 3"`}, "pw").mb.Add(testMessage(1))
	_, errs := e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, `popfetch: tc: error: oauth_token_command "echo token-helper broke >&2; exit 3" failed: exit status 3`) {
		t.Errorf("fetch said:\n%s", errs)
	}
	for _, l := range e.srv.Received() {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
			t.Errorf("sent %q without a token", l)
		}
	}
}

// TestOAuthLoginUsage: mistakes found before any keyring or network use.
func TestOAuthLoginUsage(t *testing.T) {
	e := newCLIEnv(t)
	e.addAccount(&cliAccount{name: "plain", user: "kim", password: "pw"}, "pw")
	e.addAccount(&cliAccount{name: "custom", user: "lee", extra: `oauth_provider = "https://auth.example.org/token"` + "\n" + `oauth_client_id = "id"`}, "pw")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"oauth", "login"}, exitUsage, "oauth login takes one ACCOUNT"},
		{[]string{"oauth", "login", "plain", "custom"}, exitUsage, "oauth login takes one ACCOUNT"},
		{[]string{"oauth", "login", "nosuch"}, exitUsage, `unknown account "nosuch"`},
		{[]string{"oauth", "login", "plain"}, exitConfig, `account "plain" has no oauth_provider`},
		{[]string{"oauth", "login", "custom"}, exitUsage, "give the provider's --device-url (device flow) or --auth-url (browser flow)"},
		{[]string{"oauth", "login", "--device", "--auth-url", "https://auth.example.org/authorize", "custom"}, exitUsage, "the device flow needs the provider's --device-url"},
		{[]string{"oauth", "login", "--browser", "--device", "custom"}, exitUsage, "contradict"},
		{[]string{"oauth", "login", "--port", "70000", "custom"}, exitUsage, "--port 70000"},
	} {
		code, _, errs := e.run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("popfetch %s: exit %d, want %d and %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, errs)
		}
	}
}

// TestOAuthAndPasswordHelp: each command's help ends with its exit
// statuses.
func TestOAuthAndPasswordHelp(t *testing.T) {
	e := newCLIEnv(t)
	e.add("a", "")
	for _, args := range [][]string{
		{"password", "--help"}, {"password", "set", "--help"}, {"password", "delete", "--help"},
		{"oauth", "--help"}, {"oauth", "login", "--help"},
	} {
		code, out, _ := e.run(args...)
		if code != 0 || !strings.Contains(out, "\nEXIT STATUS\n") || !strings.HasSuffix(out, "the OS keyring is not available\n") {
			t.Errorf("popfetch %s: exit %d:\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// Package oauth is popfetch's built-in OAuth2 client (CONTRACT §2
// oauth_provider and oauth_client_id): the one-time authorization that
// yields a refresh token — the device authorization grant (RFC 8628) or
// the authorization code grant with PKCE over a loopback redirect
// (RFC 8252 §7.3, RFC 7636) — and the refresh of access tokens from it
// (RFC 6749 §6), keeping a rotated refresh token.
//
// It knows nothing of configuration files, keyrings, terminals or exit
// codes: the caller supplies a Store for the refresh token, a writer for
// what the user must do, and maps the errors. No token, code or secret is
// ever written to a writer or logger given to this package.
package oauth

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"
)

// Provider is an authorization server.
type Provider struct {
	// Name is "google", "microsoft", or the token URL of another provider.
	Name string
	// Endpoint always has the token URL; the authorization URL (for the
	// loopback flow) and the device authorization URL (for the device
	// flow) when they are known.
	Endpoint oauth2.Endpoint
	// Scopes are those asked for at authorization. A refresh asks for
	// none, which RFC 6749 §6 makes the scopes granted at authorization.
	Scopes []string
	// Browser says the loopback flow is the one to use by default: Google
	// does not grant mail scopes through its device flow.
	Browser bool
	// AuthParams are extra parameters of the authorization request.
	AuthParams []oauth2.AuthCodeOption
}

// Google is Gmail's authorization server. Its endpoint is that of
// golang.org/x/oauth2/google, taken from x/oauth2/endpoints so that the
// Google Cloud metadata client is not linked in.
var Google = Provider{
	Name: "google",
	Endpoint: oauth2.Endpoint{
		AuthURL:       endpoints.Google.AuthURL,       // https://accounts.google.com/o/oauth2/auth
		TokenURL:      endpoints.Google.TokenURL,      // https://oauth2.googleapis.com/token
		DeviceAuthURL: endpoints.Google.DeviceAuthURL, // https://oauth2.googleapis.com/device/code
		AuthStyle:     oauth2.AuthStyleInParams,
	},
	Scopes:  []string{"https://mail.google.com/"},
	Browser: true,
	// Ask for a refresh token even when the user consented before.
	AuthParams: []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce},
}

// microsoftScopes grant POP3 access to Outlook.com and Microsoft 365
// mailboxes, and a refresh token.
var microsoftScopes = []string{"https://outlook.office.com/POP.AccessAsUser.All", "offline_access"}

// Microsoft is the Microsoft identity platform, common tenant
// (login.microsoftonline.com/common/oauth2/v2.0/{authorize,devicecode,token}).
var Microsoft = Provider{
	Name:     "microsoft",
	Endpoint: endpoints.AzureAD("common"),
	Scopes:   microsoftScopes,
}

// Lookup returns the provider of an oauth_provider setting: "google",
// "microsoft", or a token URL (https, or http on a loopback host, as the
// configuration checks). Of a token URL only the token endpoint is known,
// except for a Microsoft tenant's
// (https://login.microsoftonline.com/TENANT/oauth2/v2.0/token), whose
// authorization and device endpoints and scopes are those of Microsoft.
func Lookup(spec string) (Provider, error) {
	switch spec {
	case "google":
		return Google, nil
	case "microsoft":
		return Microsoft, nil
	}
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Provider{}, fmt.Errorf("oauth_provider %q: want \"google\", \"microsoft\" or a token URL", spec)
	}
	p := Provider{Name: spec, Endpoint: oauth2.Endpoint{TokenURL: spec}}
	if strings.EqualFold(u.Hostname(), "login.microsoftonline.com") && u.RawQuery == "" &&
		strings.HasSuffix(u.Path, "/oauth2/v2.0/token") {
		base := *u
		base.Path = strings.TrimSuffix(u.Path, "/token")
		p.Endpoint.AuthURL = base.String() + "/authorize"
		p.Endpoint.DeviceAuthURL = base.String() + "/devicecode"
		p.Scopes = microsoftScopes
	}
	return p, nil
}

package pop3

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"

	"github.com/emersion/go-sasl"
)

// NewCRAMMD5Client returns a SASL client for CRAM-MD5 (RFC 2195): the
// secret never crosses the wire, only an HMAC-MD5 of the server's
// challenge.
func NewCRAMMD5Client(user, secret string) sasl.Client {
	return &cramMD5{user: user, secret: secret}
}

type cramMD5 struct {
	user, secret string
	done         bool
}

func (c *cramMD5) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5) Next(challenge []byte) ([]byte, error) {
	if c.done {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.done = true
	mac := hmac.New(md5.New, []byte(c.secret))
	mac.Write(challenge)
	return []byte(c.user + " " + hex.EncodeToString(mac.Sum(nil))), nil
}

// NewXOAUTH2Client returns a SASL client for XOAUTH2, the bearer-token
// mechanism of Google and Microsoft: the initial response is
// "user=USER^Aauth=Bearer TOKEN^A^A". When the token is refused the server
// sends a JSON error as a challenge, which is answered with an empty
// response so that the server ends the exchange with -ERR.
func NewXOAUTH2Client(user, token string) sasl.Client {
	return &xoauth2{user: user, token: token}
}

type xoauth2 struct {
	user, token string
	failed      bool
}

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	if x.failed {
		return nil, errors.New("xoauth2: unexpected challenge after the error challenge")
	}
	x.failed = true
	return []byte{}, nil
}

// NewOAuthBearerClient returns a SASL client for OAUTHBEARER (RFC 7628),
// built on go-sasl's. When the server refuses the token with an error
// challenge, it answers with the dummy response %x01 that RFC 7628 §3.2.3
// requires, so the server can end the exchange with -ERR.
func NewOAuthBearerClient(user, token, host string, port int) sasl.Client {
	return &oauthBearer{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user, Token: token, Host: host, Port: port,
	})}
}

type oauthBearer struct {
	sasl.Client
	failed bool
}

func (o *oauthBearer) Next(challenge []byte) ([]byte, error) {
	if o.failed {
		return nil, errors.New("oauthbearer: unexpected challenge after the error challenge")
	}
	o.failed = true
	return []byte{0x01}, nil
}

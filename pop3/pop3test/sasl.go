package pop3test

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

func apopDigest(stamp, secret string) string {
	sum := md5.Sum([]byte(stamp + secret))
	return hex.EncodeToString(sum[:])
}

// errAuth is a refused exchange; its text goes after "-ERR [AUTH] ".
type errAuth string

func (e errAuth) Error() string { return string(e) }

// mechanism is one step of a server-side exchange: given the client's
// response (nil when there was none), it returns the next challenge, or the
// user once done, or an error.
type mechanism func(resp []byte) (challenge []byte, u *User, err error)

// sasl runs an AUTH exchange (RFC 5034). It returns the user once
// authenticated, or nil after having replied -ERR.
func (ss *session) sasl(mech string, args []string) (*User, error) {
	offered := false
	for _, m := range ss.srv.mechanisms() {
		offered = offered || m == mech
	}
	if !offered || ss.hidden("SASL") {
		ss.reply("-ERR unsupported mechanism")
		return nil, nil
	}
	step := ss.mechanism(mech)
	var resp []byte
	if len(args) > 0 {
		if args[0] == "=" {
			resp = []byte{}
		} else {
			b, err := base64.StdEncoding.DecodeString(args[0])
			if err != nil {
				ss.reply("-ERR initial response is not base64")
				return nil, nil
			}
			resp = b
		}
	}
	for {
		chal, u, err := step(resp)
		var refused errAuth
		switch {
		case errors.As(err, &refused):
			ss.reply("-ERR [AUTH] %s", string(refused))
			return nil, nil
		case err != nil:
			ss.reply("-ERR %s", err.Error())
			return nil, nil
		case u != nil:
			return u, nil
		}
		ss.reply("+ %s", base64.StdEncoding.EncodeToString(chal))
		if err := ss.bw.Flush(); err != nil {
			return nil, err
		}
		line, err := ss.readLine()
		if err != nil {
			return nil, err
		}
		ss.logCommand(line)
		if line == "*" {
			ss.reply("-ERR authentication cancelled")
			return nil, nil
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			ss.reply("-ERR response is not base64")
			return nil, nil
		}
	}
}

func (ss *session) mechanism(name string) mechanism {
	s := ss.srv
	check := func(user, pass string) (*User, error) {
		u := s.user(user)
		if u == nil || u.Password == "" || u.Password != pass {
			return nil, errAuth("invalid user name or password")
		}
		return u, nil
	}
	switch name {
	case "PLAIN": // RFC 4616: [authzid] NUL authcid NUL passwd
		return func(resp []byte) ([]byte, *User, error) {
			if resp == nil {
				return []byte{}, nil, nil
			}
			p := bytes.Split(resp, []byte{0})
			if len(p) != 3 {
				return nil, nil, errors.New("malformed PLAIN response")
			}
			u, err := check(string(p[1]), string(p[2]))
			return nil, u, err
		}
	case "LOGIN": // draft-murchison-sasl-login
		var user string
		stage := 0
		return func(resp []byte) ([]byte, *User, error) {
			switch {
			case stage == 0 && resp == nil:
				stage = 1
				return []byte("Username:"), nil, nil
			case stage <= 1:
				user, stage = string(resp), 2
				return []byte("Password:"), nil, nil
			default:
				u, err := check(user, string(resp))
				return nil, u, err
			}
		}
	case "CRAM-MD5": // RFC 2195
		chal := []byte(ss.stamp)
		sent := false
		return func(resp []byte) ([]byte, *User, error) {
			if !sent {
				sent = true
				return chal, nil, nil
			}
			user, digest, ok := strings.Cut(string(resp), " ")
			u := s.user(user)
			if !ok || u == nil || u.Password == "" {
				return nil, nil, errAuth("authentication failed")
			}
			mac := hmac.New(md5.New, []byte(u.Password))
			mac.Write(chal)
			if hex.EncodeToString(mac.Sum(nil)) != digest {
				return nil, nil, errAuth("authentication failed")
			}
			return nil, u, nil
		}
	case "XOAUTH2", "OAUTHBEARER":
		return ss.bearer(name)
	}
	return func([]byte) ([]byte, *User, error) { return nil, nil, errors.New("unsupported mechanism") }
}

// bearer checks XOAUTH2 (Google's and Microsoft's format:
// "user=U^Aauth=Bearer T^A^A") and OAUTHBEARER (RFC 7628:
// "n,a=U,^Aauth=Bearer T^A^A"). A bad token gets the error challenge of
// each: a JSON status, which the client must answer (RFC 7628 §3.2.3: with
// ^A; XOAUTH2: with an empty line) before the final -ERR.
func (ss *session) bearer(name string) mechanism {
	s := ss.srv
	failed := false
	return func(resp []byte) ([]byte, *User, error) {
		if failed {
			if name == "OAUTHBEARER" && !bytes.Equal(resp, []byte{1}) {
				return nil, nil, errors.New("expected ^A after the error challenge")
			}
			return nil, nil, errAuth("invalid token")
		}
		if resp == nil {
			return []byte{}, nil, nil
		}
		user, token, ok := parseBearer(name, string(resp))
		if !ok {
			return nil, nil, errors.New("malformed " + name + " response")
		}
		if u := s.user(user); u != nil && u.Token != "" && u.Token == token {
			return nil, u, nil
		}
		failed = true
		return []byte(`{"status":"invalid_token","schemes":"Bearer","scope":"https://mail.example/"}`), nil, nil
	}
}

func parseBearer(name, s string) (user, token string, ok bool) {
	if !strings.HasSuffix(s, "\x01\x01") {
		return "", "", false
	}
	fields := strings.Split(strings.TrimSuffix(s, "\x01\x01"), "\x01")
	if name == "OAUTHBEARER" {
		// gs2-header: "n,a=user," then key=value pairs
		gs2, rest := fields[0], fields[1:]
		p := strings.Split(gs2, ",")
		if len(p) != 3 || p[0] != "n" || !strings.HasPrefix(p[1], "a=") {
			return "", "", false
		}
		user, fields = p[1][2:], rest
	}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			if !strings.HasPrefix(v, "Bearer ") {
				return "", "", false
			}
			token = strings.TrimPrefix(v, "Bearer ")
		}
	}
	return user, token, user != "" && token != ""
}

package pop3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// sync waits until every issued command has been answered, for commands
// that must not be pipelined with others (STLS, AUTH).
func (c *Client) sync() error {
	if n := len(c.queue); n > 0 {
		if err := c.queue[n-1].Wait(); err != nil && !isRefusal(err) && err != ErrBodySkipped {
			return err
		}
	}
	return c.err()
}

// StartTLS upgrades the connection with STLS (RFC 2595 §4). It refuses with
// ErrNoSTLS, sending nothing, when the last CAPA did not list STLS. The
// capabilities are forgotten, as RFC 2595 §4 requires: ask for them again.
// A nil cfg means Options.TLSConfig.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if cfg == nil {
		cfg = c.opts.tlsConfig("")
	}
	if err := c.sync(); err != nil {
		return err
	}
	if !c.caps.Has("STLS") {
		return ErrNoSTLS
	}
	if err := c.issue(kindSingle, "", "STLS").Wait(); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		// Bytes that came in the clear after +OK would be taken as
		// protected: a man in the middle's injection (CVE-2011-0411).
		err := protoErrorf("STLS", "data received after the STLS response, before the TLS handshake")
		return c.ioError("", err)
	}
	c.w.stop()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg = cfg.Clone()
		cfg.MinVersion = tls.VersionTLS12
	}
	tc, err := handshake(ctx, c.raw, cfg, c.timeout)
	if err != nil {
		c.fail(err)
		return err
	}
	c.caps = nil
	c.setConn(tc)
	return nil
}

// Auth authenticates with a SASL mechanism (RFC 5034). An initial response
// is sent with the command when the line stays within 255 octets, else in
// answer to the server's first empty challenge (RFC 5034 §4). The exchange
// is left out of the trace. A refusal is returned as *Error with Command
// "AUTH"; an error of the mechanism cancels the exchange with "*".
func (c *Client) Auth(mech sasl.Client) error {
	if err := c.sync(); err != nil {
		return err
	}
	name, ir, err := mech.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	if checkArg(name) != nil || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("pop3: AUTH: %w: mechanism %q", ErrBadArgument, name)
	}
	line := "AUTH " + name
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		// RFC 5034 §4: the command line, CRLF included, must stay within
		// 255 octets; else the initial response waits for a challenge.
		if len(line)+1+len(enc)+2 <= 255 {
			line += " " + enc
			ir = nil
		}
	}
	c.traceC("AUTH " + name + " <redacted>")
	c.w.send([]byte(line + "\r\n"))
	for {
		resp, err := readLine(c.br, "AUTH")
		if err != nil {
			return c.ioError("reading response to AUTH", err)
		}
		if len(resp) > 0 && resp[0] == '+' && !hasPrefixFold(resp, "+OK") {
			c.traceS([]byte("+ <redacted>"))
			chal := strings.TrimSpace(string(resp[1:]))
			challenge, err := base64.StdEncoding.DecodeString(chal)
			if err != nil {
				return c.ioError("", protoErrorf("AUTH", "challenge is not base64"))
			}
			var out []byte
			if ir != nil {
				out, ir = ir, nil
			} else if out, err = mech.Next(challenge); err != nil {
				c.traceC("*")
				c.w.send([]byte("*\r\n"))
				if _, rerr := c.finishAuth(); rerr != nil && !isRefusal(rerr) {
					return rerr
				}
				return fmt.Errorf("pop3: AUTH %s: %w", name, err)
			}
			c.traceC("<redacted>")
			c.w.send([]byte(base64.StdEncoding.EncodeToString(out) + "\r\n"))
			continue
		}
		c.traceS(resp)
		st, err := parseStatus(resp, "AUTH")
		if err != nil {
			return c.ioError("", err)
		}
		// The exchange is over and no command is on the wire: anything
		// more is an answer to nothing (see unasked).
		if err := c.unasked("AUTH"); err != nil {
			return err
		}
		if !st.ok {
			return &Error{Command: "AUTH", Code: st.code, Text: st.text}
		}
		return nil
	}
}

// AuthPipelined sends AUTH with the mechanism's initial response as a
// command like any other (RFC 5034 §4): it returns at once, and when the
// server pipelines, it goes out with the commands issued before it (a
// CAPA, UTF8), so they cost one round trip together. Wait for its answer
// before issuing the session's commands: some servers (Courier) hand the
// connection to another process once logged in and drop what they had
// read past the login. It takes the mechanisms
// that finish in the one exchange, whatever the outcome: PLAIN (RFC 4616)
// and EXTERNAL (RFC 4422 Appendix A). It refuses others (LOGIN,
// CRAM-MD5, the OAuth ones answer with challenges: use Auth), and a
// command line that would pass 255 octets, with ErrBadArgument, sending
// nothing. A server that answers with a challenge all the same breaks
// the session (a *ProtocolError). A refusal is returned as *Error with
// Command "AUTH". The exchange is left out of the trace.
func (c *Client) AuthPipelined(mech sasl.Client) *Command {
	name, ir, err := mech.Start()
	if err != nil {
		return &Command{name: "AUTH", done: true, err: fmt.Errorf("pop3: AUTH: %w", err)}
	}
	if up := strings.ToUpper(name); (up != "PLAIN" && up != "EXTERNAL") || ir == nil {
		return &Command{name: "AUTH", done: true, err: fmt.Errorf("pop3: AUTH: %w: mechanism %q takes more than one exchange", ErrBadArgument, name)}
	}
	enc := "="
	if len(ir) > 0 {
		enc = base64.StdEncoding.EncodeToString(ir)
	}
	if len("AUTH "+name+" "+enc)+2 > 255 {
		return &Command{name: "AUTH", done: true, err: fmt.Errorf("pop3: AUTH: %w: initial response too long to send with the command", ErrBadArgument)}
	}
	return c.issue(kindSingle, "AUTH "+name+" <redacted>", "AUTH", name, enc)
}

// finishAuth reads the status line that ends a cancelled exchange.
func (c *Client) finishAuth() (status, error) {
	for {
		resp, err := readLine(c.br, "AUTH")
		if err != nil {
			return status{}, c.ioError("reading response to AUTH", err)
		}
		if len(resp) > 0 && resp[0] == '+' && !hasPrefixFold(resp, "+OK") {
			// a server that insists on a challenge after "*"
			c.w.send([]byte("*\r\n"))
			continue
		}
		c.traceS(resp)
		st, err := parseStatus(resp, "AUTH")
		if err != nil {
			return st, c.ioError("", err)
		}
		if !st.ok {
			return st, &Error{Command: "AUTH", Code: st.code, Text: st.text}
		}
		return st, nil
	}
}

// APOPTimestamp returns the timestamp of the greeting ("<...@...>") that
// APOP needs (RFC 1939 §7), or "" if there is none.
func (c *Client) APOPTimestamp() string {
	g := c.greeting
	start := strings.LastIndexByte(g, '<')
	if start < 0 {
		return ""
	}
	end := strings.IndexByte(g[start:], '>')
	if end < 0 {
		return ""
	}
	ts := g[start : start+end+1]
	if !strings.Contains(ts, "@") {
		return ""
	}
	return ts
}

// APOP logs in with APOP (RFC 1939 §7): the MD5 digest of the greeting's
// timestamp and the secret is sent, never the secret. It fails without
// sending anything if the greeting has no timestamp.
func (c *Client) APOP(user, secret string) *Command {
	ts := c.APOPTimestamp()
	if ts == "" {
		return &Command{name: "APOP", done: true, err: fmt.Errorf("pop3: APOP: the greeting has no timestamp")}
	}
	sum := md5.Sum([]byte(ts + secret))
	return c.issue(kindSingle, "APOP "+user+" <redacted>", "APOP", user, hex.EncodeToString(sum[:]))
}

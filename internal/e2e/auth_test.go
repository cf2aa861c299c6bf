package e2e

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/dovecottest"
	"github.com/popfetch/popfetch/internal/mailgen"
	"github.com/popfetch/popfetch/pop3/pop3test"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// safeClientLine is every client line the -vv trace may show: commands
// without secrets, and the redacted forms of those with one.
var safeClientLine = regexp.MustCompile(`^(CAPA|STLS|USER \S+|PASS <redacted>|APOP \S+ <redacted>|AUTH [A-Z0-9-]+ <redacted>|<redacted>|\*|STAT|UIDL|LIST|RETR \d+|DELE \d+|NOOP|RSET|QUIT)$`)

// traceLine matches a protocol trace line of account "p".
var traceLine = regexp.MustCompile(`(?m)^popfetch: p: ([CS]): (.*)$`)

// checkTrace checks a -vv run's output: it holds each of want as a trace
// line, every client line is one of safeClientLine, every challenge is
// redacted, and none of the secrets appears anywhere in stdout or stderr.
func checkTrace(t *testing.T, r result, want []string, secrets []string) {
	t.Helper()
	out := r.stdout + r.stderr
	lines := traceLine.FindAllStringSubmatch(out, -1)
	if len(lines) == 0 {
		t.Fatalf("no protocol trace in the output:\n%s", out)
	}
	var got []string
	for _, m := range lines {
		got = append(got, m[1]+": "+m[2])
		switch {
		case m[1] == "C" && !safeClientLine.MatchString(m[2]):
			t.Errorf("trace shows the client line %q", m[2])
		case m[1] == "S" && strings.HasPrefix(m[2], "+ ") && m[2] != "+ <redacted>":
			t.Errorf("trace shows the challenge %q", m[2])
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("trace lacks %q; it is:\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the output holds the secret %q:\n%s", s, out)
		}
	}
}

// passwordSecrets are a password and its encodings as PLAIN, LOGIN and
// USER/PASS could send them.
func passwordSecrets(user, pass string) []string {
	return []string{pass, b64(pass), b64("\x00" + user + "\x00" + pass), b64(user + "\x00" + pass)}
}

// TestDovecotAuthMechanisms: each login method logs in to a real Dovecot
// and fetches; the server's log shows the mechanism it saw; a wrong
// password exits 77 for each; and -vv traces the commands while neither
// the password nor any encoding of it appears in the output.
func TestDovecotAuthMechanisms(t *testing.T) {
	const pass = "pw-D0vecot-Zq81"
	methods := []struct {
		auth, dovecot string   // auth =, and the method= dovecot logs
		trace         []string // trace lines to see, user "u-AUTH"
	}{
		{"user", "PLAIN", []string{"C: USER u-user", "C: PASS <redacted>"}},
		{"apop", "APOP", []string{"C: APOP u-apop <redacted>"}},
		{"plain", "PLAIN", []string{"C: AUTH PLAIN <redacted>"}},
		{"login", "LOGIN", []string{"C: AUTH LOGIN <redacted>", "S: + <redacted>", "C: <redacted>"}},
		{"cram-md5", "CRAM-MD5", []string{"C: AUTH CRAM-MD5 <redacted>", "S: + <redacted>", "C: <redacted>"}},
		{"auto", "PLAIN", []string{"C: AUTH PLAIN <redacted>"}}, // over TLS, PLAIN is the first choice
	}
	var opts []dovecottest.Option
	for _, m := range methods {
		opts = append(opts, dovecottest.WithUser("u-"+m.auth, pass))
	}
	srv := dovecottest.Start(t, opts...)
	sent := map[string][][]byte{}
	for i, m := range methods {
		sent[m.auth] = mailgen.Traps(4, uint64(100+i))
		srv.Populate("u-"+m.auth, sent[m.auth])
	}
	for _, m := range methods {
		t.Run(m.auth, func(t *testing.T) {
			user := "u-" + m.auth
			dir := t.TempDir()
			config := func(pw string) string {
				return userConfig(t, dir, srv.TLSAddr(), "implicit", user,
					fmt.Sprintf("tls_ca_file = %q\nauth = %q\npassword = %q", srv.CAFile(), m.auth, pw))
			}
			secrets := append(passwordSecrets(user, pass), passwordSecrets(user, "wrong-"+pass)...)

			r := popfetch(t, nil, "-c", config("wrong-"+pass), "-vv", "fetch")
			wantExit(t, r, 77)
			method := m.auth
			if method == "auto" {
				method = "plain"
			}
			if want := "popfetch: p: error: login with " + method + " refused: pop3: server refused "; !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
			checkTrace(t, r, m.trace, append(secrets, apopDigests(r.stderr, pass, "wrong-"+pass)...))

			r = popfetch(t, nil, "-c", config(pass), "-vv", "fetch")
			wantExit(t, r, 0)
			checkTrace(t, r, m.trace, append(secrets, apopDigests(r.stderr, pass, "wrong-"+pass)...))
			checkDelivered(t, maildirMessages(t, filepath.Join(dir, "Maildir")), sent[m.auth])
		})
	}
	log := srv.Log()
	for _, m := range methods {
		if n := srv.Count("u-" + m.auth); n != 0 {
			t.Errorf("%s: the server still holds %d messages", m.auth, n)
		}
		if want := "Login: user=<u-" + m.auth + ">, method=" + m.dovecot + ","; !strings.Contains(log, want) {
			t.Errorf("dovecot's log has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("dovecot log:\n%s", log)
	}
}

// apopDigests are the APOP digests of the passwords for every greeting
// timestamp traced in out.
func apopDigests(out string, passwords ...string) []string {
	var ds []string
	for _, ts := range regexp.MustCompile(`<[^<>@\s]+@[^<>\s]+>`).FindAllString(out, -1) {
		for _, p := range passwords {
			sum := md5.Sum([]byte(ts + p))
			ds = append(ds, hex.EncodeToString(sum[:]))
		}
	}
	return ds
}

// TestAuthAuto: auth = "auto" finds a method that works: against a
// Dovecot whose auth_mechanisms are only CRAM-MD5 and APOP it uses
// CRAM-MD5, although Dovecot lists USER too (and refuses PASS without
// PLAIN); against servers that accept no cleartext password it falls back
// to CRAM-MD5, then APOP.
func TestAuthAuto(t *testing.T) {
	t.Run("dovecot without PLAIN", func(t *testing.T) {
		srv := dovecottest.Start(t, dovecottest.WithUser("u-auto", "pw-auto"), dovecottest.WithMechanisms("cram-md5", "apop"))
		msgs := mailgen.Traps(2, 9)
		srv.Populate("u-auto", msgs)
		dir := t.TempDir()
		cfg := userConfig(t, dir, srv.PlainAddr(), "starttls", "u-auto",
			fmt.Sprintf("tls_ca_file = %q\npassword = \"pw-auto\"", srv.CAFile()))
		r := popfetch(t, nil, "-c", cfg, "-vv", "fetch")
		wantExit(t, r, 0)
		checkTrace(t, r, []string{"C: AUTH CRAM-MD5 <redacted>"}, passwordSecrets("u-auto", "pw-auto"))
		checkDelivered(t, maildirMessages(t, filepath.Join(dir, "Maildir")), msgs)
		if log := srv.Log(); !strings.Contains(log, "Login: user=<u-auto>, method=CRAM-MD5,") {
			t.Errorf("dovecot's log shows no CRAM-MD5 login:\n%s", log)
		}
	})
	for _, tc := range []struct {
		name  string
		mechs []string
		want  string
	}{
		{"no cleartext, CRAM-MD5", []string{"CRAM-MD5"}, "C: AUTH CRAM-MD5 <redacted>"},
		{"no cleartext, APOP only", []string{}, "C: APOP alice <redacted>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := ptServer(t, true, "pw-auto", func(s *pop3test.Server) {
				s.Mechanisms = tc.mechs
				s.Faults.HideCaps = []string{"USER"}
			})
			dir := t.TempDir()
			cfg := ptConfig(t, dir, srv.Addr(), "implicit", fmt.Sprintf("tls_fingerprint = %q\npassword = \"pw-auto\"", ptPin(srv)))
			r := popfetch(t, nil, "-c", cfg, "-vv", "fetch")
			wantExit(t, r, 0)
			checkTrace(t, r, []string{tc.want}, append(receivedSecrets(srv.Received(), "alice"), "pw-auto"))
		})
	}
}

// oauthIR is the initial response popfetch must send: XOAUTH2's
// "user=U^Aauth=Bearer T^A^A", or RFC 7628's "n,a=U,^Ahost=H^Aport=P^A
// auth=Bearer T^A^A".
func oauthIR(mech, user, token, host, port string) string {
	if mech == "XOAUTH2" {
		return "user=" + user + "\x01auth=Bearer " + token + "\x01\x01"
	}
	return "n,a=" + user + ",\x01host=" + host + "\x01port=" + port + "\x01auth=Bearer " + token + "\x01\x01"
}

// inlineLimitToken returns the longest token whose initial response still
// fits the AUTH line, CRLF included, into 255 octets (RFC 5034 §4 with
// RFC 2449 §4's command length).
func inlineLimitToken(mech, host, port string) string {
	tok := ""
	for len("AUTH "+mech+" "+b64(oauthIR(mech, "alice", tok+"x", host, port))+"\r\n") <= 255 {
		tok += "x"
	}
	return tok
}

// TestOAuthMechanisms runs the binary with oauth_token_command against
// pop3test and decodes what the server received: the initial response is
// byte-exact; when it would make the AUTH line longer than 255 octets it
// is sent after the server's empty challenge instead; a refused token's
// error challenge is answered with ^A (OAUTHBEARER, RFC 7628 §3.2.3) or an
// empty line (XOAUTH2), and the run exits 77.
func TestOAuthMechanisms(t *testing.T) {
	tokens := []struct {
		name  string
		token func(limit string) string
	}{
		{"short", func(string) string { return "ya29.a0AfB_short-Tok" }},
		{"255 octets", func(limit string) string { return limit }},
		{"256 octets", func(limit string) string { return limit + "Y" }},
		{"2k", func(string) string { return strings.Repeat("Zk9", 700) }},
	}
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		for _, tk := range tokens {
			for _, good := range []bool{true, false} {
				label := mech + "/" + tk.name + "/accepted"
				if !good {
					label = mech + "/" + tk.name + "/refused"
				}
				t.Run(label, func(t *testing.T) {
					srv := ptServer(t, true, "", func(s *pop3test.Server) { s.Mechanisms = []string{mech} })
					host, port, _ := net.SplitHostPort(srv.Addr())
					token := tk.token(inlineLimitToken(mech, host, port))
					if good {
						srv.SetToken("alice", token)
					} else {
						srv.SetToken("alice", "the-right-one")
					}
					dir := t.TempDir()
					cfg := ptConfig(t, dir, srv.Addr(), "implicit", fmt.Sprintf(
						"tls_fingerprint = %q\nauth = %q\noauth_token_command = \"printf %s\"", ptPin(srv), strings.ToLower(mech), token))
					r := popfetch(t, nil, "-c", cfg, "-vv", "fetch")
					ir := oauthIR(mech, "alice", token, host, port)
					checkTrace(t, r, []string{"C: AUTH " + mech + " <redacted>"}, []string{token, b64(token), b64(ir)})

					rec := srv.Received()
					i := slices.IndexFunc(rec, func(l string) bool { return strings.HasPrefix(l, "AUTH ") })
					if i < 0 {
						t.Fatalf("no AUTH received: %q", rec)
					}
					// RFC 5034 §4: the initial response goes on the AUTH line
					// only if the line, CRLF included, stays within 255 octets.
					inline := "AUTH " + mech + " " + b64(ir)
					var sentIR string
					var next []string
					if len(inline)+2 <= 255 {
						sentIR, next = strings.TrimPrefix(rec[i], "AUTH "+mech+" "), rec[i+1:]
						if rec[i] != inline {
							t.Fatalf("received %q, want %q", rec[i], inline)
						}
					} else {
						if rec[i] != "AUTH "+mech || len(rec) < i+2 {
							t.Fatalf("received %q, want the AUTH line without initial response (it would be %d octets), then the response", rec[i:], len(inline)+2)
						}
						sentIR, next = rec[i+1], rec[i+2:]
					}
					if tk.name == "255 octets" && len(inline)+2 != 255 || tk.name == "256 octets" && len(inline)+2 <= 255 {
						t.Fatalf("test token of the wrong length: the line would be %d octets", len(inline)+2)
					}
					if dec, err := base64.StdEncoding.DecodeString(sentIR); err != nil || string(dec) != ir {
						t.Errorf("decoded initial response %q (%v), want %q", dec, err, ir)
					}
					for _, l := range rec[:i+1] {
						if len(l)+2 > 255 {
							t.Errorf("a command line of %d octets: %.40q…", len(l)+2, l)
						}
					}
					if good {
						wantExit(t, r, 0)
						if len(next) == 0 || next[0] != "CAPA" {
							t.Errorf("after logging in received %q, want CAPA first", next)
						}
						if n := len(maildirMessages(t, filepath.Join(dir, "Maildir"))); n != 1 {
							t.Errorf("%d messages delivered, want 1", n)
						}
						return
					}
					wantExit(t, r, 77)
					answer := "AQ==" // base64 of ^A, RFC 7628 §3.2.3
					if mech == "XOAUTH2" {
						answer = "" // an empty response, as Google and Microsoft expect
					}
					if len(next) == 0 || next[0] != answer {
						t.Errorf("the error challenge was answered with %q, want %q first", next, answer)
					}
					for _, l := range next[min(1, len(next)):] {
						if strings.HasPrefix(l, "AUTH") || l == "*" || !isCommand(l) {
							t.Errorf("after the refusal received %q", l)
						}
					}
					if want := "popfetch: p: error: login with " + strings.ToLower(mech) + " refused: pop3: server refused AUTH [AUTH]"; !strings.Contains(r.stderr, want) {
						t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
					}
				})
			}
		}
	}
}

// isCommand reports whether a line the server received is a POP3 command
// rather than a line of an AUTH exchange.
func isCommand(l string) bool {
	w, _, _ := strings.Cut(l, " ")
	switch w {
	case "CAPA", "STLS", "USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET", "QUIT":
		return true
	}
	return false
}

// receivedSecrets are the secret parts of what a server received: PASS's
// argument, APOP's digest, an AUTH initial response, every line of an AUTH
// exchange, and the decoded form of each, down to a CRAM-MD5 digest.
func receivedSecrets(rec []string, user string) []string {
	var s []string
	add := func(v string) {
		// "*" cancels, "AQ==" is RFC 7628's dummy response: no secrets.
		if v == "" || v == "*" || v == "AQ==" || v == b64(user) {
			return
		}
		s = append(s, v)
		if dec, err := base64.StdEncoding.DecodeString(v); err == nil {
			s = append(s, string(dec))
			if _, digest, ok := strings.Cut(string(dec), " "); ok { // CRAM-MD5: "user digest"
				s = append(s, digest)
			}
		}
	}
	for _, l := range rec {
		f := strings.Fields(l)
		switch {
		case !isCommand(l):
			add(l)
		case f[0] == "PASS" && len(f) > 1:
			add(strings.TrimPrefix(l, "PASS "))
		case f[0] == "APOP" && len(f) > 2:
			add(f[2])
		case f[0] == "AUTH" && len(f) > 2:
			add(f[2])
		}
	}
	return s
}

// TestTraceRedactedEveryMechanism runs the binary with -vv through every
// method against pop3test, accepted and refused, and proves with what the
// server received that no secret it was sent — password, token, APOP
// digest, CRAM-MD5 response, any initial response — and no base64 of one
// appears in the output, while the commands themselves are traced.
func TestTraceRedactedEveryMechanism(t *testing.T) {
	const pass, token = "pw-Tr4ce-Kq2", "tok-Tr4ce-J7fQ2m"
	for _, tc := range []struct {
		auth  string
		trace []string
	}{
		{"user", []string{"C: USER alice", "C: PASS <redacted>"}},
		{"apop", []string{"C: APOP alice <redacted>"}},
		{"plain", []string{"C: AUTH PLAIN <redacted>"}},
		{"login", []string{"C: AUTH LOGIN <redacted>", "S: + <redacted>", "C: <redacted>"}},
		{"cram-md5", []string{"C: AUTH CRAM-MD5 <redacted>", "S: + <redacted>", "C: <redacted>"}},
		{"xoauth2", []string{"C: AUTH XOAUTH2 <redacted>"}},
		{"oauthbearer", []string{"C: AUTH OAUTHBEARER <redacted>"}},
		{"auto", []string{"C: AUTH PLAIN <redacted>"}},
	} {
		for _, good := range []bool{true, false} {
			name := tc.auth + "/accepted"
			if !good {
				name = tc.auth + "/refused"
			}
			t.Run(name, func(t *testing.T) {
				srv := ptServer(t, true, pass, nil)
				srv.SetToken("alice", token)
				pw, tok := pass, token
				if !good {
					pw, tok = "wrong-"+pass, "wrong-"+token
				}
				dir := t.TempDir()
				cred := fmt.Sprintf("password = %q", pw)
				if strings.Contains(tc.auth, "oauth") {
					cred = fmt.Sprintf("oauth_token_command = \"printf %s\"", tok)
				}
				cfg := ptConfig(t, dir, srv.Addr(), "implicit", fmt.Sprintf("tls_fingerprint = %q\nauth = %q\n%s", ptPin(srv), tc.auth, cred))
				r := popfetch(t, nil, "-c", cfg, "-vv", "fetch")
				if good {
					wantExit(t, r, 0)
				} else {
					wantExit(t, r, 77)
				}
				trace := tc.trace
				if !good && tc.auth == "user" {
					trace = append(trace, "S: -ERR [AUTH] invalid user name or password")
				}
				secrets := append(receivedSecrets(srv.Received(), "alice"), pass, token, pw, tok, b64(pass), b64(token), b64(pw), b64(tok))
				secrets = append(secrets, apopDigests(r.stderr, pw)...)
				checkTrace(t, r, trace, secrets)
			})
		}
	}
}

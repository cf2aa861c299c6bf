package cmd

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/config"
)

// importFixture copies testdata/import/NAME into a private file (fetchmail
// and mpop refuse one that others can read) and returns its path.
func importFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// importAndLoad runs config import on path and loads what it printed as
// a popfetch configuration.
func importAndLoad(t *testing.T, path string) (string, *config.Config) {
	t.Helper()
	out, errs := mustMain(t, 0, "config", "import", path)
	if !strings.Contains(errs, path+": ") {
		t.Errorf("config import said:\n%s", errs)
	}
	cfg, err := config.Parse(path+".toml", []byte(out), config.Env{Home: "/home/alice"}, config.FileMode(0o600))
	if err != nil {
		t.Fatalf("the translation does not load:\n%v\n%s", err, out)
	}
	return out, cfg
}

func findAccount(t *testing.T, cfg *config.Config, name string) *config.Account {
	t.Helper()
	for _, a := range cfg.Accounts {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no account %q among %d", name, len(cfg.Accounts))
	return nil
}

// TestImportFetchmail translates a .fetchmailrc with tricky quoting and
// checks each account against what fetchmail itself makes of the file
// (fetchmail --configdump): server, port, user, password, keep, fetchall,
// limits, TLS and delivery; and that every setting without an equivalent
// is a comment.
func TestImportFetchmail(t *testing.T) {
	needTool(t, "fetchmail")
	needTool(t, "python3")
	path := importFixture(t, "fetchmailrc")
	out, cfg := importAndLoad(t, path)

	cmd := exec.Command("sh", "-c", `fetchmail --configdump -f "$1" 2>/dev/null | python3 -c 'import json, sys
ns = {}
exec(sys.stdin.read(), ns)
print(json.dumps(ns["fetchmailrc"]))'`, "sh", path)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatalf("fetchmail --configdump: %v", err)
	}
	var rc struct {
		Servers []struct {
			Pollname, Via, Protocol, Service, Auth string
			Active, Timeout                        int
			Users                                  []struct {
				Remote, Password, MDA, Sslcertfile string
				Sslproto                           *string
				Localnames, Smtphunt               []string
				Keep, Fetchall, Ssl, Lmtp          int
				Limit, Fetchlimit                  int64
			}
		}
	}
	if err := json.Unmarshal(dump, &rc); err != nil {
		t.Fatalf("%v\n%s", err, dump)
	}
	n := 0
	for _, s := range rc.Servers {
		for _, u := range s.Users {
			name := accountName(s.Pollname)
			if len(s.Users) > 1 {
				name = accountName(s.Pollname + "-" + u.Remote)
			}
			if !strings.EqualFold(s.Protocol, "pop3") && !strings.EqualFold(s.Protocol, "auto") {
				if !strings.Contains(out, "# not carried over: fetchmail used "+strings.ToLower(s.Protocol)) {
					t.Errorf("%s: a %s account is not commented out:\n%s", name, s.Protocol, out)
				}
				continue
			}
			n++
			a := findAccount(t, cfg, name)
			host := s.Pollname
			if s.Via != "" {
				host = s.Via
			}
			port, _ := strconv.Atoi(s.Service)
			tls := config.TLSStartTLS
			switch {
			case u.Ssl == 1:
				tls = config.TLSImplicit
			case u.Sslproto != nil && *u.Sslproto == "":
				tls = config.TLSNone
			}
			if port == 0 {
				port = config.StandardPort(tls)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s: %s = %v, fetchmail has %v", name, what, got, want)
				}
			}
			check("host", a.Host, host)
			check("port", a.Port, port)
			check("user", a.User, u.Remote)
			check("password", string(a.Password), u.Password)
			check("keep", a.Keep, u.Keep == 1)
			check("fetch_all", a.FetchAll, u.Fetchall == 1)
			check("max_size", a.MaxSize, u.Limit)
			check("max_messages", int64(a.MaxMessages), u.Fetchlimit)
			check("tls", a.TLS, tls)
			check("timeout", a.Timeout.Seconds(), float64(s.Timeout))
			switch {
			case u.MDA != "":
				check("mda", a.Deliver.MDA, strings.ReplaceAll(u.MDA, "%T", u.Localnames[0]))
			case u.Lmtp == 1:
				check("lmtp", a.Deliver.LMTP, "unix:"+u.Smtphunt[0])
			default:
				addr := strings.Replace(u.Smtphunt[0], "/", ":", 1)
				if !strings.Contains(addr, ":") {
					addr += ":25"
				}
				check("smtp", a.Deliver.SMTP, addr)
				check("recipient", a.Deliver.Recipient, u.Localnames[0])
			}
		}
	}
	if n != len(cfg.Accounts) || n < 4 {
		t.Errorf("%d POP3 accounts in fetchmail's reading, %d translated", n, len(cfg.Accounts))
	}
	for _, want := range []string{
		`fetchmail "set daemon 300": run "popfetch daemon --interval 300s"`,
		`fetchmail "set no bouncemail": popfetch sends no bounces either`,
		`fetchmail "flush" (line 21)`,
		`fetchmail "dropdelivered" (line 24)`,
		`fetchmail "no mimedecode" (line 24)`,
		`fetchmail "sslfingerprint 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0" (line 28): fetchmail's fingerprint is MD5`,
		`fetchmail "uidl" (line 12): popfetch always uses UIDL`,
		`fetchmail ran the mda command through /bin/sh`,
		`fetchmail polled this server (skip) only when named`,
	} {
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(out, "\n# ", " ")), " "), want) {
			t.Errorf("the translation lacks the comment %q:\n%s", want, out)
		}
	}
}

// mpopPretend returns what mpop --pretend prints for each account of the
// file: key = value, as mpop reads the file.
func mpopPretend(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	out, err := exec.Command("mpop", "--pretend", "-C", path, "--all-accounts").CombinedOutput()
	if err != nil {
		t.Fatalf("mpop --pretend: %v\n%s", err, out)
	}
	accounts := map[string]map[string]string{}
	var cur map[string]string
	using := regexp.MustCompile(`^using account (.*) from `)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := using.FindStringSubmatch(sc.Text()); m != nil {
			cur = map[string]string{}
			accounts[m[1]] = cur
			continue
		}
		if k, v, ok := strings.Cut(sc.Text(), " = "); ok && cur != nil {
			cur[k] = v
		}
	}
	return accounts
}

// TestImportMpop translates an mpoprc (defaults, accounts copying others,
// mpop's quoting, which keeps backslashes) and checks each account against
// what mpop itself makes of the file (mpop --pretend).
func TestImportMpop(t *testing.T) {
	needTool(t, "mpop")
	path := importFixture(t, "mpoprc")
	out, cfg := importAndLoad(t, path)
	home, _ := os.UserHomeDir()
	for id, m := range mpopPretend(t, path) {
		if id == "default" {
			if !strings.Contains(out, `# not carried over: the same mailbox as "home"`) {
				t.Errorf("the default account, a copy of home, is not commented out:\n%s", out)
			}
			continue
		}
		a := findAccount(t, cfg, id)
		check := func(what string, got, want any) {
			t.Helper()
			if got != want {
				t.Errorf("%s: %s = %v, mpop has %v", id, what, got, want)
			}
		}
		check("host", a.Host, m["host"])
		check("port", strconv.Itoa(a.Port), m["port"])
		check("user", a.User, m["user"])
		tls := config.TLSNone
		if m["tls"] == "on" {
			tls = config.TLSStartTLS
			if m["tls_starttls"] == "off" {
				tls = config.TLSImplicit
			}
		}
		check("tls", a.TLS, tls)
		check("keep", a.Keep, m["keep"] == "on")
		check("fetch_all", a.FetchAll, m["only_new"] == "off")
		check("received_header", a.ReceivedHeader, m["received_header"] == "on")
		if m["passwordeval"] != "(not set)" {
			cmd := a.PasswordCommand
			if a.Auth == config.AuthXOAuth2 {
				cmd = a.OAuthTokenCommand
			}
			check("passwordeval", cmd, m["passwordeval"])
		}
		if fp := m["tls_fingerprint"]; fp != "(not set)" {
			check("tls_fingerprint", a.TLSFingerprint, "sha256:"+strings.ToLower(strings.ReplaceAll(fp, ":", "")))
		}
		if s := m["timeout"]; s != "180 seconds" {
			check("timeout", a.Timeout.String(), strings.TrimSuffix(s, " seconds")+"s")
		}
		how, dest, _ := strings.Cut(m["delivery"], " ")
		dest = strings.Replace(dest, home, "/home/alice", 1)
		switch how {
		case "mda":
			check("mda", a.Deliver.MDA, dest)
		case "maildir":
			check("maildir", a.Deliver.Maildir, dest)
		case "mbox":
			check("mbox", a.Deliver.Mbox, dest)
		}
	}
	for _, want := range []string{
		`mpop "killsize 10000000" (line 25): mpop deleted larger messages unseen`,
		`mpop "uidls_file ~/.mpop_uidls/%U_at_%H" (line 38)`,
		`mpop "tls off" (line 33): the password went without TLS`,
		`mpop ran the mda command through /bin/sh`,
		`keep: popfetch keeps its own record of what was retrieved`,
	} {
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(out, "\n# ", " ")), " "), want) {
			t.Errorf("the translation lacks the comment %q:\n%s", want, out)
		}
	}
	if a := findAccount(t, cfg, "work"); a.MaxSize != 5<<20 {
		t.Errorf("work: max_size = %d, want skipsize 5m", a.MaxSize)
	}
}

// TestImportFindsTheFile: without FILE, ~/.fetchmailrc, then ~/.mpoprc;
// with neither, a clear error.
func TestImportFindsTheFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	code, _, errs := runMain(t, "config", "import")
	if code != exitConfig || !strings.Contains(errs, "nothing to import: none of "+home+"/.fetchmailrc") {
		t.Errorf("exit %d\n%s", code, errs)
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "import", "mpoprc"))
	os.WriteFile(filepath.Join(home, ".mpoprc"), b, 0o600)
	out, _ := mustMain(t, 0, "config", "import")
	if !strings.Contains(out, "translated from the mpop configuration "+home+"/.mpoprc") {
		t.Errorf("imported:\n%s", out)
	}
	code, _, errs = runMain(t, "config", "import", "--format", "exim", home+"/.mpoprc")
	if code != exitUsage || !strings.Contains(errs, `--format "exim": want fetchmail or mpop`) {
		t.Errorf("exit %d\n%s", code, errs)
	}
}

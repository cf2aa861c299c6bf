package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics, that what it accepts keeps the
// promises of Account, and that the scanner finds a line for every key the
// TOML library decodes. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(okAccount))
	f.Add([]byte("[defaults]\ntimeout = \"30s\"\n[defaults.deliver]\nmbox = \"~/mbox\"\n" + okAccount +
		"[[account]]\nname = \"b\"\nhost = \"h\"\nuser = \"u\"\npassword = \"pw\"\nmax_size = \"1.5 MiB\"\n"))
	f.Add([]byte("account = [{ name = \"a\", host = \"h\", user = \"u\", deliver = { mda = \"x\" } }]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data, testEnv(), FileMode(0o600))
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error %T without problems: %v", err, err)
			}
			for _, e := range errs.List {
				if e.Line < 0 {
					t.Fatalf("negative line: %v", e)
				}
			}
		} else {
			if len(cfg.Accounts) == 0 {
				t.Fatal("no accounts and no error")
			}
			for _, a := range cfg.Accounts {
				checkAccount(t, a)
			}
		}

		// The scanner agrees with the TOML library on where keys are.
		src := string(data)
		var raw map[string]any
		if _, err := toml.Decode(src, &raw); err == nil {
			kl := scanLines(src)
			walkKeys(raw, nil, func(path []string) {
				if _, ok := kl.lines[joinPath(path)]; !ok {
					t.Fatalf("no line for key %q", strings.Join(path, "."))
				}
			})
		}
	})
}

func checkAccount(t *testing.T, a *Account) {
	t.Helper()
	targets := 0
	for _, s := range []string{a.Deliver.Maildir, a.Deliver.Mbox, a.Deliver.MDA} {
		if s != "" {
			targets++
		}
	}
	switch {
	case targets != 1:
		t.Fatalf("%d delivery targets: %+v", targets, a.Deliver)
	case validName(a.Name) != "" || a.Name == "":
		t.Fatalf("bad name %q", a.Name)
	case a.Host == "" || a.User == "":
		t.Fatalf("host %q, user %q", a.Host, a.User)
	case a.Port < 1 || a.Port > 65535:
		t.Fatalf("port %d", a.Port)
	case !contains(tlsModes, string(a.TLS)) || !contains(authMethods, string(a.Auth)):
		t.Fatalf("tls %q, auth %q", a.TLS, a.Auth)
	case a.Timeout <= 0 || a.DeleteAfter < 0 || a.MaxSize < 0 || a.MaxMessages < 0:
		t.Fatalf("timeout %v, delete_after %v, max_size %d, max_messages %d", a.Timeout, a.DeleteAfter, a.MaxSize, a.MaxMessages)
	case a.DeleteAfter > 0 && !a.Keep:
		t.Fatal("delete_after without keep")
	case a.StateDir == "" || a.File != "fuzz.toml" || a.Lines[""] < 1:
		t.Fatalf("state_dir %q, file %q, lines %v", a.StateDir, a.File, a.Lines)
	}
	if a.TLSFingerprint != "" {
		if fp, err := ParseFingerprint(a.TLSFingerprint); err != nil || fp != a.TLSFingerprint {
			t.Fatalf("fingerprint %q not normalised", a.TLSFingerprint)
		}
	}
}

// walkKeys calls fn with the path of every key in a decoded document, with
// "#n" for the n-th element of an array, as the scanner writes them.
func walkKeys(v any, path []string, fn func([]string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := append(path[:len(path):len(path)], k)
			fn(p)
			walkKeys(x, p, fn)
		}
	case []map[string]any:
		for i, x := range v {
			walkKeys(x, append(path[:len(path):len(path)], indexKey(i)), fn)
		}
	case []any:
		for i, x := range v {
			walkKeys(x, append(path[:len(path):len(path)], indexKey(i)), fn)
		}
	}
}

package cmd

import (
	"slices"
	"strings"
	"testing"
)

// TestCompletion: the words each command line completes to, as the
// scripts ask for them (the word being typed last, "" for a new one).
func TestCompletion(t *testing.T) {
	e := newCLIEnv(t)
	e.add("personal", "")
	e.add("work", "")
	accounts := []string{"personal", "work"}
	for _, tc := range []struct {
		line []string // after "popfetch", the last being typed
		want []string
		has  bool // want is a subset of the answer, not all of it
	}{
		{[]string{"fetch", "--k"}, []string{"--keep"}, false}, // panicked in urfave/cli
		{[]string{"fetch", "--no-"}, []string{"--no-keep"}, false},
		{[]string{"fetch", "-"}, []string{"--keep", "--host", "--tls-fingerprint", "-c", "--config", "-v", "--progress"}, true},
		{[]string{"fetch", ""}, accounts, false},
		{[]string{"fetch", "personal", ""}, []string{"work"}, false},
		{[]string{"fetch", "w"}, []string{"work"}, false},
		{[]string{""}, append([]string{"fetch", "check", "config", "serverinfo"}, accounts...), true},
		{[]string{"check", ""}, accounts, false},
		{[]string{"daemon", "--interval", "5m", ""}, accounts, false},
		{[]string{"serverinfo", ""}, accounts, false},
		{[]string{"serverinfo", "work", ""}, nil, false},
		{[]string{"oauth", "login", ""}, accounts, false},
		{[]string{"password", ""}, []string{"set", "delete"}, false},
		{[]string{"password", "set", ""}, accounts, false},
		{[]string{"cache", "forget", "p"}, []string{"personal"}, false},
		{[]string{"cache", "list", "-v", ""}, accounts, false},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, false},
		{[]string{"config", ""}, []string{"check"}, true},
		{[]string{"fetch", "--tls", ""}, []string{"implicit", "starttls", "none"}, false},
		{[]string{"fetch", "--tls=s"}, []string{"--tls=starttls"}, false},
		{[]string{"--progress", "a"}, []string{"auto", "always"}, false},
		{[]string{"fetch", "--maildir", ""}, []string{fileCompletion}, false},
		{[]string{"check", "-c", "~/"}, []string{fileCompletion}, false},
		{[]string{"fetch", "--limit", ""}, nil, false},
	} {
		// -c CONFIG comes first, or after the command word: both work.
		for _, at := range []int{0, 1} {
			if at > len(tc.line)-1 || at == 1 && strings.HasPrefix(tc.line[0], "-") {
				continue
			}
			line := slices.Insert(slices.Clone(tc.line), at, "-c", e.config)
			code, out, errs := runMain(t, append(line, completeFlag)...)
			got := strings.Fields(out)
			ok := code == 0 && errs == ""
			if tc.has {
				for _, w := range tc.want {
					ok = ok && slices.Contains(got, w)
				}
			} else {
				ok = ok && slices.Equal(got, tc.want)
			}
			if !ok {
				t.Errorf("popfetch %q<TAB>: exit %d, %q (stderr %q), want %q", line, code, got, errs, tc.want)
			}
		}
	}
}

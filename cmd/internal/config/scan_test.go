package config

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// lines returns what the scanner found, with paths written a/b/c.
func scannedLines(src string) map[string]int {
	got := make(map[string]int)
	for k, v := range scanLines(src).lines {
		got[strings.ReplaceAll(k, pathSep, "/")] = v
	}
	return got
}

func TestScanLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]int // a subset of what is found; 0: must not be found
	}{
		{
			name: "tables and arrays of tables",
			src: `top = 1
[defaults]
timeout = "5s"
[defaults.deliver]
maildir = "x"

[[account]]
name = "a"
[account.deliver]
mbox = "m"
[[account]]
name = "b"
`,
			want: map[string]int{
				"top": 1, "defaults": 2, "defaults/timeout": 3, "defaults/deliver": 4,
				"defaults/deliver/maildir": 5, "account": 7, "account/#0": 7, "account/#0/name": 8,
				"account/#0/deliver": 9, "account/#0/deliver/mbox": 10,
				"account/#1": 11, "account/#1/name": 12, "account/#1/deliver": 0,
			},
		},
		{
			name: "multi-line strings hide headers and keys",
			src: `# [[account]] in a comment
title = """
[[account]]
host = "x"
"""
[[account]]
name = 'a'   # a comment with a "quote
lit = '''
host = 1
[account.deliver]
'''
host = "h" # a comment
esc = """a \""" b
user = "not a key"
"""""
user = "u"
`,
			want: map[string]int{
				"title": 2, "account/#0": 6, "account/#0/name": 7, "account/#0/lit": 8,
				"account/#0/host": 12, "account/#0/esc": 13, "account/#0/user": 16,
				"account/#0/deliver": 0, "account/#1": 0,
			},
		},
		{
			name: "inline tables and dotted keys",
			src: `[[account]]
deliver = { maildir = "~/M", "mbox" = "x" }
[[account]]
deliver.maildir = "y"
a . "b.c" . d = 1
"esc\"aped\u0041" = 2
'lit' = 3
`,
			want: map[string]int{
				"account/#0/deliver": 2, "account/#0/deliver/maildir": 2, "account/#0/deliver/mbox": 2,
				"account/#1": 3, "account/#1/deliver": 4, "account/#1/deliver/maildir": 4,
				"account/#1/a": 5, "account/#1/a/b.c": 5, "account/#1/a/b.c/d": 5,
				`account/#1/esc"apedA`: 6, "account/#1/lit": 7,
			},
		},
		{
			name: "multi-line arrays and inline tables",
			src: `arr = [
  "a", # a comment ]
  """b
]""",
  [1, 2], { x = 1 },
]
after = 6
account = [
  { name = "a", host = "h" },
  { name = "b",
    host = "i" },
]
date = 1979-05-27 07:32:00Z
last = 13
`,
			want: map[string]int{
				"arr": 1, "arr/#3/x": 5, "after": 7, "account": 8, "account/#0/name": 9,
				"account/#1/name": 10, "account/#1/host": 11, "date": 13, "last": 14,
			},
		},
		{
			name: "nested arrays of tables",
			src: `[[a]]
[[a.b]]
x = 1
[[a.b]]
x = 2
[[a]]
[[a.b]]
x = 3
[a.c]
y = 4
`,
			want: map[string]int{
				"a/#0/b/#0/x": 3, "a/#0/b/#1/x": 5, "a/#1/b/#0/x": 8, "a/#1/c/y": 10,
			},
		},
		{
			name: "spaces in headers",
			src:  "[ defaults . deliver ]\nmbox = \"x\"\n[[ account ]]\n[ account . deliver ]\nmda = \"y\"\n",
			want: map[string]int{"defaults/deliver/mbox": 2, "account/#0": 3, "account/#0/deliver/mda": 5},
		},
		{
			name: "CRLF, BOM, tabs",
			src:  "\ufeff[[account]]\r\n\tname\t=\t\"a\"\r\n\r\nhost = \"h\"\r\n",
			want: map[string]int{"account/#0": 1, "account/#0/name": 2, "account/#0/host": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := toml.Decode(tt.src, new(map[string]any)); err != nil {
				t.Fatalf("test file is not TOML: %v", err)
			}
			got := scannedLines(tt.src)
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("line of %s = %d, want %d", k, got[k], want)
				}
			}
			if t.Failed() {
				t.Logf("found: %v", sortedMap(got))
			}
		})
	}
}

func sortedMap(m map[string]int) string {
	var s []string
	for k, v := range m {
		s = append(s, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func TestScanSpans(t *testing.T) {
	src := `[[account]]
password = """
two
three"""
user = "u"
`
	kl := scanLines(src)
	for line, want := range map[int]bool{1: false, 2: true, 3: true, 4: true, 5: false} {
		if got := kl.inValueOf(line, func(k string) bool { return k == "password" }); got != want {
			t.Errorf("inValueOf(%d) = %v, want %v", line, got, want)
		}
	}
}

// TestScanGarbage checks the scanner survives text that is not TOML.
func TestScanGarbage(t *testing.T) {
	for _, src := range []string{
		"", "[", "[[", "[[a", "a", "a =", "a = [", "a = {", `a = "`, `a = """`, "a = '''x",
		`"\`, `"\u12`, "= = =", "]]]", "a = [,,,]", "a = {,}", "a = {b}", "[a.]", "a..b = 1",
		strings.Repeat("[", 10000), "a = " + strings.Repeat("[", 10000), "a = " + strings.Repeat("{a=", 10000),
	} {
		scanLines(src)
	}
}

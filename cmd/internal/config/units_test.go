package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string // substring of the error; "" for none
	}{
		{"90s", 90 * time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"30d", 30 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"2w", 14 * 24 * time.Hour, ""},
		{"1w1d1h1m1s", (8*24+1)*time.Hour + time.Minute + time.Second, ""},
		{"1.5d", 36 * time.Hour, ""},
		{".5h", 30 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"10us", 10 * time.Microsecond, ""},
		{"10µs", 10 * time.Microsecond, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"-1h", -time.Hour, ""},
		{"", 0, "invalid duration"},
		{"30", 0, "invalid duration"},
		{"d", 0, "invalid duration"},
		{"1y", 0, "invalid duration"},
		{"30 d", 0, "invalid duration"},
		{"30D", 0, "invalid duration"},
		{"1h-1m", 0, "invalid duration"},
		{"-", 0, "invalid duration"},
		{"100000000w", 0, "too long"},
		{"2562047h1h", 0, "too long"},
		{"99999999999999999999s", 0, "too long"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"25MB", 25_000_000, ""},
		{"25M", 25_000_000, ""},
		{"25mb", 25_000_000, ""},
		{"25 MB", 25_000_000, ""},
		{"25KB", 25_000, ""},
		{"25k", 25_000, ""},
		{"1GB", 1_000_000_000, ""},
		{"1G", 1_000_000_000, ""},
		{"25MiB", 25 << 20, ""},
		{"25mib", 25 << 20, ""},
		{"25KiB", 25 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"1.5MB", 1_500_000, ""},
		{"1.5 MiB", 3 << 19, ""},
		{"0.1KiB", 102, ""}, // rounded down
		{"100B", 100, ""},
		{" 7 ", 7, ""},
		{"8000000TiB", 8000000 << 40, ""},
		{"", 0, "invalid size"},
		{"MB", 0, "invalid size"},
		{"1.5", 0, "must be whole"},
		{"25 XB", 0, "unknown unit"},
		{"25  MB", 0, "invalid size"},
		{"-1", 0, "negative"},
		{"-1MB", 0, "negative"},
		{"1e6", 0, "invalid size"},
		{"0x10", 0, "invalid size"},
		{"1/2MB", 0, "invalid size"},
		{"9223372036854775808", 0, "too large"},
		{"9000000TiB", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	tests := []struct {
		in, want string
	}{
		{"sha256:" + hex, "sha256:" + hex},
		{"SHA256:" + strings.ToUpper(hex), "sha256:" + hex},
		{"sha256:" + colons, "sha256:" + hex},
		{hex, ""},
		{"sha1:" + hex, ""},
		{"sha256:" + hex[2:], ""},
		{"sha256:" + hex + "ab", ""},
		{"sha256:" + strings.Repeat("zz", 32), ""},
		{"sha256:" + colons + ":", ""},
		{"sha256:a:" + hex[3:], ""},
		{"sha256:" + strings.Replace(colons, ":", "", 1), ""},
		{"sha256:", ""},
	}
	for _, tt := range tests {
		got, err := ParseFingerprint(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandPath(t *testing.T) {
	env := testEnv()
	tests := []struct {
		in, want, err string
	}{
		{"/var/mail", "/var/mail", ""},
		{"~", "/home/alice", ""},
		{"~/Mail/", "/home/alice/Mail", ""},
		{"$HOME/Mail", "/home/alice/Mail", ""},
		{"${HOME}/Mail", "/home/alice/Mail", ""},
		{"$MAILROOT/x", "/srv/mail/x", ""},
		{"${MAILROOT}x", "/srv/mailx", ""},
		{"/a/$EMPTY/b", "/a/b", ""},
		{"/cost/$5", "/cost/$5", ""},
		{"/a$", "/a$", ""},
		{"~/$XDG_STATE_HOME", "/home/alice/home/alice/.state", ""},
		{"relative", "relative", ""},
		{"", "", ""},
		{"$NOPE/x", "", "$NOPE is not set"},
		{"${NOPE}", "", "$NOPE is not set"},
		{"${HOME", "", "unterminated"},
		{"${1X}", "", "invalid variable name"},
		{"~bob/Mail", "", "cannot expand ~bob"},
	}
	for _, tt := range tests {
		got, err := ExpandPath(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ExpandPath(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ExpandPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ExpandPath("~/x", Env{}); err == nil {
		t.Error("~ expanded without a home")
	}
}

func TestDefaultPaths(t *testing.T) {
	tests := []struct {
		env         Env
		conf, state string
	}{
		{Env{Home: "/h"}, "/h/.config/popfetch/config.toml", "/h/.local/state/popfetch"},
		{Env{Home: "/h", XDGConfigHome: "/c", XDGStateHome: "/s"}, "/c/popfetch/config.toml", "/s/popfetch"},
		{Env{Home: "/h", XDGConfigHome: "rel", XDGStateHome: "rel"}, "/h/.config/popfetch/config.toml", "/h/.local/state/popfetch"},
		{Env{XDGConfigHome: "/c", XDGStateHome: "/s"}, "/c/popfetch/config.toml", "/s/popfetch"},
		{Env{}, "", ""},
	}
	for _, tt := range tests {
		if got := DefaultPath(tt.env); got != tt.conf {
			t.Errorf("DefaultPath(%+v) = %q, want %q", tt.env, got, tt.conf)
		}
		if got := DefaultStateDir(tt.env); got != tt.state {
			t.Errorf("DefaultStateDir(%+v) = %q, want %q", tt.env, got, tt.state)
		}
	}
}

func testEnv() Env {
	vars := map[string]string{
		"HOME": "/home/alice", "MAILROOT": "/srv/mail", "EMPTY": "",
		"XDG_STATE_HOME": "/home/alice/.state",
	}
	return Env{
		Home:         "/home/alice",
		XDGStateHome: "/home/alice/.state",
		LookupEnv:    func(n string) (string, bool) { v, ok := vars[n]; return v, ok },
	}
}

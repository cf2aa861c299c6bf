package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env is the part of the environment the configuration depends on. Load
// uses OSEnv; tests build their own, so they never see the real one.
type Env struct {
	Home          string // $HOME, for ~
	XDGConfigHome string // $XDG_CONFIG_HOME
	XDGStateHome  string // $XDG_STATE_HOME
	// LookupEnv looks up $VAR and ${VAR} in paths. When it is nil or does
	// not know HOME, XDG_CONFIG_HOME or XDG_STATE_HOME, the fields above
	// answer for those (when not empty).
	LookupEnv func(name string) (string, bool)
}

// OSEnv returns the process environment.
func OSEnv() Env {
	return Env{
		Home:          os.Getenv("HOME"),
		XDGConfigHome: os.Getenv("XDG_CONFIG_HOME"),
		XDGStateHome:  os.Getenv("XDG_STATE_HOME"),
		LookupEnv:     os.LookupEnv,
	}
}

func (env Env) lookup(name string) (string, bool) {
	if env.LookupEnv != nil {
		if v, ok := env.LookupEnv(name); ok {
			return v, true
		}
	}
	var v string
	switch name {
	case "HOME":
		v = env.Home
	case "XDG_CONFIG_HOME":
		v = env.XDGConfigHome
	case "XDG_STATE_HOME":
		v = env.XDGStateHome
	}
	return v, v != ""
}

// DefaultPath returns the configuration file used without -c:
// $XDG_CONFIG_HOME/popfetch/config.toml, else ~/.config/popfetch/config.toml.
// As the XDG base directory spec asks, a relative $XDG_CONFIG_HOME is
// ignored. It returns "" when neither that nor $HOME is set.
func DefaultPath(env Env) string {
	return xdgDir(env.XDGConfigHome, env.Home, ".config", "popfetch", "config.toml")
}

// DefaultStateDir returns the state directory of accounts that do not set
// state_dir: $XDG_STATE_HOME/popfetch, else ~/.local/state/popfetch. Like
// DefaultPath it ignores a relative $XDG_STATE_HOME and returns "" when
// there is no home.
func DefaultStateDir(env Env) string {
	return xdgDir(env.XDGStateHome, env.Home, filepath.Join(".local", "state"), "popfetch")
}

func xdgDir(xdg, home, fallback string, elem ...string) string {
	if filepath.IsAbs(xdg) {
		return filepath.Join(append([]string{xdg}, elem...)...)
	}
	if home == "" {
		return ""
	}
	return filepath.Join(append([]string{home, fallback}, elem...)...)
}

// ExpandPath expands a leading ~ or ~/ to env.Home, and $VAR and ${VAR}
// anywhere, and cleans the result. An undefined variable is an error that
// names it; ~user is not supported. A $ not followed by a name is kept.
func ExpandPath(path string, env Env) (string, error) {
	var b strings.Builder
	rest := path
	if rest == "~" || strings.HasPrefix(rest, "~/") {
		if env.Home == "" {
			return "", errors.New("cannot expand ~: $HOME is not set")
		}
		b.WriteString(env.Home)
		rest = rest[1:]
	} else if strings.HasPrefix(rest, "~") {
		user, _, _ := strings.Cut(rest, "/")
		return "", fmt.Errorf("cannot expand %s: only ~ and ~/ are supported (write the full path)", user)
	}
	for {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i+1:]
		var name string
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", errors.New("unterminated ${ in path")
			}
			name = rest[1:end]
			rest = rest[end+1:]
			if !isVarName(name) {
				return "", fmt.Errorf("invalid variable name ${%s}", name)
			}
		} else {
			n := 0
			for n < len(rest) && isVarByte(rest[n], n == 0) {
				n++
			}
			if n == 0 {
				b.WriteByte('$')
				continue
			}
			name, rest = rest[:n], rest[n:]
		}
		v, ok := env.lookup(name)
		if !ok {
			return "", fmt.Errorf("$%s is not set", name)
		}
		b.WriteString(v)
	}
	if b.Len() == 0 {
		return "", nil
	}
	return filepath.Clean(b.String()), nil
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isVarByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

func isVarByte(c byte, first bool) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// maxFileSize bounds what Load reads: a configuration is a few kilobytes,
// and a mistaken -c /dev/zero must not eat the memory.
const maxFileSize = 4 << 20

// Load reads and checks the configuration file at path ("" means
// DefaultPath), with the process environment for ~ and $VAR and the file's
// permissions for the password check. A file owned by another user (but
// root) or writable by group or others is refused before it is read. Every
// problem, including a file that cannot be read, is returned in an *Errors;
// errors.Is(err, fs.ErrNotExist) tells a missing file.
func Load(path string) (*Config, error) {
	env := OSEnv()
	if path == "" {
		path = DefaultPath(env)
		if path == "" {
			return nil, &Errors{List: []Error{{File: "config.toml", Msg: "no configuration file: $HOME is not set (use -c FILE)"}}}
		}
	}
	fail := func(msg string, err error) (*Config, error) {
		return nil, &Errors{List: []Error{{File: path, Msg: msg, Err: err}}}
	}
	f, err := os.Open(path)
	if err != nil {
		return fail("cannot read: "+errorReason(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("cannot read: "+errorReason(err), err)
	}
	if fi.IsDir() {
		return fail("cannot read: is a directory", nil)
	}
	if msg := unsafeFile(path, fi); msg != "" {
		return fail(msg, nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fail("cannot read: "+errorReason(err), err)
	}
	if len(data) > maxFileSize {
		return fail(fmt.Sprintf("larger than %d bytes: is this the configuration file?", maxFileSize), nil)
	}
	return Parse(path, data, env, FileMode(fi.Mode()))
}

// unsafeFile says why a configuration file cannot be trusted, or "". The
// configuration runs commands as the user (password_command,
// oauth_token_command, mda), so whoever can change it can act as the user:
// like fetchmail and OpenSSH, refuse a file that another user owns (root
// excepted, who can do anything anyway) or that group or others can write.
// Read bits matter only for a password, and are checked with it.
func unsafeFile(path string, fi fs.FileInfo) string {
	const why = "whoever can change it can run commands as you (password_command, mda)"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Getuid(); int(st.Uid) != uid && st.Uid != 0 {
			return fmt.Sprintf("owned by uid %d, not by you (uid %d): %s; "+
				"use a copy of your own: cp %s NEWFILE && chmod 600 NEWFILE", st.Uid, uid, why, path)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("writable by group or others (mode %04o): %s; chmod 600 %s", perm, why, path)
	}
	return ""
}

// errorReason is err without the path that *fs.PathError repeats.
func errorReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Option adjusts Parse.
type Option func(*options)

type options struct {
	mode     fs.FileMode
	haveMode bool
}

// FileMode gives Parse the permissions of the file the data was read from,
// so it refuses a password that group or others can read (CONTRACT §2).
// Without it Parse cannot tell and does not check.
func FileMode(mode fs.FileMode) Option {
	return func(o *options) { o.mode, o.haveMode = mode, true }
}

// Parse checks the configuration data, read from path (used only in
// messages), expanding paths with env. It returns the accounts with every
// default applied, or an *Errors with every problem found, in line order.
func Parse(path string, data []byte, env Env, opts ...Option) (*Config, error) {
	p := &parser{file: path, env: env}
	for _, o := range opts {
		o(&p.opts)
	}
	src := string(data)
	p.kl = scanLines(src)
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		p.syntaxError(src, err)
		return nil, p.result()
	}
	cfg := p.config(raw)
	if err := p.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxError reports what toml.Decode said, unless the line holds a
// password, which its message might quote.
func (p *parser) syntaxError(src string, err error) {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		p.errorf(0, "%v", err)
		return
	}
	line := pe.Position.Line
	msg := tidyMessage(pe.Message)
	if p.kl.inValueOf(line, isSecretKey) || strings.Contains(strings.ToLower(lineOf(src, line)), "password") {
		msg = "in or near a password (details not shown, to keep it secret)"
	}
	p.errorf(line, "syntax error: %s", msg)
}

// tidyMessage makes the TOML library's message look like ours: lower case
// and no final period.
func tidyMessage(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if len(s) > 1 && 'A' <= s[0] && s[0] <= 'Z' && 'a' <= s[1] && s[1] <= 'z' {
		s = string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// lineOf returns line n (1-based) of src.
func lineOf(src string, n int) string {
	for i := 1; i < n; i++ {
		_, rest, ok := strings.Cut(src, "\n")
		if !ok {
			return ""
		}
		src = rest
	}
	l, _, _ := strings.Cut(src, "\n")
	return l
}

type parser struct {
	file string
	env  Env
	opts options
	kl   *keyLines
	errs []Error
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// result returns the problems found, in line order without repeats, or nil.
func (p *parser) result() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	var list []Error
	seen := make(map[string]bool)
	for _, e := range p.errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			list = append(list, e)
		}
	}
	return &Errors{List: list}
}

// Select returns the accounts named, in configuration order, or all of
// them when names is empty. Names not in the configuration are an
// *UnknownAccountError.
func (c *Config) Select(names []string) ([]*Account, error) {
	if len(names) == 0 {
		return c.Accounts, nil
	}
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	var out []*Account
	known := make([]string, 0, len(c.Accounts))
	for _, a := range c.Accounts {
		known = append(known, a.Name)
		if want[a.Name] {
			out = append(out, a)
			delete(want, a.Name)
		}
	}
	if len(want) > 0 {
		e := &UnknownAccountError{Known: known, File: c.Path}
		for _, n := range names {
			if want[n] {
				delete(want, n)
				e.Names = append(e.Names, n)
				e.Hints = append(e.Hints, closest(n, known))
			}
		}
		return nil, e
	}
	return out, nil
}

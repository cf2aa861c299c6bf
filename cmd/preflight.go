package cmd

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/deliver"
)

// preflight looks at what an account's configuration names on this
// machine — files, directories, programs — the way a fetch will use them,
// so that config check finds what a fetch would fail on, and a fetch
// fails on it before connecting, both saying the same (CONTRACT §3:
// config check checks what a fetch would hit). Problems stop the account;
// warnings are for config check only: valid, probably not meant.
func preflight(a *config.Account) (problems, warnings []finding) {
	bad := func(key, format string, args ...any) {
		problems = append(problems, finding{key, fmt.Sprintf(format, args...)})
	}
	if a.TLSCAFile != "" {
		if msg := checkCAFile(a.TLSCAFile); msg != "" {
			bad("tls_ca_file", "tls_ca_file %s", msg)
		}
	}
	if a.Deliver.MDA != "" {
		if msg := checkMDA(a.Deliver.MDA); msg != "" {
			bad("deliver.mda", "mda %s", msg)
		}
	}
	if a.Deliver.Mbox != "" {
		if msg := checkMbox(a.Deliver.Mbox); msg != "" {
			bad("deliver.mbox", "mbox %s", msg)
		}
	}
	if a.Deliver.Maildir != "" {
		if msg := checkMaildir(a.Deliver.Maildir); msg != "" {
			bad("deliver.maildir", "maildir %s", msg)
		}
	}
	var unsafe *engine.ConfigError
	if a.StateDir != "" && errors.As(engine.CheckStateDir(a.StateDir), &unsafe) {
		// others could make a fetch delete mail unread (exit 78 too)
		bad("state_dir", "%s", unsafe.Msg)
	} else if a.StateDir != "" {
		// A state dir that cannot be written (read-only, or full) is no
		// configuration problem of a fetch: it delivers nothing and exits
		// 74 naming the directory (CONTRACT §5). config check says so.
		if msg := checkDirToBe(a.StateDir); msg != "" && !notWritable(a.StateDir) {
			bad("state_dir", "state_dir %s", msg)
		} else if msg != "" {
			warnings = append(warnings, finding{"state_dir", fmt.Sprintf("state_dir %s: a fetch would deliver nothing", msg)})
		}
	}
	// A port that does not fit the TLS mode (pop3s is 995, pop3 110):
	// a fetch stops at once, saying what the port speaks.
	switch {
	case a.Port == 995 && a.TLS != config.TLSImplicit:
		warnings = append(warnings, finding{"port", fmt.Sprintf("port 995 is the port of implicit TLS (pop3s), not of tls = %q: set tls = \"implicit\"", a.TLS)})
	case a.Port == 110 && a.TLS == config.TLSImplicit:
		warnings = append(warnings, finding{"port", "port 110 is the port of POP3 without TLS (STLS), not of implicit TLS: set tls = \"starttls\""})
	}
	return problems, warnings
}

// finding is a problem of an account, about one of its keys.
type finding struct {
	key string // "tls_ca_file", "deliver.mbox", ...
	msg string
}

// oneOffFlag names the flag of a one-off fetch that sets a key.
var oneOffFlag = map[string]string{
	"tls_ca_file": "--tls-ca-file", "deliver.mda": "--mda", "deliver.mbox": "--mbox",
	"deliver.maildir": "--maildir", "state_dir": "the state directory", "port": "--port",
}

// preflightError returns the problems of the account as one error: for a
// configured account, a *config.Errors of FILE:LINE lines (exit 78), for
// a one-off one a usage error naming the flags (64); nil without any.
func preflightError(a *config.Account, problems []finding) error {
	if len(problems) == 0 {
		return nil
	}
	if isOneOff(a) {
		var msgs []string
		for _, p := range problems {
			msgs = append(msgs, oneOffFlag[p.key]+": "+p.msg)
		}
		return usageError{err: errors.New(strings.Join(msgs, "\n"))}
	}
	errs := &config.Errors{}
	for _, p := range problems {
		errs.List = append(errs.List, findingError(a, p))
	}
	return errs
}

// findingError is f as a FILE:LINE line of the account's configuration.
func findingError(a *config.Account, f finding) config.Error {
	return config.Error{File: a.File, Line: a.Line(f.key), Msg: fmt.Sprintf("account %q: %s", a.Name, f.msg)}
}

// checkCAFile returns what is wrong with a tls_ca_file, or "".
func checkCAFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("%s: %s%s", path, errReason(err), didYouMean(path))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Sprintf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return ""
}

// checkMDA returns what is wrong with an mda command, or "": a command
// that does not split, or a program that is not there.
func checkMDA(command string) string {
	_, err := deliver.NewMDA(command, deliver.MDAOptions{})
	if err == nil {
		return ""
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		if errors.Is(ee.Err, exec.ErrNotFound) && !strings.Contains(ee.Name, "/") {
			return fmt.Sprintf("program %q is not in $PATH (%s)%s", ee.Name, os.Getenv("PATH"), didYouMeanProgram(ee.Name))
		}
		return fmt.Sprintf("program %s: %s%s", ee.Name, errReason(ee.Err), didYouMean(ee.Name))
	}
	var de *deliver.Error
	if errors.As(err, &de) {
		return fmt.Sprintf("%q: %v", command, de.Err)
	}
	return fmt.Sprintf("%q: %v", command, err)
}

// checkMbox returns what is wrong with an mbox path, or "": popfetch
// creates the file, not the directory it goes in.
func checkMbox(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Sprintf("%s is a directory, not a file (for a Maildir, write maildir =)", path)
	case err == nil:
		return ""
	case !missing(err):
		return fmt.Sprintf("%s: %s", path, errReason(err))
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	switch {
	case missing(err):
		return fmt.Sprintf("%s: the directory %s does not exist (popfetch creates the mbox file, not directories)%s", path, dir, didYouMean(dir))
	case err != nil:
		return fmt.Sprintf("%s: %s", path, errReason(err))
	case !di.IsDir():
		return fmt.Sprintf("%s: %s is not a directory", path, dir)
	}
	if unix.Access(dir, unix.W_OK) != nil {
		return fmt.Sprintf("%s: cannot create it: the directory %s is not writable", path, dir)
	}
	return ""
}

// checkMaildir returns what is wrong with a maildir path, or "": it is
// created if missing, but a directory that is there, not empty, and has
// none of cur, new and tmp is something else, which a delivery would
// fill with those.
func checkMaildir(path string) string {
	fi, err := os.Stat(path)
	switch {
	case missing(err):
		return checkDirToBe(path)
	case err != nil:
		return fmt.Sprintf("%s: %s", path, errReason(err))
	case !fi.IsDir():
		return fmt.Sprintf("%s is a file, not a directory (for an mbox file, write mbox =)", path)
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return fmt.Sprintf("%s: %s", path, errReason(err))
	}
	if len(ents) == 0 {
		return ""
	}
	for _, e := range ents {
		if e.IsDir() && (e.Name() == "cur" || e.Name() == "new" || e.Name() == "tmp") {
			return ""
		}
	}
	return fmt.Sprintf("%s is a directory of %d entries that is not a Maildir (it has none of cur, new and tmp): "+
		"popfetch would deliver among them; give a new or empty directory, or the Maildir itself", path, len(ents))
}

// checkDirToBe returns what stops a directory that popfetch creates from
// being created or used, or "": a part of the path that is a file, or a
// parent that is not writable.
func checkDirToBe(path string) string {
	p := path
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Sprintf("%s: %s is a file, not a directory", path, p)
		case err == nil && p == path:
			if unix.Access(p, unix.W_OK|unix.X_OK) != nil {
				return fmt.Sprintf("%s is not writable", path)
			}
			return ""
		case err == nil:
			if unix.Access(p, unix.W_OK|unix.X_OK) != nil {
				return fmt.Sprintf("%s: cannot create it: %s is not writable", path, p)
			}
			return ""
		case !missing(err):
			return fmt.Sprintf("%s: %s", path, errReason(err))
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		p = parent
	}
}

// notWritable reports whether the directory path, or its nearest
// existing parent, exists as a directory and only cannot be written.
func notWritable(path string) bool {
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			return fi.IsDir() && unix.Access(p, unix.W_OK|unix.X_OK) != nil
		}
		if !missing(err) || filepath.Dir(p) == p {
			return false
		}
	}
}

// missing reports whether a stat failed because the path, or a directory
// on the way to it, is not there (ENOTDIR: a file where a directory was
// to be, which checkDirToBe then names).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}

// errReason is err without the path that *fs.PathError repeats.
func errReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// didYouMean returns " (did you mean PATH?)" for a path that does not
// exist when a name close to its first missing part is there, else "".
func didYouMean(path string) string {
	p := filepath.Clean(path)
	var rest []string
	for {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
	if len(rest) == 0 {
		return ""
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return ""
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	near := config.Closest(rest[0], names)
	if near == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", filepath.Join(append([]string{p, near}, rest[1:]...)...))
}

// didYouMeanProgram returns " (did you mean NAME?)" for a program name
// not in $PATH when one close to it is, else "".
func didYouMeanProgram(name string) string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		names := make([]string, len(ents))
		for i, e := range ents {
			names[i] = e.Name()
		}
		if near := config.Closest(name, names); near != "" {
			return fmt.Sprintf(" (did you mean %s?)", near)
		}
	}
	return ""
}

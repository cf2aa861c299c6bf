package cmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/oauth"
)

// What popfetch keeps in the OS keyring, all under the service
// keyringService ("popfetch"), KEY being the mailbox's identity,
// config.Account.Key() (USER@HOST, or USER@HOST:PORT on a port that is not
// the standard one of its TLS mode):
//
//	KEY                      the account's password (CONTRACT §2; `password set`)
//	oauth:KEY                the OAuth2 refresh token (`oauth login`)
//	oauth-client-secret:KEY  the OAuth2 client secret, for clients that have one
//
// An account whose mailbox an older popfetch knew as USER@HOST
// (config.Account.AdoptKey) also finds its secrets under that name, until
// they are stored again under KEY.

// oauthRefreshKey is the keyring key of an account's refresh token.
func oauthRefreshKey(a *config.Account) string { return "oauth:" + a.Key() }

// oauthSecretKey is the keyring key of an account's OAuth2 client secret.
func oauthSecretKey(a *config.Account) string { return "oauth-client-secret:" + a.Key() }

// legacyKey is the key that prefix+a.Key() had before the port was part
// of the identity, when the account adopts that identity; else "".
func legacyKey(prefix string, a *config.Account) string {
	if a.AdoptKey == "" {
		return ""
	}
	return prefix + a.AdoptKey
}

// errNoSessionBus is the keyring's state under cron: there is no session
// bus to reach it on.
var errNoSessionBus = errors.New("no D-Bus session (cron?): the keyring cannot be reached")

// errKeyringLocked is a Secret Service whose keyring is locked: unlocking
// needs a prompt on the desktop, which nobody answers under cron.
var errKeyringLocked = errors.New("the keyring is locked (it unlocks when you log in to the desktop, " +
	"or with your keyring manager): popfetch does not wait for an unlock prompt")

// keyringUnavailable is a keyring that could not be used at all (no
// session bus, no Secret Service on it, a locked or broken keyring):
// popfetch's environment is not set up for it, a configuration problem
// (exit 78, like a credential found nowhere).
func keyringUnavailable(err error) error {
	msg := "the OS keyring is not available"
	if !errors.Is(err, errNoSessionBus) && !errors.Is(err, errKeyringLocked) {
		msg += " (popfetch uses the Secret Service over D-Bus, e.g. gnome-keyring or KeePassXC)"
	}
	return &credentialError{msg: msg, err: err, keyring: true}
}

// keyringTimeout bounds a keyring lookup: a Secret Service can wait for
// an unlock prompt that nobody answers, and go-keyring has no way to give
// up. keyringReady finds a locked keyring before, so this is the last
// resort.
const keyringTimeout = 15 * time.Second

// keyringGet returns the secret under key, "" if there is none, or the
// error of keyringUnavailable.
func keyringGet(key string) (string, error) {
	if err := keyringReady(); err != nil {
		return "", keyringUnavailable(err)
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := keyring.Get(keyringService, key)
		done <- result{v, err}
	}()
	var v string
	var err error
	select {
	case r := <-done:
		v, err = r.v, r.err
	case <-time.After(keyringTimeout):
		err = fmt.Errorf("no answer from the Secret Service in %v: is the keyring locked?", keyringTimeout)
	}
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return "", nil
	case err != nil:
		return "", keyringUnavailable(err)
	}
	return v, nil
}

// keyringLookup returns the secret under key, else under legacy (unless
// "").
func keyringLookup(key, legacy string) (string, error) {
	v, err := keyringGet(key)
	if err != nil || v != "" || legacy == "" {
		return v, err
	}
	return keyringGet(legacy)
}

// keyringSet stores secret under key.
func keyringSet(key, secret string) error {
	if err := keyringReady(); err != nil {
		return keyringUnavailable(err)
	}
	if err := keyring.Set(keyringService, key, secret); err != nil {
		return keyringUnavailable(err)
	}
	return nil
}

// keyringDelete removes key; found says whether there was anything to
// remove.
func keyringDelete(key string) (found bool, err error) {
	if err := keyringReady(); err != nil {
		return false, keyringUnavailable(err)
	}
	err = keyring.Delete(keyringService, key)
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return false, nil
	case err != nil:
		return false, keyringUnavailable(err)
	}
	return true, nil
}

// keyringStore is the OS keyring as the oauth package's Store: the
// refresh token is read under its key, else under legacy (unless ""), and
// always written under its key.
type keyringStore struct{ legacy string }

func (s keyringStore) Get(key string) (string, error) {
	v, err := keyringLookup(key, s.legacy)
	if err == nil && v == "" {
		return "", oauth.ErrNotFound
	}
	return v, err
}

func (keyringStore) Set(key, value string) error { return keyringSet(key, value) }

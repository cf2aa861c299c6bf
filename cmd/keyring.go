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
// keyringService ("popfetch"):
//
//	USER@HOST                      the account's password (CONTRACT §2; `password set`)
//	oauth:USER@HOST                the OAuth2 refresh token (`oauth login`)
//	oauth-client-secret:USER@HOST  the OAuth2 client secret, for clients that have one
//
// USER@HOST is config.Account.Key().

// oauthRefreshKey is the keyring key of an account's refresh token.
func oauthRefreshKey(a *config.Account) string { return "oauth:" + a.Key() }

// oauthSecretKey is the keyring key of an account's OAuth2 client secret.
func oauthSecretKey(a *config.Account) string { return "oauth-client-secret:" + a.Key() }

// keyringUnavailable is a keyring that could not be used at all (no
// Secret Service on the session bus, a locked or broken keyring):
// popfetch's environment is not set up for it, a configuration problem
// (exit 78, like a credential found nowhere).
func keyringUnavailable(err error) error {
	return &credentialError{msg: "the OS keyring is not available (popfetch uses the Secret Service " +
		"over D-Bus, e.g. gnome-keyring or KeePassXC)", err: err}
}

// keyringTimeout bounds a keyring lookup: a locked keyring makes the
// Secret Service wait for an unlock prompt that nobody answers under cron,
// and go-keyring has no way to give up.
const keyringTimeout = 15 * time.Second

// keyringGet returns the secret under key, "" if there is none, or the
// error of keyringUnavailable.
func keyringGet(key string) (string, error) {
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

// keyringSet stores secret under key.
func keyringSet(key, secret string) error {
	if err := keyring.Set(keyringService, key, secret); err != nil {
		return keyringUnavailable(err)
	}
	return nil
}

// keyringDelete removes key; found says whether there was anything to
// remove.
func keyringDelete(key string) (found bool, err error) {
	err = keyring.Delete(keyringService, key)
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return false, nil
	case err != nil:
		return false, keyringUnavailable(err)
	}
	return true, nil
}

// keyringStore is the OS keyring as the oauth package's Store.
type keyringStore struct{}

func (keyringStore) Get(key string) (string, error) {
	v, err := keyringGet(key)
	if err == nil && v == "" {
		return "", oauth.ErrNotFound
	}
	return v, err
}

func (keyringStore) Set(key, value string) error { return keyringSet(key, value) }

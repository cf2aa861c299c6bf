//go:build !darwin && !windows

package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// On Linux and the BSDs the OS keyring is the Secret Service on the D-Bus
// session bus. go-keyring reaches it through godbus, which, when it finds
// no session bus, autolaunches one with dbus-launch: a dbus-daemon, and a
// gnome-keyring-daemon activated on it, that outlive popfetch — two more
// every run under cron — and the lookup fails anyway, since that keyring
// is not the user's. CONTRACT §2: popfetch never starts a bus or a keyring
// daemon. So before go-keyring is used, keyringReady finds the session bus
// the way libdbus does, without launching anything, makes sure a Secret
// Service is there and its keyring unlocked, and pins the address in the
// environment, so that godbus uses that bus and never looks for another.

// Secret Service names (freedesktop.org Secret Service API 0.2).
const (
	secretsName       = "org.freedesktop.secrets"
	secretsPath       = "/org/freedesktop/secrets"
	secretsCollection = "org.freedesktop.Secret.Collection"
	// go-keyring keeps its items in the "login" collection, else in the
	// one the "default" alias names.
	loginCollection   = secretsPath + "/collection/login"
	defaultCollection = secretsPath + "/aliases/default"
)

// keyringCheckTimeout bounds the D-Bus calls of keyringReady: a bus that
// accepts connections but does not answer is a broken session.
const keyringCheckTimeout = 5 * time.Second

// keyringReady returns nil when go-keyring can be used now without
// starting anything or waiting for a prompt, else why not:
// errNoSessionBus, errKeyringLocked, or what failed on the bus.
func keyringReady() error {
	addr, err := sessionBusAddress(os.Getenv, os.Getuid())
	if err != nil {
		return err
	}
	// godbus reads the address from here; set, it never autolaunches.
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	ctx, cancel := context.WithTimeout(context.Background(), keyringCheckTimeout)
	defer cancel()
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: cannot connect to the session bus %s: %v", errNoSessionBus, addr, err)
	}
	defer conn.Close()
	if err := secretServiceThere(ctx, conn); err != nil {
		return err
	}
	return keyringUnlocked(ctx, conn)
}

// sessionBusAddress finds the session bus as libdbus and sd-bus do, and
// never autolaunches one: $DBUS_SESSION_BUS_ADDRESS, else the socket
// $XDG_RUNTIME_DIR/bus (or /run/user/UID/bus without XDG_RUNTIME_DIR),
// which a systemd user session provides. An address that names a socket
// file that is not there is no session either: a bus that has ended.
func sessionBusAddress(getenv func(string) string, uid int) (string, error) {
	addr := getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		dir := getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			dir = "/run/user/" + strconv.Itoa(uid)
		}
		sock := filepath.Join(dir, "bus")
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			return "", errNoSessionBus
		}
		return "unix:path=" + dbus.EscapeBusAddressValue(sock), nil
	}
	for _, a := range strings.Split(addr, ";") {
		if a == "" {
			continue
		}
		transport, params, _ := strings.Cut(a, ":")
		if transport == "autolaunch" {
			// godbus would run dbus-launch for it.
			return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS is %q, which would start a new bus", errNoSessionBus, addr)
		}
		if transport != "unix" {
			return addr, nil
		}
		for _, kv := range strings.Split(params, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "path" {
				continue
			}
			p, err := dbus.UnescapeBusAddressValue(v)
			if err != nil {
				p = v
			}
			if _, err := os.Stat(p); err == nil {
				return addr, nil
			}
			return "", fmt.Errorf("%w: the bus of DBUS_SESSION_BUS_ADDRESS (%s) is gone", errNoSessionBus, p)
		}
		return addr, nil // an abstract socket: only connecting tells
	}
	return "", errNoSessionBus
}

// secretServiceThere reports an error unless a Secret Service runs on the
// bus, or the bus can start one (D-Bus activation: the session's own bus
// starts it, as a desktop does at login).
func secretServiceThere(ctx context.Context, conn *dbus.Conn) error {
	bus := conn.BusObject()
	var owned bool
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned); err != nil {
		return fmt.Errorf("asking the session bus for the Secret Service: %w", err)
	}
	if owned {
		return nil
	}
	var names []string
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		return fmt.Errorf("asking the session bus for the Secret Service: %w", err)
	}
	for _, n := range names {
		if n == secretsName {
			return nil
		}
	}
	return errors.New("no Secret Service on the session bus (start gnome-keyring, KeePassXC or another one)")
}

// keyringUnlocked reports errKeyringLocked when the collection go-keyring
// uses is locked. A collection that does not exist yet is left to
// go-keyring, which creates it.
func keyringUnlocked(ctx context.Context, conn *dbus.Conn) error {
	for _, path := range []dbus.ObjectPath{loginCollection, defaultCollection} {
		var v dbus.Variant
		err := conn.Object(secretsName, path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0,
			secretsCollection, "Locked").Store(&v)
		if err != nil {
			continue // no such collection: try the next
		}
		if locked, ok := v.Value().(bool); ok && locked {
			return errKeyringLocked
		}
		return nil
	}
	return nil
}

//go:build !darwin && !windows

package cmd

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestKeyringLocked: a locked keyring is reported as such at once, with
// exit 78, instead of waiting for an unlock prompt nobody answers.
func TestKeyringLocked(t *testing.T) {
	if !withSecretService(t) {
		return
	}
	e := newCLIEnv(t)
	a := e.addAccount(&cliAccount{name: "work", user: "erin"}, "pw")
	a.mb.Add(testMessage(1))
	withStdin(t, "pw\n", func() { e.mustRun(0, "password", "set", "work") })

	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(secretsName, secretsPath).Call("org.freedesktop.Secret.Service.Lock", 0,
		[]dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	if err != nil || len(locked) != 1 {
		t.Fatalf("locking the keyring: %v (locked %v, prompt %v)", err, locked, prompt)
	}

	_, errs := e.mustRun(exitConfig, "fetch")
	if !strings.Contains(errs, "popfetch: work: error: no password for "+e.key(a)+": the keyring is locked") {
		t.Errorf("fetch said:\n%s", errs)
	}
	if n := e.delivered(a); n != 0 {
		t.Errorf("%d delivered", n)
	}
}

// TestSessionBusAddress: the bus is found as libdbus finds it, and never
// by anything that would start one.
func TestSessionBusAddress(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" for errNoSessionBus
	}{
		{"address", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + sock + ",guid=1"}, "unix:path=" + sock + ",guid=1"},
		{"abstract", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:abstract=/tmp/dbus-x"}, "unix:abstract=/tmp/dbus-x"},
		{"tcp", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "tcp:host=127.0.0.1,port=1"}, "tcp:host=127.0.0.1,port=1"},
		{"socket gone", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + filepath.Join(empty, "bus")}, ""},
		{"autolaunch", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "autolaunch:"}, ""},
		{"runtime dir", map[string]string{"XDG_RUNTIME_DIR": dir}, "unix:path=" + sock},
		{"empty runtime dir", map[string]string{"XDG_RUNTIME_DIR": empty}, ""},
	} {
		got, err := sessionBusAddress(func(k string) string { return tc.env[k] }, 4242)
		switch {
		case tc.want == "" && !errors.Is(err, errNoSessionBus):
			t.Errorf("%s: %q, %v; want errNoSessionBus", tc.name, got, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

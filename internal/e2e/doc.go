// Package e2e holds popfetch's end-to-end tests: the real binary, built
// once per test run, against a real Dovecot started by the tests on
// loopback (internal/dovecottest), with real delivery targets, read back by
// independent readers.
package e2e

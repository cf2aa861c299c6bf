#!/bin/sh
# Builds the release binaries twice (make dist), checks that each is what
# its name says with file(1), static where the system allows it, and that
# both builds are the same bytes: anyone can rebuild a release from its
# commit and compare. OpenBSD and macOS take system calls only through
# their libc, so Go links it there (no cgo all the same); elsewhere the
# binaries are static.
set -eu
cd "$(dirname "$0")/.."
a=$(mktemp -d) b=$(mktemp -d) cache=$(mktemp -d)
trap 'rm -rf "$a" "$b" "$cache"' EXIT

make -s dist DIST="$a" >/dev/null
# a second build from an empty build cache: nothing may come from the first
GOCACHE="$cache" make -s dist DIST="$b" >/dev/null

fail=0
for bin in "$a"/popfetch-*; do
  name=$(basename "$bin")
  os=$(echo "$name" | sed 's/.*-\([a-z]*\)-\([a-z0-9]*\)$/\1/')
  arch=$(echo "$name" | sed 's/.*-\([a-z]*\)-\([a-z0-9]*\)$/\2/')
  case $os in
    linux)   want_os='ELF 64-bit LSB executable.*statically linked';;
    freebsd) want_os='ELF 64-bit LSB executable.*FreeBSD.*statically linked';;
    openbsd) want_os='ELF 64-bit LSB executable.*OpenBSD.*interpreter /usr/libexec/ld.so';;
    netbsd)  want_os='ELF 64-bit LSB executable.*NetBSD.*statically linked';;
    darwin)  want_os='Mach-O 64-bit';;
    *) echo "dist-check: $name: unknown system" >&2; fail=1; continue;;
  esac
  case $os/$arch in
    darwin/amd64) want_arch='x86_64';;
    darwin/arm64) want_arch='arm64';;
    */amd64)      want_arch='x86-64';;
    */arm64)      want_arch='ARM aarch64';;
  esac
  desc=$(file -b "$bin")
  if echo "$desc" | grep -q "$want_os" && echo "$desc" | grep -q "$want_arch"; then
    echo "ok   $name: $desc"
  else
    echo "FAIL $name: $desc (want /$want_os/ and /$want_arch/)" >&2
    fail=1
  fi
done
if ! file -b "$a/popfetch.1" | grep -q '^troff or preprocessor input'; then
  echo "FAIL popfetch.1: $(file -b "$a/popfetch.1")" >&2
  fail=1
fi
if cmp -s "$a/SHA256SUMS" "$b/SHA256SUMS"; then
  echo "ok   two builds are the same bytes:"
  cat "$a/SHA256SUMS"
else
  echo "FAIL two builds differ:" >&2
  diff "$a/SHA256SUMS" "$b/SHA256SUMS" >&2 || true
  fail=1
fi
exit $fail

#!/bin/sh
# Installs what `make test` needs and is missing, on Debian or Ubuntu:
# the real peers the tests run against (see README "Tests"). It is quick
# when everything is there: it only looks for files.
#
#   as root            apt-get install
#   with sudo -n       sudo apt-get install (no password prompt)
#   otherwise          prints the command to run, exits 1
#
# POPFETCH_SKIP_DEPS=1 skips it (a machine set up some other way).
set -eu

[ "${POPFETCH_SKIP_DEPS:-0}" = 1 ] && exit 0

# package: a file it installs that the tests use
need=""
want() { # PACKAGE FILE...
  pkg=$1; shift
  for f in "$@"; do
    if [ ! -e "$f" ]; then need="$need $pkg"; return; fi
  done
}
want dovecot-core      /usr/sbin/dovecot
want dovecot-pop3d     /usr/lib/dovecot/pop3
want dovecot-lmtpd     /usr/lib/dovecot/lmtp
want dovecot-sieve     /usr/lib/dovecot/modules/lib90_sieve_plugin.so
want mailutils-pop3d   /usr/sbin/pop3d
want openssl           /usr/bin/openssl   # hashes mailutilstest's passwords
want postfix           /usr/sbin/smtp-sink
want procmail          /usr/bin/procmail /usr/bin/formail
want mutt              /usr/bin/mutt
want python3           /usr/bin/python3
want ca-certificates   /etc/ssl/certs/ca-certificates.crt
want gnome-keyring     /usr/bin/gnome-keyring-daemon
want dbus              /usr/bin/dbus-run-session
want dbus-x11          /usr/bin/dbus-launch
want libsecret-tools   /usr/bin/secret-tool
want gcc               /usr/bin/gcc   # cgo, for go test -race
want libc6-dev         /usr/include/stdio.h
want file              /usr/bin/file
want util-linux        /usr/bin/setpriv /usr/bin/script /usr/bin/unshare
want fish              /usr/bin/fish  # its completion script is tested in fish itself
want fetchmail         /usr/bin/fetchmail  # config import checked against their own readers
want mpop              /usr/bin/mpop
want groff-base        /usr/bin/groff  # reads the manual page, warnings are errors
# Courier's POP3 server (internal/couriertest): its authdaemond, userdb and
# couriertcpd/couriertls are installed (the tests never use the system
# authdaemond that Debian may start: each test server has its own)...
want courier-base           /usr/sbin/couriertcpd /usr/bin/couriertls
want courier-authlib-userdb /usr/sbin/makeuserdb /usr/lib/courier-authlib/libauthuserdb.so.0
want courier-authdaemon     /usr/lib/courier/courier-authlib/authdaemond /etc/courier/authdaemonrc
# ...but courier-pop itself would remove dovecot-pop3d and mailutils-pop3d
# (all three provide and conflict with pop3-server), so its package is only
# unpacked, as the user running the tests, where couriertest looks for it.
courier_pop="${XDG_CACHE_HOME:-$HOME/.cache}/popfetch-test/courier-pop"
unpack_courier_pop() {
  [ -n "${COURIER_POP3_DIR:-}" ] && return 0
  for d in /usr/lib/courier/courier "$courier_pop/usr/lib/courier/courier"; do
    [ -e "$d/courierpop3login" ] && return 0
  done
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download courier-pop >/dev/null 2>&1); then
    rm -rf "$tmp"
    echo "test-deps: could not download the courier-pop package (apt-get download courier-pop; apt-get update first?)" >&2
    return 1
  fi
  rm -rf "$courier_pop.new"
  mkdir -p "$courier_pop.new"
  dpkg-deb -x "$tmp"/courier-pop_*.deb "$courier_pop.new"
  rm -rf "$tmp" "$courier_pop"
  mv "$courier_pop.new" "$courier_pop"
  echo "test-deps: unpacked courier-pop into $courier_pop" >&2
}

if [ -z "$need" ]; then
  unpack_courier_pop
  exit
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing:$need" >&2
  echo "test-deps: this is not Debian or Ubuntu: install the equivalents, then run make test again" >&2
  echo "test-deps: (or POPFETCH_SKIP_DEPS=1 make test to try without them)" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  echo "test-deps: the tests need these Debian packages:$need" >&2
  echo "test-deps: install them as root, then run make test again:" >&2
  echo "  sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$need'" >&2
  exit 1
fi

echo "test-deps: installing$need" >&2
# postfix is wanted for its smtp-sink program only: no mail system is set up.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections 2>/dev/null || true
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
unpack_courier_pop

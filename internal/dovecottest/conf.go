package dovecottest

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// identity says which system users the private dovecot runs as.
type identity struct {
	root bool
	// internal runs auth, anvil, stats ...; login runs pop3-login.
	internalUser, loginUser string
	internalGroup           string // "" = dovecot's default (group dovecot)
	// mail processes and the Maildir files
	uid, gid int
}

// lookupIdentity picks the users for the current process. As root (CI) it
// uses the accounts the Debian package creates: mail and internal processes
// run as "dovecot", login processes as "dovenull" (dovecot refuses to access
// mail as root). As any other user everything runs as that user, which
// dovecot allows for an unprivileged master (no chroot, no setuid).
func lookupIdentity() (identity, error) {
	if os.Geteuid() == 0 {
		dc, err := user.Lookup("dovecot")
		if err != nil {
			return identity{}, fmt.Errorf("running as root needs the system user \"dovecot\" (created by the dovecot-core package): %v", err)
		}
		if _, err := user.Lookup("dovenull"); err != nil {
			return identity{}, fmt.Errorf("running as root needs the system user \"dovenull\" (created by the dovecot-core package): %v", err)
		}
		uid, err1 := strconv.Atoi(dc.Uid)
		gid, err2 := strconv.Atoi(dc.Gid)
		if err1 != nil || err2 != nil {
			return identity{}, fmt.Errorf("user dovecot has a non-numeric uid/gid %q/%q", dc.Uid, dc.Gid)
		}
		return identity{root: true, internalUser: "dovecot", loginUser: "dovenull", uid: uid, gid: gid}, nil
	}
	u, err := user.Current()
	if err != nil {
		return identity{}, fmt.Errorf("cannot determine the current user (dovecot needs a user name for default_internal_user): %v", err)
	}
	if _, err := user.Lookup(u.Username); err != nil {
		return identity{}, fmt.Errorf("current uid %d has no passwd entry; dovecot needs one to run unprivileged: %v", os.Getuid(), err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		return identity{}, fmt.Errorf("current gid %d has no group entry; dovecot needs one to run unprivileged: %v", os.Getgid(), err)
	}
	return identity{internalUser: u.Username, loginUser: u.Username, internalGroup: g.Name, uid: os.Getuid(), gid: os.Getgid()}, nil
}

// confParams is everything the configuration depends on.
type confParams struct {
	dir                string // the server's private directory
	instance           string
	plainPort, tlsPort int
	lmtpPort           int // 0: no LMTP
	id                 identity
	mechanisms         []string
	verbose            bool
	extra              []string
}

// quoteConf quotes a value for dovecot.conf. Paths made by os.MkdirTemp are
// plain, but TMPDIR may contain spaces.
func quoteConf(s string) string {
	if strings.ContainsAny(s, " \t\"#\\") {
		return strconv.Quote(s)
	}
	return s
}

func renderConf(p confParams) string {
	q := func(parts ...string) string { return quoteConf(strings.Join(parts, "")) }
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Private dovecot for one Go test, written by internal/dovecottest. Loopback only.")
	// Everything dovecot writes lives in the private directory; the unique
	// instance name keeps doveadm/log prefixes apart from any other dovecot.
	w("instance_name = %s", p.instance)
	w("base_dir = %s", q(p.dir, "/run"))
	w("state_dir = %s", q(p.dir, "/state"))
	w("log_path = %s", q(p.dir, "/dovecot.log"))
	w("info_log_path = %s", q(p.dir, "/dovecot.log"))
	if p.lmtpPort != 0 {
		w("protocols = pop3 lmtp")
	} else {
		w("protocols = pop3")
	}
	w("listen = 127.0.0.1")
	w("shutdown_clients = yes")
	// No connections to the stats service: otherwise a login process that is
	// still in its stats handshake at shutdown waits 5 s for a stats process
	// that is already gone, and every test would take 5 s longer.
	w("stats_writer_socket_path =")
	w("")
	w("ssl = yes")
	w("ssl_cert = <%s", q(p.dir, "/ssl/server.pem"))
	w("ssl_key = <%s", q(p.dir, "/ssl/server.key"))
	w("ssl_min_protocol = TLSv1.2")
	w("")
	// USER/PASS and SASL PLAIN/LOGIN also on the plain port before STLS, so a
	// client's tls = "none" mode can be tested (over loopback only).
	w("disable_plaintext_auth = no")
	// "apop" makes pop3-login put the <timestamp> into the greeting.
	w("auth_mechanisms = %s", strings.Join(p.mechanisms, " "))
	// Tests of wrong passwords should not sleep: no fixed delay after a
	// failure (see also Server.disablePenalty).
	w("auth_failure_delay = 0")
	w("auth_verbose = yes")
	w("auth_verbose_passwords = no")
	w("auth_cache_size = 0")
	if p.verbose {
		w("auth_debug = yes")
		w("mail_debug = yes")
		w("verbose_ssl = yes")
	}
	w("")
	// One passwd-file per user: dovecot stats a passwd-file at most once a
	// second, so a user added to a shared file right after a login would be
	// unknown for up to a second; a new user's file has never been read.
	// {PLAIN.b64} passwords: any byte (':' too) survives the passwd-file
	// format, and dovecot can still hand out the plaintext that APOP and
	// CRAM-MD5 need.
	w("passdb {")
	w("  driver = passwd-file")
	w("  args = username_format=%%u %s", q(p.dir, "/passwd/%u"))
	w("}")
	w("userdb {")
	w("  driver = passwd-file")
	w("  args = username_format=%%u %s", q(p.dir, "/passwd/%u"))
	w("}")
	w("")
	w("mail_location = maildir:%s", q(p.dir, "/mail/%u/Maildir"))
	w("mail_uid = %d", p.id.uid)
	w("mail_gid = %d", p.id.gid)
	w("first_valid_uid = %d", min(p.id.uid, 1))
	w("first_valid_gid = %d", min(p.id.gid, 1))
	// A throw-away server need not survive a power cut: no fsyncs of its
	// index and UID list files (message files are written by Populate).
	w("mail_fsync = never")
	w("default_internal_user = %s", p.id.internalUser)
	w("default_login_user = %s", p.id.loginUser)
	if p.id.internalGroup != "" {
		w("default_internal_group = %s", p.id.internalGroup)
	}
	w("")
	w("service pop3-login {")
	w("  inet_listener pop3 {")
	w("    address = 127.0.0.1")
	w("    port = %d", p.plainPort)
	w("  }")
	w("  inet_listener pop3s {")
	w("    address = 127.0.0.1")
	w("    port = %d", p.tlsPort)
	w("    ssl = yes")
	w("  }")
	if !p.id.root {
		w("  chroot =")
	}
	w("}")
	if !p.id.root {
		// An unprivileged master can neither chroot nor change users.
		w("service anvil {")
		w("  chroot =")
		w("}")
	}
	w("protocol pop3 {")
	// UIDL = UID and UIDVALIDITY in hex: stable across sessions, new for
	// every message added, all different after ResetUIDs.
	w("  pop3_uidl_format = %%08Xu%%08Xv")
	w("  mail_max_userip_connections = 100")
	w("  pop3_client_workarounds =")
	w("}")
	if p.lmtpPort != 0 {
		renderLMTP(w, p)
	}
	for _, e := range p.extra {
		w("%s", e)
	}
	return b.String()
}

// renderLMTP serves LMTP (dovecot-lmtpd) into the users' Maildirs, on a
// loopback port and on the socket run/lmtp, with each user's Sieve script
// (dovecot-sieve; see SetSieve). Dovecot adds a Return-Path field with the
// envelope sender to each message, and nothing else: no Received, no
// Delivered-To.
func renderLMTP(w func(string, ...any), p confParams) {
	q := func(parts ...string) string { return quoteConf(strings.Join(parts, "")) }
	w("")
	w("service lmtp {")
	w("  inet_listener lmtp {")
	w("    address = 127.0.0.1")
	w("    port = %d", p.lmtpPort)
	w("  }")
	w("  unix_listener lmtp {")
	w("    mode = 0666")
	w("  }")
	w("}")
	w("postmaster_address = postmaster@localhost")
	w("lmtp_add_received_header = no")
	w("lmtp_hdr_delivery_address = none")
	// fileinto "Folder" creates the folder
	w("lda_mailbox_autocreate = yes")
	w("protocol lmtp {")
	w("  mail_plugins = $mail_plugins sieve")
	w("}")
	w("plugin {")
	w("  sieve = file:%s", q(p.dir, "/mail/%u/active.sieve"))
	w("}")
}

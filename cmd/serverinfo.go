package cmd

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/cmd/internal/termsafe"
	"github.com/popfetch/popfetch/pop3"
)

// serverinfoOptions are serverinfo's arguments.
type serverinfoOptions struct {
	account string
	oneOff  oneOffOptions
	now     func() time.Time // nil: time.Now
}

// serverinfo's exit statuses: it never logs in, so never 77.
const serverinfoExitHelp = `
EXIT STATUS
   0   the server answered, and its certificate is trusted (or tls = "none")
   64  bad command line
   69  server unreachable, TLS handshake failed, certificate not trusted or
       not the pinned one (it is shown all the same, marked NOT TRUSTED), or
       tls = "starttls" and the server offers no STLS
   75  the server said IN-USE, LOGIN-DELAY or SYS/TEMP in its greeting
   76  the server broke the protocol
   78  configuration error`

func serverinfoCommand(g *globalOptions) *cli.Command {
	o := &serverinfoOptions{}
	return &cli.Command{
		Name:      "serverinfo",
		Usage:     "show a server's greeting, capabilities, TLS and certificate, without logging in",
		ArgsUsage: "ACCOUNT | --host HOST [--port PORT] [--tls MODE]",
		Description: "Connects to the account's server the way fetch does (tls, tls_ca_file,\n" +
			"tls_fingerprint), asks for its capabilities and quits, without logging in\n" +
			"and without looking up a password. It prints the greeting, the capabilities\n" +
			"(before and after STLS with tls = \"starttls\"), the SASL mechanisms, the TLS\n" +
			"version and cipher suite, and the certificate's subject, issuer, expiry and\n" +
			"SHA-256 fingerprint as a tls_fingerprint line ready to paste into the account.\n" +
			"A certificate that is not trusted is read over a second connection without\n" +
			"verification, on which nothing but CAPA and QUIT is sent, and shown marked\n" +
			"NOT TRUSTED so that you can compare its fingerprint with one obtained another\n" +
			"way before pinning it. With --host instead of ACCOUNT it probes a server\n" +
			"that is not in the configuration.",
		Flags:              append(o.oneOff.identityFlags("probe"), o.oneOff.trustFlags()...),
		OnUsageError:       onUsageError,
		CustomHelpTemplate: cli.CommandHelpTemplate + serverinfoExitHelp + "\n",
		Action: func(c *cli.Context) error {
			o.oneOff.read(c)
			oneOff, err := o.oneOff.active(c.Args().Slice())
			if err != nil {
				return err
			}
			if !oneOff && c.NArg() != 1 {
				return usageError{err: errors.New("serverinfo takes exactly one ACCOUNT, or --host HOST")}
			}
			o.account = c.Args().First()
			return runServerinfo(c.Context, g, o)
		},
	}
}

// runServerinfo probes one account's server and prints what it learned.
func runServerinfo(ctx context.Context, g *globalOptions, o *serverinfoOptions) error {
	a, err := o.oneOff.resolve(g, o.account, false)
	if err != nil {
		return err
	}
	var trace *slog.Logger
	if g.verbose >= 2 {
		trace = g.logger().With("account", a.Name)
	}
	info, err := engine.Probe(ctx, a, trace)
	now := time.Now
	if o.now != nil {
		now = o.now
	}
	if info != nil {
		writeServerInfo(g.stdout, a, info, now())
	}
	if err == nil {
		return nil
	}
	if info != nil && info.Untrusted != nil {
		printError(g.stderr, a.Name, fmt.Errorf("the certificate of %s is NOT TRUSTED: %s", a.Host, untrustedReason(info.Untrusted)))
		fmt.Fprintf(g.stderr, "popfetch: hint: it was read over a second connection without verification, on which nothing but CAPA and QUIT was sent\n")
		if isOneOff(a) {
			fmt.Fprintf(g.stderr, "popfetch: hint: if its fingerprint is the one your provider publishes, give it with --tls-fingerprint, or its CA with --tls-ca-file\n")
		} else {
			fmt.Fprintf(g.stderr, "popfetch: hint: if its fingerprint is the one your provider publishes, add the tls_fingerprint line above to the account, or give its CA in tls_ca_file\n")
		}
	} else {
		printError(g.stderr, a.Name, err)
	}
	return reportedError{err}
}

// untrustedReason is the verification failure without the layers of
// "TLS handshake" around it.
func untrustedReason(err error) string {
	var pin *engine.PinError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &pin):
		return pin.Error()
	case errors.As(err, &verr):
		return verr.Err.Error()
	}
	return err.Error()
}

// writeServerInfo prints the probe's findings, one "key: value" a line,
// then the tls_fingerprint line to paste. Nearly every value is the
// server's or its certificate's word, and is escaped (termsafe).
func writeServerInfo(w io.Writer, a *config.Account, info *engine.ServerInfo, now time.Time) {
	line := func(key, format string, args ...any) {
		fmt.Fprintf(w, "%-22s %s\n", key+":", termsafe.Escape(fmt.Sprintf(format, args...)))
	}
	line("account", "%s", a.Name)
	line("server", "%s (connected to %s)", net.JoinHostPort(a.Host, strconv.Itoa(a.Port)), info.Addr)
	line("tls mode", "%s", a.TLS)
	line("greeting", "+OK %s", info.Greeting)
	if a.TLS == config.TLSStartTLS {
		line("capabilities (plain)", "%s", capsList(info.CapsBeforeTLS))
		if info.TLS != nil {
			line("capabilities (TLS)", "%s", capsList(info.Caps))
		}
	} else {
		line("capabilities", "%s", capsList(info.Caps))
	}
	caps := info.Caps
	if caps == nil {
		caps = info.CapsBeforeTLS
	}
	if mechs := caps.Args("SASL"); len(mechs) > 0 {
		line("sasl mechanisms", "%s", strings.Join(mechs, " "))
	} else {
		line("sasl mechanisms", "none listed")
	}
	if info.APOP {
		line("apop", "offered (the greeting has a timestamp)")
	} else {
		line("apop", "not offered")
	}
	if info.TLS == nil {
		if a.TLS == config.TLSNone {
			line("tls", "none: the connection is not encrypted")
		}
		return
	}
	cs := info.TLS
	line("tls version", "%s", tls.VersionName(cs.Version))
	line("cipher suite", "%s", tls.CipherSuiteName(cs.CipherSuite))
	if len(cs.PeerCertificates) == 0 {
		line("certificate", "none sent")
		return
	}
	leaf := cs.PeerCertificates[0]
	switch {
	case info.Untrusted != nil:
		line("certificate", "NOT TRUSTED: %s", untrustedReason(info.Untrusted))
	case a.TLSFingerprint != "":
		line("certificate", "trusted: it matches tls_fingerprint")
	case a.TLSCAFile != "":
		line("certificate", "trusted: verified against the system roots and %s", a.TLSCAFile)
	default:
		line("certificate", "trusted: verified against the system roots")
	}
	line("subject", "%s", leaf.Subject)
	line("issuer", "%s", leaf.Issuer)
	if names := certNames(leaf); names != "" {
		line("names", "%s", names)
	}
	line("not before", "%s", leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	line("not after", "%s (%s)", leaf.NotAfter.UTC().Format(time.DateTime+" MST"), daysLeft(leaf.NotAfter, now))
	if n := len(cs.PeerCertificates); n > 1 {
		line("chain", "%d certificates sent", n)
	}
	sum := sha256.Sum256(leaf.Raw)
	fp := "sha256:" + hex.EncodeToString(sum[:])
	line("sha-256 fingerprint", "%s", fp)
	fmt.Fprintln(w)
	if info.Untrusted != nil {
		fmt.Fprintln(w, "# NOT TRUSTED: pin it only if this fingerprint is the one your provider publishes:")
	} else {
		fmt.Fprintln(w, "# to pin this certificate, add to the account:")
	}
	fmt.Fprintf(w, "tls_fingerprint = %q\n", fp)
}

// capsList lists capabilities in alphabetical order, each with its
// arguments.
func capsList(caps pop3.Caps) string {
	if caps == nil {
		return "none (the server does not answer CAPA)"
	}
	items := make([]string, 0, len(caps))
	for name, args := range caps {
		items = append(items, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	}
	sort.Strings(items)
	return strings.Join(items, ", ")
}

// certNames lists the DNS names and IP addresses a certificate is for.
func certNames(c *x509.Certificate) string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return strings.Join(names, ", ")
}

// daysLeft says how long a certificate remains valid.
func daysLeft(notAfter, now time.Time) string {
	d := notAfter.Sub(now)
	days := int(d / (24 * time.Hour))
	switch {
	case d < 0 && days == 0:
		return "EXPIRED less than a day ago"
	case d < 0:
		return fmt.Sprintf("EXPIRED %d days ago", -days)
	case days == 1:
		return "1 day left"
	}
	return fmt.Sprintf("%d days left", days)
}

package engine

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/popfetch/popfetch/cmd/internal/config"
	"github.com/popfetch/popfetch/pop3"
)

// receivedHeader builds the Received: field prepended to each message
// (RFC 5322 §3.6.7 trace field): the server and its address, this host,
// the protocol and TLS version, the account, and the time.
type receivedHeader struct {
	head string // everything before the date
	buf  bytes.Buffer
	rd   bytes.Reader
}

func newReceivedHeader(a *config.Account, c *pop3.Client, version string) receivedHeader {
	local, err := os.Hostname()
	if err != nil || local == "" {
		local = "localhost"
	}
	ip := ""
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip = ta.IP.String()
	}
	with := "POP3"
	if cs, ok := c.TLSConnectionState(); ok {
		with += " (" + tlsVersion(cs.Version) + ")"
	}
	prog := "popfetch"
	if version != "" {
		prog += " " + version
	}
	h := "Received: from " + clean(a.Host) + " (" + clean(a.Host) + " [" + ip + "])\n" +
		"\tby " + clean(local) + " (" + clean(prog) + ") with " + with + "\n" +
		"\tfor <" + clean(a.User) + "> (account " + clean(a.Name) + ");\n\t"
	return receivedHeader{head: h}
}

// reader returns the field for a message delivered at t. The reader is
// valid until the next call.
func (h *receivedHeader) reader(t time.Time) io.Reader {
	h.buf.Reset()
	h.buf.WriteString(h.head)
	h.buf.WriteString(t.Format(time.RFC1123Z))
	h.buf.WriteByte('\n')
	h.rd.Reset(h.buf.Bytes())
	return &h.rd
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return tls.VersionName(v)
}

// clean keeps a value on one line of printable characters.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' || r == '<' || r == '>' || r == ';' {
			return '_'
		}
		return r
	}, s)
}

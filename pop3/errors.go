package pop3

import (
	"errors"
	"fmt"
	"strings"
)

// ResponseCode is an extended response code of RFC 2449 §8, such as IN-USE.
// It is found in brackets at the start of the text of a -ERR response.
type ResponseCode string

// Response codes defined by RFC 2449 §8.1 and RFC 3206.
const (
	CodeInUse      ResponseCode = "IN-USE"      // the maildrop is locked by another session
	CodeLoginDelay ResponseCode = "LOGIN-DELAY" // logging in again this soon is not allowed
	CodeSysTemp    ResponseCode = "SYS/TEMP"    // a temporary failure on the server
	CodeSysPerm    ResponseCode = "SYS/PERM"    // a permanent failure on the server
	CodeAuth       ResponseCode = "AUTH"        // the credentials were rejected
)

// Error is a -ERR response of the server.
type Error struct {
	// Command is the command word that was refused, e.g. "PASS". Arguments are
	// never recorded, so an Error never holds a secret.
	Command string
	// Code is the extended response code, or "" if there was none. For a
	// hierarchical code such as SYS/TEMP this is the whole code.
	Code ResponseCode
	// Text is the rest of the server's text, without the code.
	Text string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3: server refused ")
	b.WriteString(e.Command)
	if e.Code != "" {
		b.WriteString(" [")
		b.WriteString(string(e.Code))
		b.WriteString("]")
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// Temporary reports whether trying again later may succeed: the response
// code was IN-USE, LOGIN-DELAY or SYS/TEMP.
func (e *Error) Temporary() bool {
	switch e.Code {
	case CodeInUse, CodeLoginDelay, CodeSysTemp:
		return true
	}
	return false
}

// ProtocolError reports a response that breaks the protocol: garbage instead
// of +OK or -ERR, an over-long line, a malformed listing. After a
// ProtocolError the client is broken.
type ProtocolError struct {
	Command string // the command whose response was bad, "" for the greeting
	Msg     string
}

func (e *ProtocolError) Error() string {
	if e.Command == "" {
		return "pop3: protocol error in greeting: " + e.Msg
	}
	return "pop3: protocol error in response to " + e.Command + ": " + e.Msg
}

var (
	// ErrClosed is returned by calls on a client that was closed or has quit.
	ErrClosed = errors.New("pop3: client closed")
	// ErrNoSTLS is returned by DialStartTLS and StartTLS when the server does
	// not list STLS among its capabilities. Nothing is sent in the clear after
	// the capability query.
	ErrNoSTLS = errors.New("pop3: server does not offer STLS")
	// ErrNotTLS is wrapped in the *TLSError of DialTLS when the server
	// answered the TLS handshake with a POP3 greeting: the port speaks
	// POP3 without TLS (STLS, or none), not implicit TLS.
	ErrNotTLS = errors.New("the server sent a POP3 greeting, not a TLS handshake: this port does not speak TLS from the first byte")
	// ErrImplicitTLS is returned by Dial and DialStartTLS when no greeting
	// came within a second and a TLS handshake with the same address, on
	// a second connection, succeeded: the port speaks TLS from the first
	// byte (RFC 8314, as port 995 does), and would never greet in plain
	// text.
	ErrImplicitTLS = errors.New("pop3: the server speaks TLS from the first byte (implicit TLS): no greeting in plain text")
	// ErrBodySkipped is returned by Body when the message was read and
	// discarded because a later command's response was waited for first,
	// and by the Read of a message reader whose rest was discarded so.
	ErrBodySkipped = errors.New("pop3: message body was skipped")
	// ErrBadArgument is returned, without sending anything, for a command
	// argument holding CR, LF or NUL, or a message number below 1.
	ErrBadArgument = errors.New("pop3: argument not allowed")
)

// protoErrorf returns a ProtocolError for the command.
func protoErrorf(cmd, format string, args ...any) *ProtocolError {
	return &ProtocolError{Command: cmd, Msg: fmt.Sprintf(format, args...)}
}

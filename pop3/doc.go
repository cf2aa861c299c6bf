// Package pop3 is a POP3 client.
//
// It implements:
//   - RFC 1939: Post Office Protocol - Version 3 (USER, PASS, APOP, STAT, LIST,
//     UIDL, RETR, TOP, DELE, NOOP, RSET, QUIT)
//   - RFC 2449: POP3 Extension Mechanism (CAPA, PIPELINING, extended response codes)
//   - RFC 2595: Using TLS with IMAP, POP3 and ACAP (STLS)
//   - RFC 3206: The SYS and AUTH POP Response Codes
//   - RFC 5034: The POP3 SASL Authentication Mechanism (AUTH)
//   - RFC 6856: POP3 Support for UTF-8 (UTF8)
//   - RFC 8314: Use of TLS for Email Submission and Access (implicit TLS)
//
// # Commands are handles
//
// Every command method sends the command (or queues it, see below) and
// returns at once with a handle; the handle's Wait (or Body, for RETR and TOP)
// blocks until the server's response arrives. Responses are consumed strictly
// in the order the commands were issued: waiting on a command first consumes
// the responses of every command issued before it. A message body that was
// not read by the time a later response is needed is read and discarded.
//
// When the server listed PIPELINING in its last CAPA response (RFC 2449 §6.6),
// up to Options.Window commands are on the wire at once, written by a separate
// goroutine so that a long pipeline cannot deadlock on full TCP buffers.
// Otherwise the same calls run lock-step: a command is written only once the
// response to the previous one has been consumed, so a strict server never
// sees a command early. Calling code is the same in both cases.
//
// # Errors
//
// A -ERR response is returned as *Error, which carries the command name, the
// RFC 2449/3206 response code and the server's text. A response that cannot
// be parsed is a *ProtocolError. So are responses that no command asked
// for, which would put every later response against the wrong command: the
// client looks for them whenever every command sent has had its answer, and
// refuses a message that begins with a status line. After an I/O error, a
// timeout or a protocol error the client is broken: every later call
// returns the same error and Close sends nothing. Quit is the only way to commit deletions (RFC 1939 §6);
// Close drops the connection and commits nothing.
//
// # Limits
//
// What a server sends is bounded where it is kept in memory: a status,
// CAPA, LIST or UIDL line to 8 KiB, a listing to a million lines and
// Options.MaxListing octets, a UID to Options.MaxUID octets (RFC 1939 §7
// allows 70). Going past a bound is a *ProtocolError. Message bodies are
// streamed to the caller and not bounded.
//
// # Timeouts
//
// Connecting, the TLS handshake and each write must finish within
// Options.Timeout. While waiting for responses, each Timeout of waiting
// must bring the end of a response or Options.MinProgress octets, so a
// slow but moving transfer survives, and a server that stalls or trickles
// bytes to hold the session open fails in time. Close may be called from
// any goroutine to abort every blocked call, reads and writes alike.
//
// A Client is not safe for concurrent use, except for Close.
package pop3

package pop3

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

type cmdKind int

const (
	kindSingle cmdKind = iota // a status line
	kindList                  // a status line, then lines until "." handed to onLine
	kindBody                  // a status line, then a message read by the caller
)

// Command is a command that was issued and whose response may not have been
// read yet. Wait waits for it.
type Command struct {
	c      *Client
	name   string // the command word, for errors
	wire   []byte // the line as sent
	trace  string // the line as traced, secrets replaced
	kind   cmdKind
	onLine func(line []byte) error

	done bool       // the whole response has been consumed
	st   status     // the status line, once read
	err  error      // the outcome, once done
	body *dotReader // kindBody: open after +OK until the terminator
}

// issue queues a command, and sends it when pipelining or lock-step allow.
func (c *Client) issue(kind cmdKind, trace string, name string, args ...string) *Command {
	cmd := &Command{c: c, name: name, trace: trace, kind: kind}
	for _, a := range args {
		if err := checkArg(a); err != nil {
			cmd.done, cmd.err = true, fmt.Errorf("%s: %w", name, err)
			return cmd
		}
	}
	line := name
	if len(args) > 0 {
		line += " " + strings.Join(args, " ")
	}
	if cmd.trace == "" {
		cmd.trace = line
	}
	cmd.wire = []byte(line + "\r\n")
	if err := c.err(); err != nil {
		cmd.done, cmd.err = true, err
		return cmd
	}
	c.queue = append(c.queue, cmd)
	c.pump()
	return cmd
}

// pump hands queued commands to the writer: up to the window when the
// server pipelines (RFC 2449 §6.6), else only when nothing is outstanding.
func (c *Client) pump() {
	for c.sent < len(c.queue) {
		if c.Pipelining() {
			if c.sent >= c.window {
				return
			}
		} else if c.sent > 0 {
			return
		}
		cmd := c.queue[c.sent]
		c.sent++
		c.traceC(cmd.trace)
		c.w.send(cmd.wire)
	}
}

// complete ends the command at the head of the queue. It returns the
// error of unasked if it found the responses out of step.
func (c *Client) complete(cmd *Command, err error) error {
	c.dc.progress()
	cmd.done = true
	if cmd.err == nil {
		cmd.err = err
	}
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.sent--
	if c.sent == 0 {
		// nothing is on the wire unanswered
		if perr := c.unasked(cmd.name); perr != nil {
			// This response may well be one the server sent unasked,
			// and the real one what is left: trust neither.
			cmd.err = perr
			return perr
		}
	}
	c.pump()
	return nil
}

// unasked breaks the client if bytes have arrived that no command asked
// for. RFC 1939 §3: every response answers a command, in the order sent;
// once every command sent has had its answer, anything more is a response
// to nothing, and the responses read so far may have been taken for the
// wrong commands. Lock-step, that is after every response; pipelining,
// whenever the pipeline drains. Such a desync is caught here when the
// extra bytes have arrived by the time the last answer is read, as they do
// from a server that answers twice in one go; the other check is at the
// start of a message (see readResponse).
func (c *Client) unasked(cmd string) error {
	if n := c.br.Buffered(); n > 0 && c.err() == nil {
		return c.ioError("", protoErrorf(cmd, "%d octets arrived that no command asked for: "+
			"the server's responses are out of step with the commands", n))
	}
	return nil
}

// await reads responses in order until cmd's status line has been read
// (and, unless it is a message, its whole response).
func (c *Client) await(cmd *Command) error {
	for !cmd.done && !(cmd.body != nil) {
		if err := c.err(); err != nil {
			return err
		}
		head := c.queue[0]
		if head.body != nil {
			// an earlier message was not read to its end: discard the rest
			head.body.skipped = true
			if err := head.body.drain(); err != nil {
				return err
			}
			continue
		}
		if err := c.readResponse(head); err != nil {
			return err
		}
		if head != cmd && head.body != nil {
			head.err = ErrBodySkipped
		}
	}
	return nil
}

// readResponse reads the status line of the command at the head of the
// queue and, for a list, the lines that follow. A message body is left for
// the caller to read.
func (c *Client) readResponse(cmd *Command) error {
	line, err := readLine(c.br, cmd.name)
	if err != nil {
		return c.ioError("reading response to "+cmd.name, err)
	}
	c.traceS(line)
	st, err := parseStatus(line, cmd.name)
	if err != nil {
		return c.ioError("", err)
	}
	cmd.st = st
	if !st.ok {
		c.complete(cmd, &Error{Command: cmd.name, Code: st.code, Text: st.text})
		return nil
	}
	switch cmd.kind {
	case kindSingle:
		c.complete(cmd, nil)
	case kindList:
		n := 0
		octets := int64(len(line) + 2)
		for {
			line, err := readLine(c.br, cmd.name)
			if err != nil {
				return c.ioError("reading response to "+cmd.name, err)
			}
			if isTerminator(line) {
				break
			}
			if n++; n > maxListLines {
				return c.ioError("", protoErrorf(cmd.name, "more than %d lines", maxListLines))
			}
			if octets += int64(len(line) + 2); octets > c.maxList {
				return c.ioError("", protoErrorf(cmd.name, "response longer than %d octets, "+
					"the most accepted (Options.MaxListing)", c.maxList))
			}
			if err := cmd.onLine(unstuff(line)); err != nil {
				return c.ioError("", err)
			}
		}
		if c.log != nil {
			c.log.Debug(fmt.Sprintf("S: (%d lines)", n))
		}
		c.complete(cmd, nil)
	case kindBody:
		cmd.body = newDotReader(c.br, func(err error) {
			if err != nil {
				c.ioError("reading message", err)
			}
			if c.log != nil {
				c.log.Debug(fmt.Sprintf("S: (message of %d octets)", cmd.body.octets))
			}
			if perr := c.complete(cmd, err); perr != nil && err == nil {
				// unasked bytes after the message: it may not be the
				// one asked for, so it must not read as complete
				cmd.body.err = perr
			}
		})
		// RFC 1939 §3: after the status line comes the message. If its
		// first line is a status line too, the server sent a response
		// to a command that was never sent, and this status line was
		// not the answer to this command: the message that follows may
		// be another one. A message from a mail store begins with a
		// header field, never with "+OK" or "-ERR".
		cmd.body.first = func(line []byte) error {
			if _, err := parseStatus(line, cmd.name); err == nil {
				return protoErrorf(cmd.name, "the message begins with a status line %q: "+
					"the server answered a command that was not sent", truncate(line, 40))
			}
			return nil
		}
	}
	return nil
}

// maxListLines bounds the lines of a CAPA, LIST or UIDL response, so that a
// response that never ends cannot exhaust memory: a listing of a million
// messages takes some 50 MB; real maildrops are far smaller. Their octets
// are bounded too (Options.MaxListing), and so is each UID
// (Options.MaxUID).
const maxListLines = 1_000_000

// maxCaps bounds the capabilities of a CAPA response: real servers list a
// dozen or two (RFC 2449 §6).
const maxCaps = 1000

// Wait waits for the command's response and returns nil for +OK, an *Error
// for -ERR, or the error that broke the client. For RETR and TOP it reads
// and discards the message.
func (cmd *Command) Wait() error {
	if cmd.done {
		return cmd.err
	}
	if err := cmd.c.await(cmd); err != nil {
		return err
	}
	if cmd.body != nil && !cmd.done {
		if err := cmd.body.drain(); err != nil {
			return err
		}
	}
	return cmd.err
}

// Text returns the text of the +OK or -ERR line, once Wait has returned.
func (cmd *Command) Text() string { return cmd.st.text }

// Noop sends NOOP.
func (c *Client) Noop() *Command { return c.issue(kindSingle, "", "NOOP") }

// Rset sends RSET: messages marked as deleted are unmarked.
func (c *Client) Rset() *Command { return c.issue(kindSingle, "", "RSET") }

// Dele marks message n as deleted. RFC 1939 §6: the deletion takes effect
// only when Quit succeeds.
func (c *Client) Dele(n int) *Command {
	if n < 1 {
		return badCommand("DELE")
	}
	return c.issue(kindSingle, "", "DELE", strconv.Itoa(n))
}

// User sends USER name.
func (c *Client) User(name string) *Command { return c.issue(kindSingle, "", "USER", name) }

// Pass sends PASS. The password is left out of the trace and of errors.
func (c *Client) Pass(password string) *Command {
	return c.issue(kindSingle, "PASS <redacted>", "PASS", password)
}

// UTF8 asks for UTF-8 mode (RFC 6856 §2): the server then sends each
// message as it stores it, with header fields in UTF-8 (RFC 6532), where
// for a client that did not ask it may convert or wrap a message whose
// header holds 8-bit bytes (Courier's pop3d wraps it in a notice). RFC
// 6856 §2 allows it only in the AUTHORIZATION state, before USER, APOP or
// Auth, and only when CAPA lists UTF8. A -ERR is returned as *Error.
func (c *Client) UTF8() *Command { return c.issue(kindSingle, "", "UTF8") }

func badCommand(name string) *Command {
	return &Command{name: name, done: true, err: fmt.Errorf("%s: %w", name, ErrBadArgument)}
}

// CapaCommand is a CAPA command.
type CapaCommand struct {
	*Command
	caps Caps
}

// Capa asks for the capabilities (RFC 2449 §5). On +OK they replace those
// of Caps, and decide whether later commands are pipelined. A server
// without CAPA answers -ERR, returned as *Error.
func (c *Client) Capa() *CapaCommand {
	cc := &CapaCommand{caps: Caps{}}
	cc.Command = c.issue(kindList, "", "CAPA")
	cc.onLine = func(line []byte) error {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return nil
		}
		if len(cc.caps) >= maxCaps {
			return protoErrorf("CAPA", "more than %d capabilities", maxCaps)
		}
		cc.caps[strings.ToUpper(f[0])] = f[1:]
		return nil
	}
	return cc
}

// Wait returns the capabilities.
func (cc *CapaCommand) Wait() (Caps, error) {
	if err := cc.Command.Wait(); err != nil {
		return nil, err
	}
	cc.c.caps = cc.caps
	return cc.caps, nil
}

// StatCommand is a STAT command.
type StatCommand struct{ *Command }

// Stat asks for the number of messages and their total size.
func (c *Client) Stat() StatCommand { return StatCommand{c.issue(kindSingle, "", "STAT")} }

// Wait returns the number of messages and their size in octets.
func (sc StatCommand) Wait() (count int, size int64, err error) {
	if err := sc.Command.Wait(); err != nil {
		return 0, 0, err
	}
	f := strings.Fields(sc.st.text)
	if len(f) < 2 {
		return 0, 0, sc.c.ioError("", protoErrorf("STAT", "malformed drop listing %q", sc.st.text))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, sc.c.ioError("", protoErrorf("STAT", "malformed drop listing %q", sc.st.text))
	}
	return count, size, nil
}

// MessageInfo is a line of a LIST or UIDL response.
type MessageInfo struct {
	Number int    // the message number, valid for this session only
	Size   int64  // LIST: the size in octets, as the server counts it
	UID    string // UIDL: the unique id, as sent (see ValidUID)
}

// ListCommand is a LIST or UIDL command.
type ListCommand struct {
	*Command
	listing Listing
}

// List asks for the number and size of every message (RFC 1939 §5).
func (c *Client) List() *ListCommand {
	lc := &ListCommand{}
	lc.Command = c.issue(kindList, "", "LIST")
	lc.onLine = func(line []byte) error {
		n, size, err := scanSizeLine("LIST", line)
		if err != nil {
			return err
		}
		lc.listing.addSize(n, size)
		return nil
	}
	return lc
}

// UIDL asks for the unique id of every message (RFC 1939 §7). A UID
// longer than Options.MaxUID, or a listing longer than
// Options.MaxListing, breaks the client with a *ProtocolError.
func (c *Client) UIDL() *ListCommand {
	lc := &ListCommand{listing: Listing{uidl: true}}
	lc.Command = c.issue(kindList, "", "UIDL")
	lc.onLine = func(line []byte) error {
		n, uid, err := c.scanUID(line)
		if err != nil {
			return err
		}
		return lc.listing.addUID(n, uid)
	}
	return lc
}

// UIDLFunc asks for the unique id of every message, as UIDL does, and
// keeps nothing: fn is called for each line as it is read, in the
// server's order, with the message number and the UID, which is valid
// only during the call. It is for callers that keep UIDs their own way,
// such as against a record of those seen before, and would rather not
// hold a second copy of a long listing. If fn returns an error, the rest
// of the listing is read and dropped, the session goes on, and Wait
// returns that error. The bounds of UIDL apply.
func (c *Client) UIDLFunc(fn func(n int, uid []byte) error) *Command {
	cmd := c.issue(kindList, "", "UIDL")
	cmd.onLine = func(line []byte) error {
		n, uid, err := c.scanUID(line)
		if err != nil || cmd.err != nil {
			return err
		}
		cmd.err = fn(n, uid)
		return nil
	}
	return cmd
}

// scanUID parses a line of UIDL within the client's bounds.
func (c *Client) scanUID(line []byte) (int, []byte, error) {
	n, uid, err := scanUIDLine(line)
	if err != nil {
		return 0, nil, err
	}
	if len(uid) > c.maxUID {
		// RFC 1939 §7: a UID is 1 to 70 octets. One far longer
		// serves no purpose but to make the listing eat memory.
		return 0, nil, protoErrorf("UIDL", "unique-id of message %d is %d octets long: "+
			"RFC 1939 §7 allows 70, and no more than %d are accepted (Options.MaxUID)", n, len(uid), c.maxUID)
	}
	return n, uid, nil
}

// Grow reserves room for a listing of about lines messages whose UIDs
// take about uidOctets octets in all (UIDL), so that a long listing is
// read without growing its arrays as it comes. It is a hint: a listing
// longer than that is read all the same. Call it before the response is
// read, that is right after List or UIDL.
func (lc *ListCommand) Grow(lines, uidOctets int) *ListCommand {
	if !lc.done {
		lc.listing.grow(max(lines, 0), max(uidOctets, 0))
	}
	return lc
}

// Wait returns the listing, in the server's order, as a value per
// message. For long listings, Listing costs less.
func (lc *ListCommand) Wait() ([]MessageInfo, error) {
	l, err := lc.Listing()
	if err != nil {
		return nil, err
	}
	return l.All(), nil
}

// Listing waits for the response and returns the listing, in the
// server's order.
func (lc *ListCommand) Listing() (*Listing, error) {
	if err := lc.Command.Wait(); err != nil {
		return nil, err
	}
	lc.listing.done()
	return &lc.listing, nil
}

// parseScanListing parses "n size" (RFC 1939 §5; anything after the size is
// ignored, as the RFC allows).
func parseScanListing(cmd string, line []byte) (MessageInfo, error) {
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return MessageInfo{}, protoErrorf(cmd, "malformed scan listing %q", truncate(line, 80))
	}
	n, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || n < 1 || size < 0 {
		return MessageInfo{}, protoErrorf(cmd, "malformed scan listing %q", truncate(line, 80))
	}
	return MessageInfo{Number: n, Size: size}, nil
}

// parseUIDListing parses "n uid" (RFC 1939 §7); see scanUIDLine.
func parseUIDListing(line []byte) (MessageInfo, error) {
	n, uid, err := scanUIDLine(line)
	if err != nil {
		return MessageInfo{}, err
	}
	return MessageInfo{Number: n, UID: string(uid)}, nil
}

// ValidUID reports whether uid follows RFC 1939 §7: 1 to 70 octets, each in
// the range 0x21 to 0x7E.
func ValidUID(uid string) bool { return validUID([]byte(uid)) }

// RetrCommand is a RETR or TOP command.
type RetrCommand struct{ *Command }

// Retr asks for message n. Read it with Body.
func (c *Client) Retr(n int) RetrCommand {
	if n < 1 {
		return RetrCommand{badCommand("RETR")}
	}
	return RetrCommand{c.issue(kindBody, "", "RETR", strconv.Itoa(n))}
}

// Top asks for the header of message n and the first lines of its body
// (RFC 1939 §7).
func (c *Client) Top(n, lines int) RetrCommand {
	if n < 1 || lines < 0 {
		return RetrCommand{badCommand("TOP")}
	}
	return RetrCommand{c.issue(kindBody, "", "TOP", strconv.Itoa(n), strconv.Itoa(lines))}
}

// Body waits for the status line and returns the message. Reading it
// undoes POP3's byte-stuffing and turns CRLF into LF; every other byte is
// passed on. The reader returns io.EOF at the end of the message and an
// error matching io.ErrUnexpectedEOF if the connection ends first. It is
// valid until it is closed or the response to a later command is waited
// for (the rest is then discarded, and Read returns ErrBodySkipped); its
// Close reads and discards the rest, so the session can go on.
func (rc RetrCommand) Body() (*MessageReader, error) {
	cmd := rc.Command
	if cmd.body == nil {
		if cmd.done {
			return nil, cmd.err
		}
		if err := cmd.c.await(cmd); err != nil {
			return nil, err
		}
		if cmd.body == nil {
			return nil, cmd.err
		}
	}
	if cmd.err != nil {
		return nil, cmd.err
	}
	return &MessageReader{d: cmd.body}, nil
}

// MessageReader reads a message of a RETR or TOP response.
type MessageReader struct{ d *dotReader }

// Read implements io.Reader.
func (m *MessageReader) Read(p []byte) (int, error) { return m.d.Read(p) }

// Close reads and discards the rest of the message. It returns an error if
// the message could not be read to its end.
func (m *MessageReader) Close() error { return m.d.drain() }

// Octets returns the size of the message read so far, counted as the server
// counts it for LIST: each line ending as two octets, byte-stuffing not
// counted.
func (m *MessageReader) Octets() int64 { return m.d.octets }

// Quit ends the session (RFC 1939 §6): the server removes the messages
// marked as deleted and the connection is closed. An error means the
// deletions may not have been committed: a -ERR (returned as *Error), or a
// connection that ended before the answer.
func (c *Client) Quit() error {
	cmd := c.issue(kindSingle, "", "QUIT")
	err := cmd.Wait()
	if err == nil || isRefusal(err) {
		c.fail(ErrClosed)
	}
	c.w.stop()
	return err
}

var _ io.ReadCloser = (*MessageReader)(nil)

package pop3test

import (
	"bufio"
	"bytes"
	"errors"
	"time"
)

// Interrupt breaks off the response to a command (see Faults.Interrupt).
//
// The server sends the first After octets of the response, status line
// included, and flushes them. Then it stalls for Stall, if set; then it
// drops the connection if Drop is set, or else sends Flood again and again
// until the client hangs up, if Flood is set, or else sends the rest of
// the response and goes on as if nothing happened.
//
// A dropped session commits nothing, except that QUIT commits before it
// answers (RFC 1939 §6): interrupting QUIT plays a server whose answer to
// QUIT was lost after the deletions were made, unless Before is set.
type Interrupt struct {
	// Before breaks off before the command is carried out, so it has no
	// effect and its response is empty: with Drop, a QUIT that never
	// reached the UPDATE state.
	Before bool
	// After is the number of octets of the response sent before the fault;
	// beyond the length of the response, the whole response.
	After int
	// Stall is how long to send nothing. Close ends a stall at once.
	Stall time.Duration
	// Drop closes the connection.
	Drop bool
	// Flood is sent as is, without end: give it its own line ending
	// ("1 uid\r\n" for an endless listing), or none for a line that never
	// ends.
	Flood []byte
}

var errDropped = errors.New("dropped")

// interrupt runs do, the normal answer to a command, with its response
// captured, and sends that response broken off as in says.
func (ss *session) interrupt(in *Interrupt, do func() error) error {
	// The responses to earlier commands go out first, whole.
	if err := ss.bw.Flush(); err != nil {
		return err
	}
	out := ss.bw
	var resp bytes.Buffer
	ss.bw = bufio.NewWriter(&resp)
	var err error
	if !in.Before {
		err = do()
	}
	ss.bw.Flush()
	ss.bw = out
	head := resp.Bytes()[:min(max(in.After, 0), resp.Len())]
	out.Write(head)
	if ferr := out.Flush(); ferr != nil {
		return ferr
	}
	if in.Stall > 0 {
		t := time.NewTimer(in.Stall)
		select {
		case <-t.C:
		case <-ss.srv.done:
			t.Stop()
			return errDropped
		}
	}
	switch {
	case in.Drop:
		ss.ended("dropped")
		return errDropped
	case len(in.Flood) > 0:
		for {
			// Ends when the client hangs up or Close drops the connection.
			if _, ferr := out.Write(in.Flood); ferr != nil {
				return ferr
			}
		}
	}
	out.Write(resp.Bytes()[len(head):])
	return err
}

// unsolicited sends the lines that Faults.Unsolicited gives for a command.
func (ss *session) unsolicited(cmd string, args []string) {
	if ss.f.Unsolicited == nil {
		return
	}
	for _, line := range ss.f.Unsolicited(cmd, args) {
		ss.reply(line)
	}
}

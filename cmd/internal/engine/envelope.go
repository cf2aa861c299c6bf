package engine

import (
	"bufio"
	"bytes"
	"io"
)

// headerPeek is how much of a message is looked at for its envelope
// sender: the Return-Path field is at the top of a delivered message.
const headerPeek = 64 << 10

// envelopeReader reads a message through a reused buffer, so its header
// can be looked at before it is delivered, without a copy of the message.
type envelopeReader struct {
	br *bufio.Reader
}

// open wraps body and returns the envelope sender of the message (the
// address of its Return-Path field, "" if none or null) and the reader to
// deliver from.
func (e *envelopeReader) open(body io.Reader) (string, io.Reader) {
	if e.br == nil {
		e.br = bufio.NewReaderSize(body, headerPeek)
	} else {
		e.br.Reset(body)
	}
	head, _ := e.br.Peek(headerPeek) // fewer bytes for a smaller message
	return returnPath(head), e.br
}

// returnPath finds the first Return-Path field of a header (RFC 5322
// §3.6.7) and returns its address without angle brackets.
func returnPath(head []byte) string {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return "" // end of the header
		}
		const name = "return-path:"
		if len(line) < len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
			continue
		}
		v := line[len(name):]
		for len(head) > 0 && (head[0] == ' ' || head[0] == '\t') { // folded
			i := bytes.IndexByte(head, '\n')
			if i < 0 {
				i = len(head) - 1
			}
			v = append(append([]byte(nil), v...), bytes.TrimRight(head[:i], "\r")...)
			head = head[i+1:]
		}
		v = bytes.TrimSpace(v)
		if i := bytes.IndexByte(v, '<'); i >= 0 {
			if j := bytes.IndexByte(v[i:], '>'); j >= 0 {
				v = v[i+1 : i+j]
			}
		}
		return string(bytes.TrimSpace(v))
	}
	return ""
}

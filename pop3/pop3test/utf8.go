package pop3test

import (
	"bytes"
	"fmt"
)

// utf8Boundary separates the parts of a message wrapped for a client that
// did not send UTF8.
const utf8Boundary = "=_pop3test-utf8"

// wireOf returns what RETR and TOP send of m: its bytes as stored or, on a
// server with UTF8 to a session that has not sent UTF8, a message whose
// header holds 8-bit bytes wrapped as Courier's pop3d wraps it for a
// legacy client (see Server.UTF8).
func (ss *session) wireOf(m *Message) []byte {
	if !ss.srv.UTF8 || ss.utf8 || !header8bit(m.Data) {
		return m.wire
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Mail Delivery Subsystem <postmaster>\n"+
		"Subject: Cannot display Unicode content\n"+
		"Mime-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"%s\"\n\n"+
		"--%s\nContent-Type: text/plain\n\n"+
		"This message has 8-bit (UTF-8) header fields, and your mail program did not\n"+
		"ask for them with the UTF8 command of RFC 6856. It is attached as stored.\n\n"+
		"--%s\nContent-Type: message/global\n\n", utf8Boundary, utf8Boundary, utf8Boundary)
	b.Write(m.Data)
	fmt.Fprintf(&b, "\n--%s--\n", utf8Boundary)
	return newMessage(m.UID, b.Bytes()).wire
}

// header8bit reports whether the header of a message (up to its first
// empty line) holds a byte of 0x80 or above.
func header8bit(data []byte) bool {
	end := len(data)
	for _, sep := range [][]byte{[]byte("\n\n"), []byte("\r\n\r\n")} {
		if i := bytes.Index(data, sep); i >= 0 && i < end {
			end = i
		}
	}
	for _, c := range data[:end] {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

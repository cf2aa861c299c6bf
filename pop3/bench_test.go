package pop3_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/pop3"
)

// cannedServer answers RETR with the same pre-rendered message, and every
// other command with +OK, allocating nothing per command, so the
// benchmark's allocations are the client's.
func cannedServer(conn net.Conn, msg []byte) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	bw := bufio.NewWriterSize(conn, 64<<10)
	bw.WriteString("+OK ready\r\n")
	bw.Flush()
	capa := []byte("+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n")
	ok := []byte("+OK\r\n")
	for {
		if br.Buffered() == 0 {
			bw.Flush()
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("RETR")):
			bw.Write(msg)
		case bytes.HasPrefix(line, []byte("CAPA")):
			bw.Write(capa)
		case bytes.HasPrefix(line, []byte("QUIT")):
			bw.Write(ok)
			bw.Flush()
			return
		default:
			bw.Write(ok)
		}
	}
}

// BenchmarkRetrPipelined retrieves 4 KiB messages through a pipelined
// session and reads each to its end with a fixed buffer: the client's cost
// per message, allocations included.
func BenchmarkRetrPipelined(b *testing.B) {
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 70)
	body += ".leading dot, stuffed\r\n"
	msg := []byte("+OK message follows\r\n" + body + ".\r\n")
	client, server := net.Pipe()
	go cannedServer(server, msg)
	c, err := pop3.NewClient(client, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Capa().Wait(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	const ahead = 64
	retrs := make([]pop3.RetrCommand, 0, ahead)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	issued := 0
	for i := 0; i < b.N; i++ {
		for issued < b.N && issued-i < ahead {
			retrs = append(retrs, c.Retr(1))
			issued++
		}
		r, err := retrs[0].Body()
		if err != nil {
			b.Fatal(err)
		}
		retrs = retrs[1:]
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

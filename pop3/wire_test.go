package pop3

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		code ResponseCode
		text string
		bad  bool // a *ProtocolError
	}{
		// RFC 1939 examples
		{line: "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>", ok: true, text: "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"},
		{line: "+OK 2 320", ok: true, text: "2 320"},
		{line: "-ERR no such message, only 2 messages in maildrop", text: "no such message, only 2 messages in maildrop"},
		{line: "+OK", ok: true},
		{line: "-ERR"},
		{line: "+OK ", ok: true},
		{line: "-ERR ", text: ""},
		{line: "+ok lower case", ok: true, text: "lower case"},
		{line: "-err lower case", text: "lower case"},
		{line: "+Ok\tafter a tab", ok: true, text: "after a tab"},
		{line: "+OK  two spaces", ok: true, text: " two spaces"},
		// RFC 2449 §8 and RFC 3206 response codes
		{line: "-ERR [IN-USE] Do you have another POP session running?", code: CodeInUse, text: "Do you have another POP session running?"},
		{line: "-ERR [LOGIN-DELAY] wait 5 minutes", code: CodeLoginDelay, text: "wait 5 minutes"},
		{line: "-ERR [SYS/TEMP] Problem reading from mailbox", code: CodeSysTemp, text: "Problem reading from mailbox"},
		{line: "-ERR [SYS/PERM] Your account is locked", code: CodeSysPerm, text: "Your account is locked"},
		{line: "-ERR [AUTH] Invalid password", code: CodeAuth, text: "Invalid password"},
		{line: "-ERR [AUTH]", code: CodeAuth},
		{line: "-ERR [auth] lower case code", code: CodeAuth, text: "lower case code"},
		{line: "-ERR [SYS/TEMP]   spaces", code: CodeSysTemp, text: "spaces"},
		{line: "-ERR [SYS/TEMP]no space", code: CodeSysTemp, text: "no space"},
		{line: "-ERR [X-VENDOR/SUB/SUB] text", code: "X-VENDOR/SUB/SUB", text: "text"},
		{line: "-ERR [] empty code", text: "[] empty code"},
		{line: "-ERR [IN USE] space in code", text: "[IN USE] space in code"},
		{line: "-ERR [IN-USE unterminated", text: "[IN-USE unterminated"},
		{line: "-ERR [\xffBAD] 8-bit code", text: "[\xffBAD] 8-bit code"},
		{line: "-ERR text [IN-USE] not at the start", text: "text [IN-USE] not at the start"},
		{line: "+OK [IN-USE] codes are for -ERR", ok: true, text: "[IN-USE] codes are for -ERR"},
		{line: "-ERR \xff\x00 8-bit and NUL", text: "\xff\x00 8-bit and NUL"},
		// garbage
		{line: "", bad: true},
		{line: "OK", bad: true},
		{line: "+", bad: true},
		{line: "+ ", bad: true},
		{line: "+O", bad: true},
		{line: "+OKAY", bad: true},
		{line: "-ERROR", bad: true},
		{line: "-ER", bad: true},
		{line: " +OK", bad: true},
		{line: "* OK IMAP4rev1", bad: true},
		{line: "220 smtp.example.com ESMTP", bad: true},
		{line: "HTTP/1.1 400 Bad Request", bad: true},
		{line: "\x00+OK", bad: true},
	}
	for _, tc := range tests {
		st, err := parseStatus([]byte(tc.line), "NOOP")
		if tc.bad {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "NOOP" {
				t.Errorf("%q: got %v, want a *ProtocolError for NOOP", tc.line, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if st.ok != tc.ok || st.code != tc.code || st.text != tc.text {
			t.Errorf("%q: got ok=%v code=%q text=%q, want ok=%v code=%q text=%q",
				tc.line, st.ok, st.code, st.text, tc.ok, tc.code, tc.text)
		}
	}
}

func TestErrorTemporary(t *testing.T) {
	for code, temp := range map[ResponseCode]bool{
		CodeInUse: true, CodeLoginDelay: true, CodeSysTemp: true,
		CodeSysPerm: false, CodeAuth: false, "": false, "X-OTHER": false,
	} {
		if got := (&Error{Command: "PASS", Code: code}).Temporary(); got != temp {
			t.Errorf("%q: Temporary() = %v", code, got)
		}
	}
	e := &Error{Command: "PASS", Code: CodeAuth, Text: "bad password"}
	if got := e.Error(); got != "pop3: server refused PASS [AUTH]: bad password" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Command: "DELE"}).Error(); got != "pop3: server refused DELE" {
		t.Errorf("Error() = %q", got)
	}
}

func TestProtocolErrorString(t *testing.T) {
	if got := (&ProtocolError{Msg: "garbage"}).Error(); got != "pop3: protocol error in greeting: garbage" {
		t.Errorf("greeting: %q", got)
	}
	if got := protoErrorf("UIDL", "line %d", 3).Error(); got != "pop3: protocol error in response to UIDL: line 3" {
		t.Errorf("UIDL: %q", got)
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error // after the lines
	}{
		{in: "+OK\r\n", want: []string{"+OK"}, err: io.EOF},
		{in: "+OK\n-ERR\r\n", want: []string{"+OK", "-ERR"}, err: io.EOF},
		{in: "+OK a\rb\r\n", want: []string{"+OK a\rb"}, err: io.EOF},
		{in: "+OK\r\r\n", want: []string{"+OK\r"}, err: io.EOF},
		{in: "\r\n", want: []string{""}, err: io.EOF},
		{in: "+OK no newline", err: io.EOF},
		{in: "", err: io.EOF},
	}
	for _, tc := range tests {
		for _, onebyte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if onebyte {
				r = iotest.OneByteReader(r)
			}
			br := bufio.NewReaderSize(r, readerSize)
			var got []string
			var err error
			for {
				var line []byte
				line, err = readLine(br, "CAPA")
				if err != nil {
					break
				}
				got = append(got, string(line))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || !errors.Is(err, tc.err) {
				t.Errorf("%q: got %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
		}
	}
}

// TestReadLineBound checks that status lines are bounded: a line longer
// than maxLine is a *ProtocolError, and reading it does not buffer more
// than the reader's fixed buffer, however long the line is.
func TestReadLineBound(t *testing.T) {
	for _, n := range []int{maxLine - 2, maxLine - 1, maxLine, maxLine + 1, readerSize - 1, readerSize, readerSize + 1, 1 << 20} {
		line := "+OK " + strings.Repeat("a", n-4)
		src := &countingReader{r: strings.NewReader(line + "\r\nnext\r\n")}
		br := bufio.NewReaderSize(src, readerSize)
		got, err := readLine(br, "LIST")
		// the line ending is part of the bound, as in RFC 2449 §4
		if n+2 <= maxLine {
			if err != nil || string(got) != line {
				t.Errorf("%d octets: got %d octets, %v", n, len(got), err)
			}
			continue
		}
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Command != "LIST" {
			t.Errorf("%d octets: got %v, want a *ProtocolError", n, err)
		}
		if src.n > readerSize {
			t.Errorf("%d octets: read %d octets to refuse the line", n, src.n)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestCheckArg(t *testing.T) {
	for _, arg := range []string{"", "a\rb", "a\nb", "a\x00b", "\r\n", "alice\r\nDELE 1"} {
		if err := checkArg(arg); !errors.Is(err, ErrBadArgument) {
			t.Errorf("%q: got %v", arg, err)
		}
	}
	for _, arg := range []string{"alice", "a b", "\xff", "a\tb", "alice@example.org"} {
		if err := checkArg(arg); err != nil {
			t.Errorf("%q: %v", arg, err)
		}
	}
}

func TestValidUID(t *testing.T) {
	for uid, want := range map[string]bool{
		"whqtswO00WBw418f9t5JxYwZ":   true, // RFC 1939 §7
		"QhdPYR:00WBw1Ph7x7":         true,
		"!":                          true,
		"~":                          true,
		strings.Repeat("u", 70):      true,
		strings.Repeat("u", 71):      false,
		"":                           false,
		"a b":                        false,
		"a\tb":                       false,
		"caf\xc3\xa9":                false,
		"\x7f":                       false,
		"a\x00":                      false,
		"a\r":                        false,
		"../../etc/passwd":           true, // valid: callers encode UIDs anyway
		"\xff\xfe":                   false,
		strings.Repeat("\x21", 1):    true,
		strings.Repeat("\x20", 1):    false,
		"trailing-space-is-invalid ": false,
	} {
		if got := ValidUID(uid); got != want {
			t.Errorf("ValidUID(%q) = %v", uid, got)
		}
	}
}

func TestParseScanListing(t *testing.T) {
	tests := []struct {
		line string
		want MessageInfo
		bad  bool
	}{
		{line: "1 120", want: MessageInfo{Number: 1, Size: 120}}, // RFC 1939 §5
		{line: "2 200", want: MessageInfo{Number: 2, Size: 200}},
		{line: "3 0", want: MessageInfo{Number: 3}},
		{line: "1  120", want: MessageInfo{Number: 1, Size: 120}},
		{line: "1\t120", want: MessageInfo{Number: 1, Size: 120}},
		{line: "1 120 more info", want: MessageInfo{Number: 1, Size: 120}}, // RFC 1939 §5 allows it
		{line: "1 9223372036854775807", want: MessageInfo{Number: 1, Size: 1<<63 - 1}},
		{line: "", bad: true},
		{line: "1", bad: true},
		{line: "1 ", bad: true},
		{line: "0 120", bad: true},
		{line: "-1 120", bad: true},
		{line: "1 -5", bad: true},
		{line: "x 120", bad: true},
		{line: "1 12x", bad: true},
		{line: "1 9223372036854775808", bad: true},
		{line: "99999999999999999999 1", bad: true},
		{line: ".", bad: true},
	}
	for _, tc := range tests {
		got, err := parseScanListing("LIST", []byte(tc.line))
		if tc.bad {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "LIST" {
				t.Errorf("%q: got %+v, %v; want a *ProtocolError", tc.line, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseUIDListing(t *testing.T) {
	tests := []struct {
		line string
		want MessageInfo
		bad  bool
	}{
		{line: "1 whqtswO00WBw418f9t5JxYwZ", want: MessageInfo{Number: 1, UID: "whqtswO00WBw418f9t5JxYwZ"}}, // RFC 1939 §7
		{line: "2 QhdPYR:00WBw1Ph7x7", want: MessageInfo{Number: 2, UID: "QhdPYR:00WBw1Ph7x7"}},
		{line: "1\tuid", want: MessageInfo{Number: 1, UID: "uid"}},
		{line: "1   uid  ", want: MessageInfo{Number: 1, UID: "uid"}},
		// outside RFC 1939's rules, but kept as they are
		{line: "1 with space", want: MessageInfo{Number: 1, UID: "with space"}},
		{line: "1 caf\xc3\xa9\xff", want: MessageInfo{Number: 1, UID: "caf\xc3\xa9\xff"}},
		{line: "1 a\x00b", want: MessageInfo{Number: 1, UID: "a\x00b"}},
		{line: "1 a\rb", want: MessageInfo{Number: 1, UID: "a\rb"}},
		{line: "7 " + strings.Repeat("u", 200), want: MessageInfo{Number: 7, UID: strings.Repeat("u", 200)}},
		{line: "", bad: true},
		{line: "1", bad: true},
		{line: "1 ", bad: true},
		{line: "1 \t ", bad: true},
		{line: " 1 uid", bad: true},
		{line: "0 uid", bad: true},
		{line: "-1 uid", bad: true},
		{line: "x uid", bad: true},
		{line: "99999999999999999999 uid", bad: true},
	}
	for _, tc := range tests {
		got, err := parseUIDListing([]byte(tc.line))
		if tc.bad {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Command != "UIDL" {
				t.Errorf("%q: got %+v, %v; want a *ProtocolError", tc.line, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

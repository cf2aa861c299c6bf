package deliver

import (
	"errors"
	"strings"
)

// splitCommand splits an MDA command line into words as a POSIX shell
// would (POSIX.1-2017 XCU §2.2 Quoting, §2.3 Token Recognition), and does
// nothing else a shell does: no parameter, command or arithmetic expansion,
// no globbing, no redirection, no pipes or lists, no comments. Characters
// such as $ ` * ? ; | & < > ( ) # are ordinary characters of a word.
//
//   - blanks (space, tab) and newlines separate words;
//   - '…' quotes every character up to the next ';
//   - "…" quotes every character up to the next unescaped ", where a
//     backslash quotes only $ ` " \ and removes itself and a newline;
//   - outside quotes a backslash quotes the next character, and removes
//     itself and a newline (a line continuation);
//   - quotes with nothing between them make an empty word.
//
// An unterminated quote, a final backslash, a NUL byte or no word at all
// is an error.
func splitCommand(s string) ([]string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("command contains a NUL byte")
	}
	var (
		words  []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("command ends with a backslash")
			}
			i++
			if s[i] == '\n' {
				continue // line continuation
			}
			word.WriteByte(s[i])
			inWord = true
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote in command")
			}
			word.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case '"':
			inWord = true
			for i++; ; i++ {
				if i == len(s) {
					return nil, errors.New("unterminated double quote in command")
				}
				c := s[i]
				if c == '"' {
					break
				}
				if c == '\\' && i+1 < len(s) {
					switch s[i+1] {
					case '$', '`', '"', '\\':
						word.WriteByte(s[i+1])
						i++
						continue
					case '\n':
						i++
						continue
					}
				}
				word.WriteByte(c)
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// expandPlaceholders replaces %F with sender, %T with recipient and %% with
// %, in one pass: the replacement text is not scanned again, so a sender
// holding "%T" stays as it is. A % followed by anything else, or at the
// end, is kept (as fetchmail does), so "date +%Y" needs no escaping.
func expandPlaceholders(arg, sender, recipient string) string {
	if strings.IndexByte(arg, '%') < 0 {
		return arg
	}
	var b strings.Builder
	for i := 0; i < len(arg); i++ {
		if arg[i] != '%' || i+1 == len(arg) {
			b.WriteByte(arg[i])
			continue
		}
		switch arg[i+1] {
		case 'F':
			b.WriteString(sender)
		case 'T':
			b.WriteString(recipient)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			continue
		}
		i++
	}
	return b.String()
}

// hasPlaceholder reports whether arg holds %F or %T (not escaped as %%F).
func hasPlaceholder(arg string) bool {
	for i := 0; i+1 < len(arg); i++ {
		if arg[i] != '%' {
			continue
		}
		switch arg[i+1] {
		case 'F', 'T':
			return true
		case '%':
			i++
		}
	}
	return false
}

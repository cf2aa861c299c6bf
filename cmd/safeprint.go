package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/popfetch/popfetch/cmd/internal/termsafe"
)

// printError writes err as "popfetch: ACCOUNT: error: …" lines (without
// "ACCOUNT: " when account is ""), one for each line of its text: errors
// joined together, or a configuration's problems, each get a line. What
// an error quotes from outside (a -ERR text, a certificate's names, an
// OAuth provider's description) is escaped: no line ever drives the
// terminal, and a line break it holds starts a line of its own, with the
// prefix, never a line that could pass for another program's.
func printError(w io.Writer, account string, err error) {
	prefix := "popfetch: error: "
	if account != "" {
		prefix = "popfetch: " + termsafe.Escape(account) + ": error: "
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "%s%s\n", prefix, termsafe.Escape(line))
	}
}

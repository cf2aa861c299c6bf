// Command popfetch fetches mail from POP3 servers. See README.md.
package main

import (
	"context"
	"os"

	"github.com/popfetch/popfetch/cmd"
)

func main() {
	os.Exit(cmd.Main(context.Background(), os.Args, os.Stdout, os.Stderr))
}

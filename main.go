// Command popfetch fetches mail from POP3 servers. See README.md.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/popfetch/popfetch/cmd"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A run's heap is mostly what it keeps to its end (the UID
		// cache, the server's listing): a first collection at 4 MiB
		// frees little and costs memory of its own. With 200 it comes
		// at 8 MiB, after the cache of a 50 000-message kept mailbox is
		// read (BENCHMARKS.md, scenario k).
		debug.SetGCPercent(200)
	}
	os.Exit(cmd.Main(context.Background(), os.Args, os.Stdout, os.Stderr))
}

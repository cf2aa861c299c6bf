//go:build !simbugs

package engine

// The simulator's checker is itself tested against broken engines
// (cmd/internal/enginesim, built with the tag simbugs). In every other
// build these are constants, and the broken paths are compiled out.
const (
	// bugQuitAfterUndelivered: the session ends with QUIT though a
	// message it retrieved was not delivered.
	bugQuitAfterUndelivered = false
	// bugDeleBeforeDurable: DELE is sent as soon as a message is
	// delivered, before it is durable and recorded.
	bugDeleBeforeDurable = false
)

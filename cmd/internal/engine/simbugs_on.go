//go:build simbugs

package engine

// Broken engines for testing the simulator's checker: never built into
// popfetch. SetSimBug chooses one.
var (
	bugQuitAfterUndelivered bool
	bugDeleBeforeDurable    bool
)

// SetSimBug breaks the engine as name says ("" repairs it):
// "quit-after-undelivered" or "dele-before-durable". Not safe to call
// while a run is going.
func SetSimBug(name string) {
	bugQuitAfterUndelivered = name == "quit-after-undelivered"
	bugDeleBeforeDurable = name == "dele-before-durable"
}

//go:build !race

package enginesim

// An episode mostly waits (for the network, fsync, an MDA): two at a
// time keep two cores busy.
const (
	defaultEpisodes = 3000
	defaultWorkers  = 2
)

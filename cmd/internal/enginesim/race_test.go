//go:build race

package enginesim

// The race detector makes each episode several times slower, and CPU
// bound: `make test` runs fewer, one at a time.
const (
	defaultEpisodes = 1000
	defaultWorkers  = 1
)

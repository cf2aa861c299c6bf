//go:build race

package enginesim

// The race detector makes each episode several times slower, and CPU
// bound: fewer, one at a time (about 30 s). `make test` runs the default
// number of episodes again without it.
const (
	defaultEpisodes = 500
	defaultWorkers  = 1
)

//go:build race

package enginesim

// defaultEpisodes is how many episodes TestSim runs by default: the race
// detector makes each several times slower, so `make test` runs fewer.
const defaultEpisodes = 1000

//go:build !race

package enginesim

// defaultEpisodes is how many episodes TestSim runs by default.
const defaultEpisodes = 3000

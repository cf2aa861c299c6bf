//go:build !popfetch_portable

package e2e

// buildTags are the build tags of the binary under test: those of this
// test binary.
const buildTags = ""

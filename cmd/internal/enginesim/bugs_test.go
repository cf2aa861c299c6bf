//go:build simbugs

package enginesim

import (
	"flag"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/internal/sim"
)

var bugEpisodes = flag.Int("bugepisodes", 2000, "how many episodes TestSimCatchesBugs may take per broken engine")

// TestSimCatchesBugs: the checker is tested in turn. Each broken engine
// (engine.SetSimBug, built with the tag simbugs only) must be caught by
// a violation of the kind it causes within bugEpisodes episodes:
//
//	go test -tags simbugs -run TestSimCatchesBugs -v ./cmd/internal/enginesim
func TestSimCatchesBugs(t *testing.T) {
	root := tempRoot(t)
	for _, bug := range []struct {
		name string
		kind sim.Kind
	}{
		{"quit-after-undelivered", sim.Lost},
	} {
		t.Run(bug.name, func(t *testing.T) {
			engine.SetSimBug(bug.name)
			defer engine.SetSimBug("")
			for i := 0; i < *bugEpisodes; i++ {
				seed := uint64(i + 1)
				rep := episode(t, root, seed, Fetcher{})
				for _, v := range rep.Violations {
					if v.Kind == bug.kind {
						t.Logf("caught after %d episodes: seed %d: %s", i+1, seed, v)
						return
					}
				}
			}
			t.Errorf("not caught in %d episodes", *bugEpisodes)
		})
	}
}

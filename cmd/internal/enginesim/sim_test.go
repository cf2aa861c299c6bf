package enginesim

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/internal/sim"
)

var (
	seedFlag     = flag.Uint64("seed", 0, "replay the episode of this seed only, with the engine's log")
	episodesFlag = flag.Int("episodes", defaultEpisodes, "how many episodes TestSim runs")
	firstFlag    = flag.Uint64("first", 1, "the seed of the first episode (0: drawn from the time, and printed)")
	maxFailFlag  = flag.Int("maxfail", 10, "stop after this many failed episodes")
	workersFlag  = flag.Int("workers", defaultWorkers, "episodes run at the same time (each has its own server and directory)")
)

// tempRoot is where episodes keep their files: a tmpfs when there is
// one, so fsync costs nothing and thousands of episodes fit in a minute.
func tempRoot(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "popfetch-sim-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// TestSim runs the simulator's episodes against the engine. Each failure
// prints its seed and plan; `go test ./cmd/internal/enginesim -run TestSim
// -seed N -v` replays it with the engine's log.
func TestSim(t *testing.T) {
	root := tempRoot(t)
	if *seedFlag != 0 {
		replay(t, root, *seedFlag)
		return
	}
	first := *firstFlag
	if first == 0 {
		first = uint64(time.Now().UnixNano())
		t.Logf("first seed %d", first)
	}
	n := *episodesFlag
	if testing.Short() {
		n = min(n, 50)
	}
	start := time.Now()
	known := map[string][]uint64{}
	points := map[string]int{}
	failed := 0
	for _, rep := range episodes(t, root, first, n, max(*workersFlag, 1)) {
		seed := rep.Episode.Seed
		unknown, classes := classify(rep)
		for _, p := range rep.FaultPoints {
			points[p]++
		}
		for _, c := range classes {
			known[c] = append(known[c], seed)
		}
		if len(unknown) > 0 {
			failed++
			t.Errorf("%s\nunknown violations: %s\nreplay: go test ./cmd/internal/enginesim -run TestSim -seed %d -v",
				rep, strings.Join(unknown, "; "), seed)
			if failed >= *maxFailFlag {
				t.Fatalf("stopping after %d failed episodes", failed)
			}
		}
	}
	d := time.Since(start)
	t.Logf("%d episodes in %v (%.0f/s), %d failed", n, d.Round(time.Millisecond), float64(n)/d.Seconds(), failed)
	t.Logf("%d distinct fault points reached", len(points))
	if testing.Verbose() {
		reached := make([]string, 0, len(points))
		for p, n := range points {
			reached = append(reached, fmt.Sprintf("%6d  %s", n, p))
		}
		sort.Strings(reached)
		t.Logf("fault points (episodes):\n%s", strings.Join(reached, "\n"))
	}
	names := make([]string, 0, len(known))
	for c := range known {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		seeds := known[c]
		t.Logf("known failure %q: %d episodes, e.g. seed %d", c, len(seeds), seeds[0])
	}
}

// TestSimRegressions replays the episodes that found defects since
// fixed: none may fail, known failure or not.
func TestSimRegressions(t *testing.T) {
	root := tempRoot(t)
	for _, r := range regressionSeeds {
		if rep := episode(t, root, r.seed, Fetcher{}); rep.Failed() {
			t.Errorf("seed %d (was: %s):\n%s", r.seed, r.was, rep)
		}
	}
}

// leakBatch is how many episodes run between two checks for leaks when
// episodes run in parallel.
const leakBatch = 100

// episodes runs n episodes from seed first, parallel at a time, and
// returns their reports in seed order. Goroutines and files left over
// can only be told apart between batches, when nothing runs: a batch
// that leaves some is run again one episode at a time, to name the
// seed.
func episodes(t *testing.T, root string, first uint64, n, parallel int) []*sim.Report {
	var out []*sim.Report
	for b := 0; b < n; b += leakBatch {
		before := sim.Snapshot()
		reps := make([]*sim.Report, min(leakBatch, n-b))
		errs := make([]error, len(reps))
		var wg sync.WaitGroup
		next := make(chan int)
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					reps[i], errs[i] = runEpisode(root, first+uint64(b+i), Fetcher{}, &sim.Options{Concurrent: parallel > 1})
				}
			}()
		}
		for i := range reps {
			next <- i
		}
		close(next)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("seed %d: %v", first+uint64(b+i), err)
			}
		}
		if parallel > 1 {
			if leaks := before.Leaks(); len(leaks) > 0 {
				t.Logf("episodes %d to %d left goroutines or files; running them one at a time", first+uint64(b), first+uint64(b+len(reps)-1))
				for i := range reps {
					reps[i] = episode(t, root, first+uint64(b+i), Fetcher{})
				}
			}
		}
		out = append(out, reps...)
	}
	return out
}

// episode runs one episode alone, checking for leaks.
func episode(t *testing.T, root string, seed uint64, f Fetcher) *sim.Report {
	t.Helper()
	rep, err := runEpisode(root, seed, f, nil)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return rep
}

// runEpisode runs one episode in a directory of its own.
func runEpisode(root string, seed uint64, f Fetcher, opts *sim.Options) (*sim.Report, error) {
	dir, err := os.MkdirTemp(root, fmt.Sprint(seed, "-"))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return sim.Run(context.Background(), sim.Generate(seed), f, dir, opts)
}

// replay runs one episode with the engine's log on stderr, and fails on
// any violation, known or not.
func replay(t *testing.T, root string, seed uint64) {
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rep := episode(t, root, seed, Fetcher{Log: log})
	unknown, classes := classify(rep)
	t.Logf("%s", rep)
	if len(classes) > 0 {
		t.Logf("known failure classes: %s", strings.Join(classes, ", "))
	}
	if rep.Failed() {
		t.Errorf("%d violations (%d not known)", len(rep.Violations), len(unknown))
	}
}

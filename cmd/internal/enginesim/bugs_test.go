//go:build simbugs

package enginesim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/cmd/internal/engine"
	"github.com/popfetch/popfetch/internal/sim"
	"github.com/popfetch/popfetch/internal/vfs"
)

var bugEpisodes = flag.Int("bugepisodes", 2000, "how many episodes TestSimCatchesBugs may take per broken engine")

// TestSimCatchesBugs: the checker is tested in turn. Each broken engine
// must be caught by a violation of the kind it causes within bugEpisodes
// episodes:
//
//	go test -tags simbugs -run TestSimCatchesBugs -v ./cmd/internal/enginesim
//
// Two are broken inside the engine (engine.SetSimBug, built with the tag
// simbugs only): a session that QUITs after an undelivered RETR, and a
// ledger that sends DELE before the message is durable and recorded. The
// third is a target that says durable before fsync: the engine runs on a
// file system whose Sync and SyncDir do nothing under the target.
func TestSimCatchesBugs(t *testing.T) {
	root := tempRoot(t)
	for _, bug := range []struct {
		name    string
		engine  string // engine.SetSimBug's name, or ""
		fetcher Fetcher
		kind    sim.Kind
	}{
		{name: "quit-after-undelivered", engine: "quit-after-undelivered", kind: sim.Lost},
		{name: "dele-before-durable", engine: "dele-before-durable", kind: sim.Lost},
		{name: "durable-before-fsync", fetcher: Fetcher{WrapFS: noTargetSync}, kind: sim.Lost},
	} {
		t.Run(bug.name, func(t *testing.T) {
			engine.SetSimBug(bug.engine)
			defer engine.SetSimBug("")
			for i := 0; i < *bugEpisodes; i++ {
				seed := uint64(i + 1)
				rep := episode(t, root, seed, bug.fetcher)
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

// noTargetSync is the simulated disk with a target that lies: under the
// Maildir or beside the mbox, fsync and the sync of a directory return
// nil and do nothing. The state directory stays honest, so what the
// checker sees is the target's fault alone.
func noTargetSync(fsys vfs.FS, spec sim.Spec) vfs.FS {
	under := spec.Path
	if spec.Config.Target == sim.Mbox {
		under = filepath.Dir(spec.Path)
	}
	return lyingFS{FS: fsys, under: under, state: spec.StateDir}
}

type lyingFS struct {
	vfs.FS
	under, state string
}

func (l lyingFS) lies(name string) bool {
	in := func(dir string) bool { return name == dir || strings.HasPrefix(name, dir+string(os.PathSeparator)) }
	return in(l.under) && !in(l.state)
}

func (l lyingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := l.FS.OpenFile(name, flag, perm)
	if err != nil || !l.lies(name) {
		return f, err
	}
	return lyingFile{f}, nil
}

func (l lyingFS) SyncDir(name string) error {
	if l.lies(name) {
		return nil
	}
	return l.FS.SyncDir(name)
}

type lyingFile struct{ vfs.File }

func (lyingFile) Sync() error { return nil }

package enginesim

import (
	"github.com/popfetch/popfetch/internal/sim"
)

// knownFailure is a class of violations the simulator found in today's
// engine, tolerated by TestSim until the engine is fixed: an episode whose
// every violation matches a known class passes, and the classes met are
// counted in the test's log with a seed. A replay (-seed N) fails on them.
type knownFailure struct {
	name  string
	match func(ep sim.Episode, v sim.Violation) bool
}

// knownFailures are the defects of today's engine (issue 10), each found by
// the simulator. Empty this list as the engine is fixed (and add the seed
// to regressionSeeds); never add to it to make a new failure pass.
var knownFailures = []knownFailure{}

// classify splits an episode's violations into those no known failure
// explains (described) and the names of the known classes met.
func classify(rep *sim.Report) (unknown, classes []string) {
	seen := map[string]bool{}
	for _, v := range rep.Violations {
		matched := false
		for _, k := range knownFailures {
			if k.match(rep.Episode, v) {
				matched = true
				if !seen[k.name] {
					seen[k.name] = true
					classes = append(classes, k.name)
				}
				break
			}
		}
		if !matched {
			unknown = append(unknown, v.String())
		}
	}
	return unknown, classes
}

// regressionSeeds are episodes that showed a defect the engine (or the
// checker's bounds) has since been fixed for; TestSimRegressions runs
// them with no failure tolerated.
// (A seed names an episode of Generate as it was when the seed was
// found; if Generate changes, it still names some episode.)
var regressionSeeds = []struct {
	seed uint64
	was  string
}{
	{5, "a graceful stop with RETRs in flight, then QUIT (issue 10.1; engine of 67c0336)"},
	{10, "EXPIRE 0: QUIT after undelivered retrievals expired them: lost (issue 10.1; 67c0336)"},
	{187, "Gmail-like: QUIT after undelivered retrievals hid them: lost (issue 10.1; 67c0336)"},
	{17, "EXPIRE 0: check --list QUIT after TOP, the server removed what it showed (issue 10.1; 67c0336)"},
	{1, "a message whose first line reads +OK strands every later one (issue 10.5; 67c0336)"},
	{108, "a message the server drops the connection at strands the mailbox (issue 10.5; 67c0336)"},
	{1990, "the same, pipelined: the message in hand blamed, innocent ones quarantined (132e2ef^)"},
	{1343, "a reused UID deleted unseen after a lost QUIT answer: lost (132e2ef^)"},
	{188, "keep mode: a new message under a reused UID taken for one retrieved (132e2ef^)"},
	{74, "without UIDL, a poison message re-delivered the others on every run (8c2ae9d)"},
	{751, "without UIDL, pipelined, a message the server drops at: innocent ones blamed (8c2ae9d)"},
	{2783, "without UIDL, a broken session's mark outlived the message (8c2ae9d, while fixing 74)"},
	{322, "mbox: a recovery named whole an append a kill -9 left unsynced; a power cut took it: lost (afd3387^)"},
	{1950, "mbox: a file created by a failed run, its name never synced; a power cut took later appends (afd3387^)"},
	{4529, "mbox journal: its removal undone by a power cut, reused UIDs recorded as delivered: lost (6780702^)"},
	{804, "mbox on the simulated disk: failed before afd3387 and 6780702"},
	{15072, "without UIDL, max_messages cut the suspects' count below zero: a panic (7341d60^)"},
	{1019645, "two poison messages: quarantining both takes six clean runs (checker, this commit^)"},
	{1024520, "without UIDL, DELEs refused in a session per batch: each fetched again in the same run (checker, this commit^)"},
	{1040132, "without UIDL, an innocent message listed with the size of a poison one is left too, and named (checker, this commit^)"},
	{1064805, "keep, a server reusing a UID for a message of the very size it named before: not fetchable, not a stranding (checker, this commit^)"},
	{1164358, "mbox: a message cut mid-spool, the spool not cut back (EIO): the batch dropped, Commit said durable: the message before it recorded, deleted, lost (this commit^)"},
	{1312, "mbox: a dotlock release that failed (EROFS) left our own lock; the same process waited for itself 60 s (this commit^)"},
}

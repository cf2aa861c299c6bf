# popfetch — see README.md.
GO        ?= go
BIN       ?= popfetch
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/popfetch/popfetch/cmd.Version=$(VERSION)
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target
# with "context deadline exceeded" when a -fuzztime duration runs out
# (golang/go#75804, fixed in Go 1.27). `make fuzz FUZZTIME=10m` still works.
FUZZTIME  ?= 50000x

.PHONY: all build demo test test-deps lint cross unit portable fuzz bench man clean sim dist dist-check

all: build

# Static (no cgo): the binary needs no C library, and a run takes about
# 1.5 MiB less memory without libc mapped (BENCHMARKS.md, scenario k).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# Runs the main job on the built-in demo server: no setup needed.
demo: build
	./$(BIN) demo

# Every test: format, vet, staticcheck, the race-enabled test suite (with
# the real Dovecot and procmail interop tests), and a short fuzz pass.
# test-deps first installs the real servers and tools the tests use, if
# any is missing (scripts/test-deps.sh says what and why).
# Under make test every tool is there (test-deps), so a test that finds one
# missing fails instead of skipping (POPFETCH_TEST_STRICT).
test: export POPFETCH_TEST_STRICT = 1
test: test-deps
	$(MAKE) lint cross unit portable fuzz

test-deps:
	@./scripts/test-deps.sh

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The systems popfetch builds for (README "Install"); Windows is refused
# at build time. cross builds each, and vets and staticchecks the code of
# each system (Linux is lint's).
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64 \
	openbsd/amd64 openbsd/arm64 netbsd/amd64 netbsd/arm64
TOOLS     := $(CURDIR)/bin
cross:
	@GOOS= GOARCH= GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; echo "cross $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -o /dev/null . ; \
	done
	@set -e; for os in $$(echo $(PLATFORMS) | tr ' ' '\n' | sed 's,/.*,,' | sort -u | grep -vx linux); do \
	  echo "vet and staticcheck $$os"; \
	  GOOS=$$os $(GO) vet ./... ; GOOS=$$os $(TOOLS)/staticcheck ./... ; \
	done
	$(GO) vet -tags popfetch_portable ./...
	$(TOOLS)/staticcheck -tags popfetch_portable ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...
	@# the fault simulator's episodes again, more of them, without -race (~30 s)
	$(GO) test -count=1 -run '^TestSim$$' ./cmd/internal/enginesim
	@# the simulator's checker catches broken engines (built with simbugs only)
	$(GO) test -tags simbugs -count=1 -run '^TestSimCatchesBugs$$' ./cmd/internal/enginesim

# The portable code paths (classic fcntl locks, link+unlink renames: what
# macOS and the BSDs run) forced on Linux, with the tests of the code that
# takes them: delivery (mbox shared with procmail, two Mboxes of one
# process), the engine, and the real binary killed mid-run and run twice at
# once.
portable:
	$(GO) test -race -count=1 -timeout 20m -tags popfetch_portable ./internal/vfs/ ./deliver/ ./uidcache/ ./cmd/internal/engine/
	$(GO) test -count=1 -timeout 20m -tags popfetch_portable \
	  -run '^(TestPortableBinary|TestCrash|TestAccountLock|TestMboxTraps|TestTwoPortsOneUser)' ./internal/e2e/

# Each fuzz target for FUZZTIME (CI: a short pass; see README for long runs).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname $$f); \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Go benchmarks of the client and the engine against in-process servers,
# and of the real binary on a big kept mailbox (BenchmarkKeepBinary*: time,
# CPU and peak RSS); see BENCHMARKS.md for the rig's side-by-side figures.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./pop3/ ./uidcache/ ./cmd/internal/engine/ ./cmd/ ./internal/e2e/

# The fault simulator against the engine (internal/sim,
# cmd/internal/enginesim): EPISODES episodes from seed FIRST (0: drawn from
# the clock, and printed), or with SEED=N the one episode of seed N,
# replayed with the engine's log.
EPISODES ?= 10000
FIRST    ?= 0
sim:
ifdef SEED
	$(GO) test -count=1 -run '^TestSim$$' ./cmd/internal/enginesim -seed $(SEED) -v
else
	$(GO) test -count=1 -timeout 0 -run '^TestSim$$' ./cmd/internal/enginesim -episodes $(EPISODES) -first $(FIRST) -maxfail 10 -v
endif

man: build
	./$(BIN) man > popfetch.1

# Release binaries for PLATFORMS in dist/: without cgo (static, but for
# macOS and OpenBSD, whose system calls go through their libc),
# reproducible (-trimpath, no build ID: the same commit gives the same
# bytes), named popfetch-VERSION-OS-ARCH, with the man page and SHA256SUMS.
# dist-check builds them twice, checks each with file(1) and compares.
DIST ?= dist
dist:
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/popfetch-$(VERSION)-$$os-$$arch; echo "$$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS) -buildid=' -o $$out . ; \
	done
	CGO_ENABLED=0 $(GO) run -trimpath -ldflags '$(LDFLAGS)' . man > $(DIST)/popfetch.1
	cd $(DIST) && sha256sum popfetch-* popfetch.1 > SHA256SUMS

dist-check:
	@./scripts/dist-check.sh

clean:
	rm -rf $(BIN) popfetch-demo $(DIST)

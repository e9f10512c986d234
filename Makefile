# cove: build and test entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
GOTEST_TIMEOUT ?= 15m
COVE_RUNC := $(CURDIR)/bin/cove-runc
DEMO_BUNDLE ?= /tmp/cove-demo

.PHONY: all build test deps demo fmt-check vet staticcheck gotest lint-sh cgroupv2 \
	conformance conformance-runc bench bench-quick fuzz-quick clean

all: build

## build: bin/cove-runc (and bin/cove once cmd/cove exists)
build:
	@mkdir -p bin
	@# Atomic replace; no stale binary left behind when the build fails.
	$(GO) build -o bin/cove-runc.tmp ./cmd/cove-runc || { rm -f bin/cove-runc bin/cove-runc.tmp; exit 1; }
	@mv bin/cove-runc.tmp bin/cove-runc
	@if ls cmd/cove/*.go >/dev/null 2>&1; then echo "$(GO) build -o bin/cove ./cmd/cove"; $(GO) build -o bin/cove ./cmd/cove; fi
	@if ls cmd/cove-monitor/*.go >/dev/null 2>&1; then echo "$(GO) build -o bin/cove-monitor ./cmd/cove-monitor"; $(GO) build -o bin/cove-monitor ./cmd/cove-monitor; fi

## test: every stage below, with headers, durations and a summary (.ci/test.sh)
test:
	@.ci/test.sh

## deps: Debian packages (as root); the list is in .ci/deps.sh
deps:
	.ci/deps.sh

## demo: deps, build, a busybox bundle run by cove-runc, then the same rootfs as an image run by cove (as root)
demo: deps build
	tests/fixtures/mkbundle.sh $(DEMO_BUNDLE) echo hello from a cove container
	bin/cove-runc run --bundle $(DEMO_BUNDLE) cove-demo-$$$$
	@# The engine: a local image from the same busybox rootfs, then cove run.
	tar -C $(DEMO_BUNDLE)/rootfs -cf $(DEMO_BUNDLE)/rootfs.tar .
	bin/cove image import $(DEMO_BUNDLE)/rootfs.tar localhost/cove-demo:latest
	bin/cove run --rm localhost/cove-demo echo hello from cove run

fmt-check:
	@files=$$(git ls-files -co --exclude-standard '*.go'); \
	bad=$$(gofmt -l $$files); \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; gofmt -d $$bad | head -100; exit 1; fi; \
	echo "gofmt: $$(echo $$files | wc -w) files formatted"

vet:
	$(GO) vet ./...

# staticcheck at a pinned version (fetched through the module proxy).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
staticcheck:
	$(GO) run $(STATICCHECK) ./...
	@echo "staticcheck: ok"

# Integration tests use bin/cove-runc when it exists (else they build one).
gotest:
	@mkdir -p out
	set -o pipefail; $(if $(wildcard bin/cove-runc),COVE_RUNC=$(COVE_RUNC)) \
		$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) ./... 2>&1 | tee out/gotest.log

lint-sh:
	shellcheck -S warning $$(git ls-files -co --exclude-standard '*.sh') .ci/run
	@echo "shellcheck: ok"

cgroupv2:
	tests/cgroupv2/run.sh

conformance:
	tests/conformance/run.sh bin/cove-runc --expect tests/conformance/cove-expected.txt

conformance-runc:
	tests/conformance/run.sh /usr/sbin/runc --expect tests/conformance/runc-baseline.txt

# bench: every bench/*.sh group, one report (bench/results/latest.md, a
# PNG chart per group); bench-quick: the same with a few iterations (CI,
# informational). bench/GROUP.sh [--quick] runs one group on its own.
bench:
	bench/suite.sh

bench-quick:
	bench/suite.sh --quick

# fuzz-quick: every Fuzz target in the repo (found by grep) for FUZZTIME
# each, seeded from its testdata/fuzz corpus.
FUZZTIME ?= 15s
fuzz-quick:
	@set -e; git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | while read -r f; do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "fuzz: $$name in ./$$(dirname "$$f") for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) "./$$(dirname "$$f")" 2>&1 | tail -3; \
			[ "$${PIPESTATUS[0]}" -eq 0 ]; \
		done; \
	done

clean:
	rm -rf bin out

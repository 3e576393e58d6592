# sockconf: `make test`, `make list`, `make run`, `make bench`, and `make <case-id>` for every
# case id. The per-case targets are generated from `sockconf list`, never kept by hand.

CARGO    ?= cargo
SOCKCONF := target/debug/sockconf
CASES_MK := target/cases.mk

.PHONY: all build test list run bench bench-capture
all: run

build:
	$(CARGO) build --quiet

test:
	$(CARGO) test

list: build
	@$(SOCKCONF) list

run: build
	$(SOCKCONF) run

# The harness's cost per case (a no-op case) and the suite's wall time against its longest case
# at several job counts: medians of 5 runs. A debug build, like `make run`.
# Benchmarks measure the optimised build: the harness's own cost, not the debug build's.
bench:
	$(CARGO) build --quiet --release
	target/release/sockconf bench --runs 5

# What the wire capture adds per case: runner wall time and `sockconf run -j1` time, with and
# without it, interleaved; medians of 9 rounds.
bench-capture: build
	bash bench/capture.sh 9

# One target per case id, written by the binary itself. Remade (and make restarted) whenever
# the catalogue's sources change.
$(CASES_MK): Cargo.toml $(wildcard harness/src/*.rs harness/src/*/*.rs cases/src/*.rs src/*.rs)
	@mkdir -p $(dir $@)
	@$(CARGO) build --quiet
	@$(SOCKCONF) list | awk '{ printf ".PHONY: %s\n%s: build\n\t$$(SOCKCONF) run %s\n", $$1, $$1, $$1 }' > $@

-include $(CASES_MK)

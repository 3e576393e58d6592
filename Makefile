# sockconf: `make test`, `make list`, `make run`, `make bench`, `make bench-capture`, `make readme`,
# `make matrix`, `make <case-id>` for every case id (over every kind it runs over) and
# `make <case-id>@<kind>` for one instance (`make close.fin_then_eof@ipv6`). The per-case targets are generated
# from `sockconf list`, never kept by hand.

CARGO    ?= cargo
SOCKCONF := target/debug/sockconf
CASES_MK := target/cases.mk

.PHONY: all build test list run bench bench-capture matrix readme
all: run

build:
	$(CARGO) build --quiet

test:
	$(CARGO) test

# The README's tables of what each case expects per OS, from `sockconf explain --format
# markdown` (tests/readme.rs checks that they match the catalogue).
readme:
	SOCKCONF_WRITE_README=1 $(CARGO) test --test readme

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

# The suite on this kernel and on Debian's kernels under qemu, compared: bullseye's 5.10,
# bookworm's 6.1, trixie's 6.12 and sid's newest (`sockconf matrix --help` for other names).
# The VM's init is a static sockconf (musl, the `guest` profile: optimised, since qemu emulates
# every instruction). As root, qemu is installed first where it is missing, while the static
# binary builds; `sockconf matrix` reads Debian's kernel lists with its own apt configuration
# under target/apt.
# FREEBSD_DIST=PATH adds a FreeBSD column: a directory holding a FreeBSD release's kernel.txz
# and base.txz, or a directory or tarball in their layout. sockconf cross-builds itself for it
# with clang and lld and boots it from a CD that xorriso writes; as root, those are installed
# where missing, and the FreeBSD target's std is added.
MUSL        := x86_64-unknown-linux-musl
FREEBSD     := x86_64-unknown-freebsd
STATIC      := target/$(MUSL)/guest/sockconf
KERNELS     ?= 5.10 6.1 6.12 sid
FREEBSD_DIST ?=
MATRIX_ARGS ?=
.PHONY: matrix-qemu matrix-static
matrix:
	@$(MAKE) --no-print-directory -j2 matrix-qemu matrix-static
	@[ -n "$(FREEBSD_DIST)" ] || echo "make matrix: no FreeBSD column; for one, give FREEBSD_DIST=<a directory holding a FreeBSD release's kernel.txz and base.txz (amd64)>"
	$(STATIC) matrix $(addprefix --kernel ,$(KERNELS)) $(if $(FREEBSD_DIST),--kernel freebsd:$(FREEBSD_DIST)) --markdown target/matrix/table.md $(MATRIX_ARGS)

matrix-qemu:
	@if ! command -v qemu-system-x86_64 >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "make matrix: installing qemu-system-x86"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; \
	fi
	@if [ -n "$(FREEBSD_DIST)" ] && [ "$$(id -u)" = 0 ] && ! { command -v clang-16 && command -v ld.lld-16 && command -v xorriso; } >/dev/null; then \
		echo "make matrix: installing clang-16, lld-16 and xorriso for the FreeBSD column"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-16 lld-16 xorriso >/dev/null; \
	fi

matrix-static:
	@# Whether musl's std is there, not what rustup lists: on a machine where several rustups
	@# add targets at once, its list lost one whose files were all in place.
	@ls "$$(MAKEFLAGS= rustc --print target-libdir --target $(MUSL))"/libstd-*.rlib >/dev/null 2>&1 || rustup target add $(MUSL)
	@[ -z "$(FREEBSD_DIST)" ] || ls "$$(MAKEFLAGS= rustc --print target-libdir --target $(FREEBSD))"/libstd-*.rlib >/dev/null 2>&1 || rustup target add $(FREEBSD)
	$(CARGO) build --quiet --profile guest --target $(MUSL)

# One target per instance (`id@kind`) and one per case id (all its kinds), written from
# `sockconf list`. Remade (and make restarted) whenever the catalogue's sources change.
$(CASES_MK): Cargo.toml $(wildcard harness/src/*.rs harness/src/*/*.rs cases/src/*.rs src/*.rs)
	@mkdir -p $(dir $@)
	@$(CARGO) build --quiet
	@$(SOCKCONF) list | awk '{ split($$1, p, "@"); printf ".PHONY: %s\n%s: build\n\t$$(SOCKCONF) run %s\n", $$1, $$1, $$1; \
		if (!(p[1] in seen)) { seen[p[1]] = 1; printf ".PHONY: %s\n%s: build\n\t$$(SOCKCONF) run %s\n", p[1], p[1], p[1] } }' > $@

-include $(CASES_MK)

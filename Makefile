# tern - the commands a newcomer runs.  The build itself is Meson + Ninja;
# this file only installs what is missing and calls them.
#
#   make run     build and start the reference server (PORT, default 8080)
#   make test    release (-Werror) and ASan+UBSan builds, every test in both,
#                fuzz corpora replayed; ends with "N passed, M failed"
#   make bench   benchmarks against peers (see bench/README.md)
#   make bench-quickstart   the quickstart users API vs the same in Express,
#                80% GET / 20% POST on PostgreSQL and SQLite (bench/README.md)
#   make fuzz    libFuzzer runs (FUZZ_TIME seconds per target, default 60;
#                FUZZ_TARGETS="h1" to pick targets)

PORT ?= 8080
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= h1 router json form cookie multipart media
RELEASE := build/release
ASAN := build/asan
FUZZ := build/fuzz

# Debian packages each command needs (see README's dependency table).
DEPS_BUILD := gcc meson ninja-build pkg-config libjansson-dev libsqlite3-dev libpq-dev
DEPS_TEST := libcriterion-dev postgresql
DEPS_FUZZ := clang libclang-rt-14-dev

.PHONY: all build run test fuzz bench bench-quickstart deps-build deps-test deps-fuzz format clean

all: build

deps-build:
	@scripts/ensure-deps.sh $(DEPS_BUILD)
deps-test:
	@scripts/ensure-deps.sh $(DEPS_BUILD) $(DEPS_TEST)
deps-fuzz:
	@scripts/ensure-deps.sh $(DEPS_BUILD) $(DEPS_FUZZ)

$(RELEASE)/build.ninja:
	meson setup $(RELEASE) -Dbuildtype=release -Dwerror=true -Dtests=false

build: deps-build $(RELEASE)/build.ninja
	ninja -C $(RELEASE)
	@ln -sf $(RELEASE)/compile_commands.json compile_commands.json  # for clangd, clang-tidy

run: build
	@echo "tern: starting the quickstart API (Ctrl-C stops it)"
	PORT=$(PORT) $(RELEASE)/examples/quickstart/tern-quickstart --port $(PORT)

test: deps-test
	@scripts/run-tests.sh

fuzz: deps-fuzz
	@test -f $(FUZZ)/build.ninja || CC=clang meson setup $(FUZZ) -Dbuildtype=debugoptimized \
		-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ)
	@for name in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ)/corpus/$$name; \
		echo "== $$name ($(FUZZ_TIME) s)"; \
		$(FUZZ)/fuzz/fuzz_$$name -max_total_time=$(FUZZ_TIME) -dict=fuzz/http.dict \
			-print_final_stats=1 $(FUZZ)/corpus/$$name fuzz/corpus/$$name || exit 1; \
	done

bench: deps-build
	bash bench/run.sh

bench-quickstart: deps-build
	bash bench/quickstart/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

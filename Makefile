# `make run` and `make test` work on a fresh clone: each creates .venv and
# installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack.run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m 'not e2e' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache

# Benchmarks (issue #5, BENCHMARKS.md). `make bench` is the full run (4-16
# minutes on the shared 2-core machine); it installs the profilers (the `bench`
# extra) and sharp from the npm registry into bench/node_modules. BENCH_ARGS passes options to
# `python -m bench.run` (see --help), e.g. BENCH_ARGS="--parts variant --runs 3".
BENCH_STAMP := $(VENV)/.bench-installed
SHARP       := bench/node_modules/sharp/package.json

.PHONY: bench bench-install

bench-install: $(BENCH_STAMP) $(SHARP)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

$(SHARP): bench/package.json bench/package-lock.json
	npm ci --prefix bench --no-audit --no-fund
	touch $(SHARP)

bench: bench-install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

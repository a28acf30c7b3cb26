# `make run` and `make test` work on a fresh clone: each creates .venv and
# installs exactly the versions of requirements-dev.lock (hash-checked), then
# the project itself. `make lock` refreshes the lock files from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK_ARGS := --universal --generate-hashes --python-version 3.11 --quiet --custom-compile-command "make lock"

.PHONY: install run test test-unit clean test-faults bench-scale lock

install: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# requirements.lock: production (the Dockerfile, the wheel test); requirements-dev.lock:
# the same versions plus the dev extra. uv resolves (and hashes) in seconds.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev -c requirements.lock $(LOCK_ARGS) -o requirements-dev.lock

run: $(STAMP)
	$(BIN)/python -m devstack.run

# The slow fault scenarios (kill -9, outages, SIGTERM) run in `make test-faults`.
test: $(STAMP)
	$(BIN)/python -m pytest -m 'not faults_slow' $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m 'not e2e' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache

# -- imaging -----------------------------------------------------------------
# Headless Chromium renders the contact sheet and drives the web page's browser test
# (Debian's chromium and chromium-driver; as root).
.PHONY: chromium test-imaging contact-sheet
# Elsewhere (not root, no apt-get) it says what to install instead of failing obscurely.
chromium:
	@test -x "$${CHROMIUM:-/usr/bin/chromium}" -a -x "$${CHROMEDRIVER:-/usr/bin/chromedriver}" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "make test needs headless Chromium and its driver (the contact sheet, the web page): install" \
	         "Debian's 'chromium' and 'chromium-driver' (as root: make chromium), or set CHROMIUM and CHROMEDRIVER"; exit 1; \
	  fi; }

test: chromium

# The imaging tests alone: stage unit tests, the corpus through the real pipeline, re-publish, contact sheet.
test-imaging: $(STAMP) chromium
	$(BIN)/python -m pytest tests/unit/imaging tests/system/test_imaging_corpus.py tests/system/test_republish.py $(PYTEST_ARGS)

# A contact sheet of what the configured environment has published: make contact-sheet OUT=dir
contact-sheet: $(STAMP)
	$(BIN)/python -m publisher.ops.contact_sheet --out $(or $(OUT),contact-sheet)

# Operating it: the on-call view of the queue, and the image.
.PHONY: status docker-image
status: $(STAMP)
	$(BIN)/python -m publisher.ops.admin status

docker-image:
	docker build -t media-publisher .

# The whole fault suite (tests/faults/), slow scenarios included; prints one
# summary line per scenario (also written to .run/fault-summary.txt).
test-faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

# Scale-out figures (not part of `make test`): the same burst on one host and on
# two (network namespaces, needs root), intake and throughput on both brokers.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale_out $(BENCH_ARGS)

# The quality corpus (issue 25; bench/QUALITY_CORPUS.md): freely licensed photographs from scikit-image's
# wheel and Debian's wallpaper packages, fetched into .run/quality-corpus/ (apt-get: as root).
.PHONY: quality-corpus
quality-corpus: $(STAMP)
	$(BIN)/python -m bench.quality_corpus

# Benchmarks (BENCHMARKS.md). `make bench` is the full run (several
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

bench: bench-install quality-corpus
	$(BIN)/python -m bench.run $(BENCH_ARGS)

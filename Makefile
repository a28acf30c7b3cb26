# `make run` and `make test` work on a fresh clone: each creates .venv and
# installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit clean bench-scale

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

# Scale-out figures (not part of `make test`): the same burst on one host and on
# two (network namespaces, needs root), intake and throughput on both brokers.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale_out $(BENCH_ARGS)

# `make run` and `make test` work on a fresh clone: each creates .venv and
# installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit clean test-faults

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack.run

# The slow fault scenarios (kill -9, outages, SIGTERM) run in `make test-faults`.
test: $(STAMP)
	$(BIN)/python -m pytest -m 'not faults_slow' $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m 'not e2e' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache

# The whole fault suite (tests/faults/), slow scenarios included; prints one
# summary line per scenario (also written to .run/fault-summary.txt).
test-faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

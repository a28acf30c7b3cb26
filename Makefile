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

# Operating it (issue #6): the on-call view of the queue, and the image.
.PHONY: status docker-image
status: $(STAMP)
	$(BIN)/python -m publisher.admin status

docker-image:
	docker build -t media-publisher .

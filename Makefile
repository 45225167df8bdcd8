# connect-dynamics — every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test bench lint run worker socket clean

# The bot and, beside it, the emulators and the demo (their own distribution: sandbox/pyproject.toml).
$(STAMP): pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]' -e ./sandbox
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/connect-dynamics demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check bot handlers sandbox tests bench

run: $(STAMP)
	$(BIN)/connect-dynamics serve

socket: $(STAMP)
	$(BIN)/connect-dynamics socket

worker: $(STAMP)
	$(BIN)/connect-dynamics worker

clean:
	rm -rf $(VENV) build *.egg-info sandbox/build sandbox/*.egg-info .pytest_cache .ruff_cache

# connect-dynamics — every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test bench lint audit lock run worker socket clean

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

# Known vulnerabilities in the locked production dependencies, and bandit on the product's code
# (enforced). pip-audit asks PyPI's JSON API about each pinned version; where that does not answer
# (probed with the lock's first pin, 5 s), it could audit nothing and is skipped with one line.
AUDIT_PROBE := import re, urllib.request; pin = re.search(r"^([A-Za-z0-9_.-]+)==(\S+)", open("requirements.lock").read(), re.M); \
	urllib.request.urlopen("https://pypi.org/pypi/%s/%s/json" % pin.groups(), timeout=5)

audit: $(STAMP)
	@if $(BIN)/python -c '$(AUDIT_PROBE)' 2>/dev/null; then \
		$(BIN)/pip-audit --strict -r requirements.lock --no-deps --disable-pip; \
	else \
		echo "audit: pip-audit skipped: no vulnerability service reachable from this machine"; \
	fi
	$(BIN)/bandit -ll -q -r bot handlers

# requirements.lock: the production dependencies of pyproject.toml, pinned with hashes.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

run: $(STAMP)
	$(BIN)/connect-dynamics serve

socket: $(STAMP)
	$(BIN)/connect-dynamics socket

worker: $(STAMP)
	$(BIN)/connect-dynamics worker

clean:
	rm -rf $(VENV) build *.egg-info sandbox/build sandbox/*.egg-info .pytest_cache .ruff_cache

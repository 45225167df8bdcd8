# connect-dynamics — every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEPLOY_STAMP := $(VENV)/.deploy-tools
CONSTRAINTS := $(VENV)/constraints.txt
# Only the tests, benchmarks and lint get a default Redis: run, worker and socket must be told
# REDIS_URL, and stop naming it when it is missing.
test bench lint: export REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test bench lint audit lock deploy-check run worker socket clean

# The bot and, beside it, the emulators and the demo (their own distribution: sandbox/pyproject.toml).
# The versions requirements.lock pins (the image's) constrain the bot's dependencies here too.
$(STAMP): pyproject.toml sandbox/pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	sed -e '/^ *--hash/d' -e 's/ *\\$$//' requirements.lock > $(CONSTRAINTS)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test,bench]' -e ./sandbox
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/connect-dynamics demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check bot handlers sandbox tests bench
	$(BIN)/mypy

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

run: $(STAMP)
	$(BIN)/connect-dynamics serve

socket: $(STAMP)
	$(BIN)/connect-dynamics socket

worker: $(STAMP)
	$(BIN)/connect-dynamics worker

# requirements.lock: the production dependencies of pyproject.toml, pinned with their hashes (the image
# installs it). Resolved for every Python 3.11 (`--universal`: a dependency needed only on some, such as
# redis's async-timeout below 3.11.3, Debian 12's Python, is pinned with its marker); the pins already
# in the file are kept unless pyproject.toml asks otherwise. Independent of $(STAMP), which installs
# with the lock as constraints.
lock:
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command "make lock" --output-file requirements.lock pyproject.toml

# The deployment files: docker-compose.yml against the Compose spec, deploy/kubernetes/ against Kubernetes' schemas.
$(DEPLOY_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[deploy]'
	touch $(DEPLOY_STAMP)

deploy-check: $(DEPLOY_STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml
	if docker compose version >/dev/null 2>&1; then REDIS_PASSWORD=check docker compose config --quiet; fi

clean:
	rm -rf $(VENV) build *.egg-info sandbox/build sandbox/*.egg-info .pytest_cache .ruff_cache

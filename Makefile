# syndic — the two commands of the README, plus a few for developers.
# `make run` and `make test` work on a fresh machine: they create .venv and install first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Two worker processes (pytest-xdist): each has its own SQLite file and PostgreSQL database.
PYTEST_ARGS ?= -n 2

.PHONY: run test install lint fuzz bench clean translations browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . --group tests --group dev
	touch $(STAMP)

install: $(STAMP)

## Serve syndic on http://127.0.0.1:5000 (migrates; loads the demo data into an empty database).
run: $(STAMP)
	$(BIN)/syndic db upgrade
	$(BIN)/syndic demo load --if-empty
	$(BIN)/syndic serve --bind 127.0.0.1:5000

## Run the whole test suite (SQLite; PostgreSQL too when SYNDIC_TEST_POSTGRES_URL is set).
test: $(STAMP) browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser journeys need Debian's chromium + chromium-driver and axe-core from npm; when
# they cannot be installed the journeys are skipped and say why.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver (Debian packages)"; \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } || \
	    echo "could not install Chromium: the browser journeys will be skipped"; \
	  else echo "Chromium is missing (apt-get install chromium chromium-driver): browser journeys skipped"; fi; \
	fi
	@test -d tests/browser/node_modules/axe-core || \
	  npm ci --prefix tests/browser --no-audit --no-fund >/dev/null 2>&1 || \
	  echo "could not install axe-core (npm): the browser journeys will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy config

fuzz: $(STAMP)
	SYNDIC_FUZZ=full $(BIN)/python -m pytest -m fuzz $(PYTEST_ARGS)

# The benchmarks load the server from a second process with wrk (Debian's package).
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get install -y wrk >/dev/null 2>&1; } || echo "wrk is missing: some benchmarks need it"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache

## Refresh the French catalog from the sources, then compile it (edit the .po in between).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l -k N_ --no-location --sort-output \
	  -o config/translations/messages.pot config cmdb servicedesk connectors reporting
	$(BIN)/pybabel update -i config/translations/messages.pot -d config/translations --no-fuzzy-matching
	$(BIN)/python tools/translate_fr.py
	$(BIN)/pybabel compile -d config/translations --statistics

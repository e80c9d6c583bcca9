# couchmate — set-up, demo and tests. Everything a fresh machine needs is installed here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format clean system-deps

setup: $(STAMP)

# Debian packages: Xvfb for screen-capture tests, espeak-ng for the offline voice, strace
# for the test that proves a default run opens no outbound connection, sox (`play`) for the
# sound-device fallback test.
system-deps:
	@missing=""; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v play >/dev/null || missing="$$missing sox"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: please install$$missing (voice and screen tests need them)"; \
	  fi; \
	fi

# torch is installed first and pinned: 2.13.0 is a local CPU wheel here; any other version
# would pull a multi-GB CUDA build. pip, not uv: uv ignores the local wheel.
$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

# What the demo needs and nothing more (no torch, no llama-cpp-python build, no test-only
# packages), so a newcomer's first command speaks within minutes; `make test` adds the rest.
DEMO_STAMP := $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[games,models]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/couchmate demo

test: setup
	$(BIN)/ruff check src tests
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow and not server"

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: setup
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# `make demo` and `make test` work on a fresh machine with only Python 3.10+:
# the first use creates .venv in the repo root and installs the project into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned so that a CPU-only machine gets the small CPU build where one is offered
TORCH  ?= torch==2.13.0

.PHONY: demo wavelet-demo test test-all bench lint format clean

$(VENV)/.installed-dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(PIP) install --quiet -e ".[dev,bench]"
	touch $@

demo: $(VENV)/.installed-dev
	$(PY) examples/demo.py

wavelet-demo: $(VENV)/.installed-dev
	$(PY) examples/wavelet_demo.py

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

test-all: $(VENV)/.installed-dev
	$(PY) -m pytest -q -m ""

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/wavelets.py

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

format: $(VENV)/.installed-dev
	$(PY) -m ruff format src tests benchmarks examples
	$(PY) -m ruff check --fix src tests benchmarks examples

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache runs demo-out

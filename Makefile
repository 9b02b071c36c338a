# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs: the CPU build of torch first
# (pinned, from PyTorch's CPU index as well as pip's own, so that no CUDA
# packages are pulled), then zaug itself; `make test` adds the test tools.
# On a GPU machine: make demo TORCH_INDEX=https://download.pytorch.org/whl/cu126 (the CUDA build you need).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install install-dev demo test test-all bench clean

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "zaug needs Python 3.11 or newer; $(PYTHON) is older: run make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --extra-index-url "$(TORCH_INDEX)" --timeout 30 --retries 1 "$(TORCH)"
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/zaug demo --output demo_output

test: install-dev
	$(PY) -m pytest -m "not slow" --durations=15

test-all: install-dev
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache

# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs: the CPU build of torch first
# (pinned, so that no CUDA packages are pulled), then zaug itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: install demo test test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/zaug demo --output demo_output

test: install
	$(PY) -m pytest -m "not slow" --durations=15

test-all: install
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache

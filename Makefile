# Two entry points (see README): `make demo` and `make test`. Both set up
# .venv first. torch is pinned and installed before sentence-transformers so
# pip takes the CPU build that lies on disk instead of pulling a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PI := $(VENV)/bin/persona-index
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.lance
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-fast docs bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	PYTHONUNBUFFERED=1 bash scripts/demo.sh $(PI) $(DEMO_DB) $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q

# the subset to run while working (tests marked slow in tests/conftest.py left out)
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

docs: setup
	$(VENV)/bin/mkdocs build --strict

bench-quick: setup
	$(PY) -m benchmarks --quick

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_OUT)

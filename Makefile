# Every target bootstraps itself: it creates .venv and installs rlrobot with the pinned
# versions in constraints.txt when they are missing or out of date.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rlrobot.cli demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -n $(PYTEST_WORKERS)

bench: $(STAMP)
	$(PY) -m rlrobot.cli bench --study all --out docs/benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

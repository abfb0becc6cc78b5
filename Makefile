PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/dds.py

.PHONY: run test test-fast lint bench bench-accel clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m experiments.main --config=$(CONFIG)

# Two workers (pytest-xdist): most tests are XLA compilation, one core each, shared through
# one compilation cache per session (tests/conftest.py); on 2 cores the full suite took 7.6
# minutes (2026-12-06; --dist worksteal: the same).
test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 tests

# Everything but the end-to-end trainings (the `slow` marker): the loop while editing.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=15 tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check amvi_jax configs experiments tests

bench: $(VENV)/.installed
	$(PY) -m experiments.perf

# On a GPU machine after `pip install -e '.[cuda]'`: training step, evaluation and time to
# quality at accelerator-sized batches.
bench-accel: $(VENV)/.installed
	$(PY) -m experiments.perf --accel --output=docs/PERFORMANCE_ACCEL.md
	$(PY) -m experiments.time_to_quality --variants=before,accel --budget_s=60 \
		--output_dir=runs/ttq_accel

clean:
	rm -rf runs .pytest_cache

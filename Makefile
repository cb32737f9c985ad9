# Quick start:   make demo   (set up, then run the offline end-to-end demo)
#                make test   (set up, then lint and run the whole test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench goldens clean

$(BIN)/watcher: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/watcher
	$(BIN)/watcher demo

lint: $(BIN)/watcher
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

goldens: $(BIN)/watcher
	$(BIN)/python -m bench.goldens --write

bench: $(BIN)/watcher
	$(BIN)/python bench/bench_parse.py
	$(BIN)/python bench/bench_diff.py
	$(BIN)/python bench/bench_daemon.py --n 1000
	$(BIN)/python bench/bench_faults_fetch.py
	$(BIN)/python bench/bench_faults_content.py
	$(BIN)/python bench/bench_storage.py
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_pg_pair.py --n 1000

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# neuromod — `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-quick bench-quick-all setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/neuromod report --out reports/latest

test: $(STAMP)
	$(BIN)/lint-imports
	MPLBACKEND=Agg $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/trial_speed.py
	$(BIN)/python benchmarks/population.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/personal.py

# each benchmark's --quick finishes in under 60 s; bench-quick is the engine's (population.py)
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/population.py --quick

bench-quick-all: $(STAMP)
	$(BIN)/python benchmarks/population.py --quick
	$(BIN)/python benchmarks/trial_speed.py --quick
	$(BIN)/python benchmarks/personal.py --quick

clean:
	rm -rf $(VENV) reports build src/*.egg-info

# neuromod — `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run report test bench bench-quick bench-quick-all setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# the clinic app on SQLite (var/clinic.sqlite) with the demo clinic; prints the URL and demo sign-ins
run: $(STAMP)
	$(BIN)/neuromod serve --db sqlite:///var/clinic.sqlite --demo --host 127.0.0.1 --port $(or $(PORT),8000)

# simulate the shipped example plans into reports/latest
report: $(STAMP)
	$(BIN)/neuromod report --out reports/latest

test: $(STAMP)
	$(BIN)/lint-imports
	MPLBACKEND=Agg $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/trial_speed.py
	$(BIN)/python benchmarks/simulate_speed.py
	$(BIN)/python benchmarks/population.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/personal.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/web_evaluate.py
	$(BIN)/python benchmarks/clinic_personal.py

# each benchmark's --quick finishes in under 60 s; bench-quick is the engine's (population.py)
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/population.py --quick

bench-quick-all: $(STAMP)
	$(BIN)/python benchmarks/population.py --quick
	$(BIN)/python benchmarks/trial_speed.py --quick
	$(BIN)/python benchmarks/simulate_speed.py --quick
	$(BIN)/python benchmarks/personal.py --quick

clean:
	rm -rf $(VENV) reports build var src/*.egg-info

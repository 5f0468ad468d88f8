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

# simulate's kernels compiled ahead of time (numba pycc, gcc) into neuromod/model/_aot_kernels*.so,
# rebuilt when the model's compiled sources change; without it the numba JIT serves (slower to start)
AOT_SOURCES := $(addprefix src/neuromod/model/,_jit.py _aot_build.py kinetics.py junction.py muscle.py skin.py)
AOT := src/neuromod/model/_aot_kernels.json
$(AOT): $(STAMP) $(AOT_SOURCES)
	$(BIN)/python -m neuromod.model._aot_build

# bytecode of the package written once here: where PYTHONDONTWRITEBYTECODE is set (this machine) every
# command would otherwise compile its ~27 modules from source (~0.25 s of a cold `neuromod simulate`)
setup: $(STAMP) $(AOT)
	$(BIN)/python -m compileall -q src/neuromod > /dev/null

# the clinic app on SQLite (var/clinic.sqlite) with the demo clinic; prints the URL and demo sign-ins
run: setup
	$(BIN)/neuromod serve --db sqlite:///var/clinic.sqlite --demo --host 127.0.0.1 --port $(or $(PORT),8000)

# simulate the shipped example plans into reports/latest
report: setup
	$(BIN)/neuromod report --out reports/latest

test: setup
	$(BIN)/lint-imports
	MPLBACKEND=Agg $(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/trial_speed.py
	$(BIN)/python benchmarks/simulate_speed.py
	$(BIN)/python benchmarks/population.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/personal.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/web_evaluate.py
	$(BIN)/python benchmarks/clinic_personal.py
	$(BIN)/python benchmarks/cross_validation_speed.py

# each benchmark's --quick finishes in under 60 s; bench-quick is the engine's (population.py)
bench-quick: setup
	$(BIN)/python benchmarks/population.py --quick

bench-quick-all: setup
	$(BIN)/python benchmarks/population.py --quick
	$(BIN)/python benchmarks/trial_speed.py --quick
	$(BIN)/python benchmarks/simulate_speed.py --quick
	$(BIN)/python benchmarks/personal.py --quick
	$(BIN)/python benchmarks/cross_validation_speed.py --quick

clean:
	rm -rf $(VENV) reports build var src/*.egg-info

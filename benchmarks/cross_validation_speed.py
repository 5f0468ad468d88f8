"""Benchmark: leave-one-trial-out folds fitted one by one in this process against all at once on a
local Dask cluster (``neuromod calibrate --cross-validate --workers N``).

The same small cross-validation (three fitted parameters, the rows of six studies, 1000 virtual
subjects per arm, seed 7, folds from the priors) is run twice into fresh ``--out`` folders: in one
process, and with ``--workers N`` (default: every core). Both must give the same fold records and
the same ``cross_validation.csv`` byte for byte (the same fit, seed and subjects); the benchmark
fails otherwise. Printed: wall seconds of each, the ratio (sequential wall / cluster wall,
above 1 when the cluster pays) and the machine's cores.

Why the ratio can be below 1: each evaluation's kernels already run on every core of the machine
(``numba`` threads over the virtual patients, ``neuromod.model.kinetics``), so on a machine with
few cores the workers share the cores a single fold already used, and pay the cluster's start-up
and one engine import per worker. The cluster is for more cores than one fold's evaluations can
fill, and for several machines (``--dask tcp://host:8786``), where the folds, each a full fit of
minutes, are the unit that spreads.

Last line: ``RESULT folds=... sequential_s=... cluster_s=... speedup=... cores=...``.

    .venv/bin/python benchmarks/cross_validation_speed.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = "ona-gl-pooled,ona-gl-hd-20-wk24,abo-gl-50-wk24,prabo-gl-ev001,daxi-gl-sakura,ona-cfl-2014"
QUICK_ROWS = "ona-gl-pooled,ona-gl-hd-20-wk24,abo-gl-50-wk24"
FITTED = "junction.light_chain_half_life_days,population.half_block_sd,junction.half_block_fraction_of_typical_dose"


def run(arguments: list[str], out: Path) -> float:
    """Wall seconds of one ``neuromod calibrate`` (CPU time is not comparable: the cluster's workers
    are the nanny processes' children, outside this process's accounting)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "neuromod.cli", "calibrate", *arguments, "--out", str(out)],
                            capture_output=True, text=True, env=dict(os.environ, MPLBACKEND="Agg"))
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"calibrate failed: {result.stderr.strip().splitlines()[-1]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three studies, 400 subjects, 8 evaluations per fold")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local Dask workers")
    options = parser.parse_args()
    rows, subjects, budget = (QUICK_ROWS, 400, 8) if options.quick else (ROWS, 1000, 40)
    common = ["--only", FITTED, "--rows", rows, "--subjects", str(subjects), "--max-evaluations", "4",
              "--seed", "7", "--cross-validate", "--no-report", "--fold-evaluations", str(budget)]
    folds = len(rows.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        here, cluster = Path(scratch) / "here", Path(scratch) / "cluster"
        print(f"{folds} folds from the priors, {subjects} subjects per arm, up to {budget} evaluations each; "
              f"{os.cpu_count()} cores", flush=True)
        sequential_wall = run(common, here)
        print(f"  one process:               {sequential_wall:6.1f} s wall", flush=True)
        cluster_wall = run([*common, "--workers", str(options.workers)], cluster)
        print(f"  local cluster, {options.workers} workers:  {cluster_wall:6.1f} s wall", flush=True)
        same = all((here / "folds" / p.name).read_bytes() == p.read_bytes() for p in (cluster / "folds").iterdir())
        same = same and (here / "cross_validation.csv").read_bytes() == (cluster / "cross_validation.csv").read_bytes()
        if not same:
            sys.exit("the cluster's folds differ from the folds fitted in one process")
        print("  the same fold records and table, byte for byte")
    print(f"RESULT folds={folds} sequential_s={sequential_wall:.1f} cluster_s={cluster_wall:.1f} "
          f"speedup={sequential_wall / cluster_wall:.2f} cores={os.cpu_count()}")


if __name__ == "__main__":
    main()

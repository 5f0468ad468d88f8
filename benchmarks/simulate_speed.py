"""Benchmark: `neuromod simulate` of one label plan, from the shell and warm in a running process.

Measures, each in the same run so the ratios hold on a busy machine:

1. From the shell (fresh processes, wall time, best of ``--repeats``): the interpreter with NumPy
   alone (the floor), ``import neuromod.cli`` (imports), ``neuromod simulate PLAN`` (imports, the
   work, the table) with the ahead-of-time kernels (``make setup`` builds them:
   :mod:`neuromod.model._jit`) and, its peer, with numba's JIT (``NEUROMOD_JIT=1``: numba's import
   and its cache load of the compiled kernels), their ratio, and ``neuromod simulate PLAN --out
   DIR`` (plus the CSV and the two PNGs: matplotlib's import and rendering).
2. In one process set up as `neuromod serve`'s (``neuromod.cli`` imported first): the first
   ``neuromod.model.simulate.simulate(plan, 180)`` (data files read, face-map rasters built) and
   the warm calls after it (what the clinic API pays per request), with their ratio; and where a
   warm call's time goes (cProfile).

3. As `neuromod serve` runs (a child process: the CLI imported, then the app's start-up
   :func:`neuromod.clinic.app.warm_up`, which loads numba, so every call runs the JIT's code):
   its start-up and warm calls. ``warm_ms`` is this, the API's figure; ``warm_aot_ms`` item 2's.

Last line: ``RESULT simulate_shell_s=... simulate_jit_shell_s=... jit_over_aot=... simulate_cpu_s=...
simulate_out_shell_s=... import_s=... first_call_s=... warm_ms=... warm_aot_ms=... cold_over_warm=...``.

    .venv/bin/python benchmarks/simulate_speed.py [--quick] [--repeats N]

Measured on the 2-core development machine shared with other engineers' jobs (load average
2-9), so wall times are several times an idle machine's; see docs/performance.md.

Profile of one warm call (label plan, cProfile and per-stage timing, same script before and after
branch simspeed, load 2-4):

    before: 99 ms = assess_safety 82 ms (_integrate of 729 quadrature rows, parallel team wake-up)
            + spread 17 ms (dense 31 x 35,325 products, profile loop) + run_model 17 ms (skin's
            Python day loop ~7 ms, integrator ~8 ms) + scores and landmarks
    after:  28 ms = assess_safety 12 ms (111 rows on one thread: the refined risk grid)
            + spread 5 ms (muscle-cell pairs) + run_model 2 ms (compiled skin, one thread) + ~7 ms
            scores, landmarks, patient description
    RESULT before: simulate_shell_s=2.16 import_s=1.31 first_call_s=0.599 warm_ms=84.7
    RESULT after:  simulate_shell_s=1.72 import_s=1.39 first_call_s=0.447 warm_ms=18.1 (12:46 UTC, load 3.2;
                   an earlier run with strides 8/2/1: shell 1.78 s, import 0.97 s, warm 32.0 ms)

What remains of the shell time: numba's import (~0.7 s CPU) and its registry set-up at the first
cache load (0.4-0.8 s; once per process), SciPy's special functions (~0.2 s, model/scores.py).
(Since branch aot the single-plan path runs ahead-of-time kernels without numba or SciPy.)

Bytecode (issue 10, branch speed3): the development machine sets ``PYTHONDONTWRITEBYTECODE=1``,
so the package's 27 modules were compiled from source in every fresh process; the script now
writes their bytecode first (``compileall``, as ``make setup`` and any install of the wheel do).
Alternating runs at load 3.3-3.5: 0.85-0.95 s CPU without, 0.53-0.88 s with. Warm:
``scores.depth_for_score``'s 4001-point table memoised (~0.9 ms a call, two a ``simulate``).
Measured at load 4.2-4.4 (17:35-17:36 UTC), two runs of ``--quick``:

    RESULT simulate_shell_s=0.77 simulate_cpu_s=0.60 import_s=0.72 first_call_s=0.110 warm_ms=29.7
    RESULT simulate_shell_s=0.55 simulate_cpu_s=0.54 import_s=0.56 first_call_s=0.084 warm_ms=19.6
    (python + numpy alone: 0.22 s and 0.19 s in the same runs)

A warm call's time at that load: the serial ahead-of-time integrator ~13-16 ms, the spread ~7-14
ms (model code). Not kept, measured: ``PYDANTIC_DISABLE_PLUGINS`` (no gain beyond noise) and
pydantic's ``defer_build`` (all four models are validated by ``simulate`` anyway).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAN = Path(__file__).resolve().parents[1] / "src" / "neuromod" / "examples" / "glabella_botox.yaml"
NEUROMOD = Path(sys.executable).with_name("neuromod")
PACKAGE = PLAN.parents[1]


def _shell_seconds(command: list[str], repeats: int, force_jit: bool = False) -> float:
    """Best wall time of ``command`` over ``repeats`` fresh processes (the best is the least
    disturbed); ``force_jit``: with ``NEUROMOD_JIT=1`` (numba's JIT instead of the ahead-of-time kernels).
    The CPU time (user + system) of each run is kept in :data:`CPU_SECONDS` (less sensitive to the
    machine's other jobs than wall time)."""
    env = {k: v for k, v in os.environ.items() if k != "NEUROMOD_JIT"}
    if force_jit:
        env["NEUROMOD_JIT"] = "1"
    best, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    CPU_SECONDS[(tuple(command), force_jit)] = cpu
    return best


#: The libraries every command needs, imported as `neuromod simulate` uses them: NumPy, pydantic
#: (with one strict model built, which loads its schema machinery), typer and PyYAML's C loader.
LIBRARIES = ("import numpy, typer, yaml; from typing import Annotated; from pydantic import BaseModel, Field, "
             "Strict; M = type('M', (BaseModel,), {'__annotations__': {'x': Annotated[float, Strict(), Field(ge=0)]}}); "
             "M(x=1.0)")


#: Least CPU seconds (user + system) of a :func:`_shell_seconds` measurement, by (command, force_jit).
CPU_SECONDS: dict[tuple, float] = {}


def in_process(warm_calls: int) -> dict:
    """First and warm ``simulate`` calls in this process, and a profile of the warm ones."""
    began = time.perf_counter()
    import neuromod.cli  # noqa: F401 - as `neuromod serve` does: the CLI's settings (one BLAS thread) apply
    from neuromod.model._jit import aot_kernels
    from neuromod.model.simulate import simulate
    from neuromod.schemas.plan import load_plan

    imported = time.perf_counter() - began
    plan = load_plan(PLAN)
    began = time.perf_counter()
    simulate(plan, 180)
    first = time.perf_counter() - began
    times = []
    profile = cProfile.Profile()
    for _ in range(warm_calls):
        began = time.perf_counter()
        simulate(plan, 180)
        times.append(time.perf_counter() - began)
    profile.enable()
    for _ in range(3):
        simulate(plan, 180)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(6)
    return {"import_model_s": imported, "first_s": first, "warm_s": sorted(times)[len(times) // 2],
            "profile": text.getvalue(), "ahead_of_time": aot_kernels() is not None,
            "numba_loaded": "numba" in sys.modules}


def server_process(warm_calls: int) -> dict:
    """Warm calls in a process set up as `neuromod serve` sets itself up: the CLI imported, then
    the app's start-up :func:`neuromod.clinic.app.warm_up` (numba loaded, the label plan simulated
    once), so every call runs the JIT's code (:func:`neuromod.model._jit.run_kernel`). Run in a child process:
    numba, once imported, cannot be unloaded from the benchmark's own process."""
    began = time.perf_counter()
    import neuromod.cli  # noqa: F401
    from neuromod.clinic.app import warm_up
    from neuromod.model.simulate import simulate
    from neuromod.schemas.plan import load_plan

    warm_up()
    started = time.perf_counter() - began
    plan = load_plan(PLAN)
    times = []
    for _ in range(warm_calls):
        t = time.perf_counter()
        simulate(plan, 180)
        times.append(time.perf_counter() - t)
    return {"startup_s": started, "warm_s": sorted(times)[len(times) // 2], "numba_loaded": "numba" in sys.modules}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (< 60 s)")
    parser.add_argument("--repeats", type=int, help="fresh processes per shell measurement (default 5; --quick 2)")
    parser.add_argument("--child-server", type=int, metavar="CALLS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_server:
        print(json.dumps(server_process(args.child_server)))
        return
    repeats = args.repeats or (2 if args.quick else 5)
    print("neuromod simulate speed (model estimates for planning and education, not medical advice).")
    command = [str(NEUROMOD), "simulate", str(PLAN)]
    # the package's bytecode, as `make setup` and any install write it (with PYTHONDONTWRITEBYTECODE
    # set, as on the development machine, each run would otherwise compile ~27 modules from source)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PACKAGE)], check=True, capture_output=True)
    _shell_seconds(command, 1)  # the OS page cache filled
    _shell_seconds(command, 1, force_jit=True)  # numba's cache filled
    floor = _shell_seconds([sys.executable, "-c", "import numpy"], repeats)
    libraries = _shell_seconds([sys.executable, "-c", LIBRARIES], repeats)
    imports = _shell_seconds([sys.executable, "-c", "import neuromod.cli"], repeats)
    table = _shell_seconds(command, repeats)
    jit_table = _shell_seconds(command, repeats, force_jit=True)
    with tempfile.TemporaryDirectory() as folder:
        with_out = _shell_seconds([*command, "--out", str(Path(folder) / "x")], repeats)
    print(f"shell, best of {repeats}: python + numpy {floor:.2f} s; import neuromod.cli {imports:.2f} s; "
          f"neuromod simulate {table:.2f} s (imports {imports / table:.0%}); with --out (CSV + 2 PNG) {with_out:.2f} s")
    print(f"shell, the libraries' floor: python + numpy, pydantic, typer and PyYAML imported and one "
          f"pydantic model built {libraries:.2f} s -> neuromod's own share of simulate {table - libraries:.2f} s "
          f"({(table - libraries) / table:.0%})")
    print(f"shell, the peer: neuromod simulate on numba's JIT (NEUROMOD_JIT=1) {jit_table:.2f} s -> "
          f"JIT / ahead-of-time {jit_table / table:.2f}x")
    cpu, jit_cpu = CPU_SECONDS[(tuple(command), False)], CPU_SECONDS[(tuple(command), True)]
    floor_cpu = CPU_SECONDS[((sys.executable, "-c", "import numpy"), False)]
    print(f"shell, CPU seconds (user + system, least of {repeats}): python + numpy {floor_cpu:.2f}; "
          f"neuromod simulate {cpu:.2f} ahead-of-time, {jit_cpu:.2f} JIT")
    run = in_process(20 if args.quick else 50)
    kernels = "ahead-of-time kernels" if run["ahead_of_time"] else "numba's JIT (no ahead-of-time build: make setup)"
    print(f"in process ({kernels}; numba imported: {run['numba_loaded']}): first simulate(plan, 180) "
          f"{run['first_s']:.3f} s (data files, face-map rasters), "
          f"warm {1000 * run['warm_s']:.1f} ms (median) -> first/warm {run['first_s'] / run['warm_s']:.0f}x")
    print("where a warm call goes (cProfile, 3 calls):")
    print("\n".join(line for line in run["profile"].splitlines() if line.strip())[-900:])
    child = subprocess.run([sys.executable, __file__, "--child-server", str(20 if args.quick else 50)], check=True,
                           capture_output=True, text=True)
    server = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"as `neuromod serve` runs (numba loaded at start by clinic.app.warm_up: the JIT's code; numba "
          f"imported: {server['numba_loaded']}): start-up {server['startup_s']:.2f} s, warm "
          f"{1000 * server['warm_s']:.1f} ms (median) against {1000 * run['warm_s']:.1f} ms through the "
          f"ahead-of-time kernels above")
    print(f"RESULT simulate_shell_s={table:.2f} simulate_jit_shell_s={jit_table:.2f} jit_over_aot={jit_table / table:.2f} "
          f"simulate_cpu_s={cpu:.2f} "
          f"simulate_out_shell_s={with_out:.2f} import_s={imports:.2f} libraries_s={libraries:.2f} "
          f"first_call_s={run['first_s']:.3f} warm_ms={1000 * server['warm_s']:.1f} "
          f"warm_aot_ms={1000 * run['warm_s']:.1f} cold_over_warm={run['first_s'] / run['warm_s']:.0f}")


if __name__ == "__main__":
    main()

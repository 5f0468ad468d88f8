"""The ahead-of-time kernels of the single-plan path (:mod:`neuromod.model._jit`, built by
``make setup`` through :mod:`neuromod.model._aot_build`) give what numba's JIT gives, and the JIT
serves wherever the build cannot: forced off, stale, or called with other argument types.

Each path runs in its own fresh process, as `neuromod simulate` does: the default one (the
ahead-of-time module) must finish without importing numba or SciPy at all, the forced one
(``NEUROMOD_JIT=1``, as if the module were absent) through numba. Tolerance 1e-12 on every number
(both compile the same Python functions with the same options for the same CPU; measured: equal
to the last bit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuromod.model import _jit
from neuromod.model.skin import _skin_recurrence

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "neuromod" / "examples"

#: Simulates every example plan; prints one JSON document: the documented ``simulate --json``
#: of each, the raw output arrays, and which heavy packages the process imported.
SIMULATE_EVERY_EXAMPLE = """
import json, sys
from pathlib import Path
from neuromod.model.simulate import simulate
from neuromod.schemas.plan import load_plan
results = {}
for path in sorted(Path(sys.argv[1]).glob("*.yaml")):
    result = simulate(load_plan(path), 180)
    out = result.output
    results[path.name] = {"json": result.to_json(), "raw": {name: getattr(out, name).tolist() for name in (
        "blocked_fraction", "strength", "atrophy", "area_strength", "contraction_depth_mm", "rest_depth_mm")}}
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite", "scipy"})
print(json.dumps({"results": results, "loaded": loaded}))
"""


def _run_examples(force_jit: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != _jit.FORCE_JIT_VARIABLE}
    if force_jit:
        env[_jit.FORCE_JIT_VARIABLE] = "1"
    run = subprocess.run([sys.executable, "-c", SIMULATE_EVERY_EXAMPLE, str(EXAMPLES)], check=False, capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _numbers(document, path="") -> dict[str, float]:
    """Every number in a JSON document by its path (strings and None compared as they are)."""
    if isinstance(document, dict):
        return {k: v for key, value in document.items() for k, v in _numbers(value, f"{path}/{key}").items()}
    if isinstance(document, list):
        return {k: v for i, value in enumerate(document) for k, v in _numbers(value, f"{path}[{i}]").items()}
    return {path: document}


@pytest.fixture(scope="module")
def both_paths():
    assert _jit.aot_kernels() is not None, (
        "the ahead-of-time kernels are not built or are stale: run `make setup` "
        "(python -m neuromod.model._aot_build)")
    return _run_examples(force_jit=False), _run_examples(force_jit=True)


def test_the_build_exports_the_single_plan_kernels():
    loaded = _jit.aot_kernels()
    assert loaded is not None, "not built or stale: run `make setup`"
    module, exports = loaded
    # the integrator and the skin recurrence: every kernel simulate runs (whatever their names)
    assert {name.split("__")[0] for name in exports} == {"kinetics", "skin"}
    assert all(callable(getattr(module, name)) for name in exports)


def test_ahead_of_time_equals_jit_on_every_example_plan(both_paths):
    aot, jit = both_paths
    assert len(aot["results"]) == len(list(EXAMPLES.glob("*.yaml"))) >= 5
    for plan, result in aot["results"].items():
        for part in ("json", "raw"):
            ours, theirs = _numbers(result[part]), _numbers(jit["results"][plan][part])
            assert ours.keys() == theirs.keys(), plan
            for key, value in ours.items():
                if isinstance(value, float):
                    assert value == pytest.approx(theirs[key], rel=1e-12, abs=1e-12), f"{plan} {part}{key}"
                else:
                    assert value == theirs[key], f"{plan} {part}{key}"


def test_simulate_imports_neither_numba_nor_scipy_with_the_build(both_paths):
    aot, jit = both_paths
    assert aot["loaded"] == []  # the kernels came from the extension: no JIT ran
    assert "numba" in jit["loaded"]  # the fallback compiled (or loaded from numba's cache) instead


def test_the_command_line_simulate_imports_no_heavy_package():
    code = ("import sys\nfrom neuromod.cli import app\n"
            f"sys.argv = ['neuromod', 'simulate', {str(EXAMPLES / 'glabella_botox.yaml')!r}, '--json']\n"
            "try:\n    app()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "heavy = {'numba', 'llvmlite', 'scipy', 'matplotlib', 'pandas', 'fastapi', 'sqlalchemy', 'rich'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != _jit.FORCE_JIT_VARIABLE}
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["areas"]["glabella"]["onset_day"] is not None
    assert run.stderr.strip().splitlines()[-1] == "[]"


def test_a_stale_build_is_never_used(tmp_path, monkeypatch):
    manifest = json.loads(_jit.AOT_MANIFEST.read_text())
    manifest["source_sha256"] = "0" * 64  # as if kinetics.py had been edited since the build
    stale = tmp_path / _jit.AOT_MANIFEST.name
    stale.write_text(json.dumps(manifest))
    monkeypatch.setattr(_jit, "AOT_MANIFEST", stale)
    _jit.aot_kernels.cache_clear()
    try:
        assert _jit.aot_kernels() is None
    finally:
        monkeypatch.undo()
        _jit.aot_kernels.cache_clear()
    assert _jit.aot_kernels() is not None


def test_numba_code_compiled_elsewhere_calls_the_deferred_functions():
    # a module that imports numba itself and calls the model's scalar functions, imported before
    # numba was loaded (still plain Python, deferred): numba types and inlines them as dispatchers
    code = ("from neuromod.model import junction\n"
            "assert type(junction.blocked_fraction).__name__ == '_Deferred'\n"
            "from numba import njit\n"
            "blocked = junction.blocked_fraction\n"
            "@njit\n"
            "def twice(occupied, maturity):\n"
            "    return 2.0 * blocked(occupied, maturity, 0.9, 0.3)\n"
            "print(twice(0.5, 0.2))\n")
    env = {k: v for k, v in os.environ.items() if k != _jit.FORCE_JIT_VARIABLE}
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert float(run.stdout) == pytest.approx(2.0 * 0.9 * 0.5 * (1.0 - 0.3 * 0.2), rel=1e-15)


def _skin_arguments(order: str) -> tuple:
    """Arguments of the skin recurrence for 2 patients, 3 areas, 5 days; the 3-d arrays in ``order``."""
    rng = np.random.default_rng(7)
    days = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    target, folding = (np.asarray(rng.uniform(0.0, 0.2, (5, 2, 3)), order=order) for _ in range(2))
    baseline, deepen = rng.uniform(0.0, 0.1, (2, 3)), rng.uniform(0.0, 1e-4, (2, 3))
    dynamic, static = np.empty((5, 2, 3), order=order), np.empty((5, 2, 3), order=order)
    return days, target, folding, baseline, deepen, 0.3, 1.5, 0.5, 20.0, 60.0, dynamic, static


def test_arguments_of_other_types_go_to_the_jit():
    # the extension reads arrays as C-ordered without checking: a Fortran-ordered one must not reach it
    c_order, f_order = _skin_arguments("C"), _skin_arguments("F")
    assert _jit._argument_spec(f_order[1]) != _jit._argument_spec(c_order[1])
    _jit.run_kernel(_skin_recurrence, *c_order)
    _jit.run_kernel(_skin_recurrence, *f_order)
    for ours, theirs in zip(c_order[-2:], f_order[-2:]):
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=0)
    assert np.all(c_order[-1] > 0)


def test_normal_cdf_without_scipy_is_scipy_ndtr():
    from scipy.special import ndtr

    from neuromod.model.scores import normal_cdf, numpy_normal_cdf

    x = np.concatenate([np.linspace(-40.0, 40.0, 200_001), np.random.default_rng(3).normal(0.0, 3.0, 100_000),
                        [-np.inf, np.inf, 0.0, -0.0]])
    np.testing.assert_allclose(numpy_normal_cdf(x), ndtr(x), rtol=1e-15, atol=0)
    scalars = x[::997]
    np.testing.assert_allclose([numpy_normal_cdf(float(v)) for v in scalars], ndtr(scalars), rtol=1e-15, atol=0)
    assert numpy_normal_cdf(np.ones((2, 3))).shape == (2, 3)
    assert np.isnan(numpy_normal_cdf(np.nan)) and np.isnan(numpy_normal_cdf(np.array([np.nan]))[0])
    assert normal_cdf(1.5) == ndtr(1.5)  # SciPy loaded: its ndtr serves


def test_a_process_with_numba_loaded_runs_the_jit_code(monkeypatch):
    """Once numba is loaded (the clinic app's warm-up, any trial), serial calls run the JIT's code,
    not the export: the export only spares short processes numba's import (`_jit.run_kernel`)."""
    _jit.load_numba()

    class Export:
        def __getattr__(self, name):
            raise AssertionError(f"the ahead-of-time export {name} ran in a process with numba loaded")

    arguments = _skin_arguments("C")
    exports = {_jit.export_name(_skin_recurrence): [_jit._argument_spec(a) for a in arguments]}
    monkeypatch.setattr(_jit, "aot_kernels", lambda: (Export(), exports))
    _jit.run_kernel(_skin_recurrence, *arguments)
    assert np.all(arguments[-1] > 0)

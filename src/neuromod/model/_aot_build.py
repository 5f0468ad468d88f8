"""Build the ahead-of-time kernels of the single-plan path: ``python -m neuromod.model._aot_build``.

Run by ``make setup``. Runs ``simulate`` on every example plan with numba's JIT while
:func:`neuromod.model._jit.recording` notes each kernel :func:`~neuromod.model._jit.run_kernel`
calls and its argument types, then compiles those kernels with numba's ``pycc`` into the C
extension ``neuromod/model/_aot_kernels*.so`` next to this file, and writes
``_aot_kernels.json``: each export's argument types (checked at every call: the export does not
check them itself), the model modules holding compiled functions and the SHA-256 of their
sources (an edited source makes the build stale: the JIT serves until the next build).

One implementation: each export is the kernel's own Python function (``py_func``) compiled with
the kernel's numba options, less ``parallel`` (a plan's batches run on one thread anyway:
:data:`~neuromod.model._jit.SERIAL_BATCH_PATIENTS`), through a forwarding function pycc exports;
the callees it inlines or calls are the same numba functions the JIT compiles. Code generation
targets this machine's CPU, as the JIT does, so the two agree to rounding (``tests/test_aot.py``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from neuromod.model import _jit

EXTENSION = _jit.AOT_MODULE.rsplit(".", 1)[-1]


def _forwarding(name: str, target: object, parameters: list[str]) -> object:
    """``def name(a, b, ...): return target(a, b, ...)``: pycc compiles exports with its default
    flags, so the export forwards to a numba function carrying the kernel's own (fastmath, error model)."""
    listed = ", ".join(parameters)
    namespace: dict = {"_forwarded_kernel": target}
    exec(f"def {name}({listed}):\n    return _forwarded_kernel({listed})\n", namespace)  # noqa: S102 - generated here
    return namespace[name]


def record_kernels() -> dict[str, tuple[object, tuple]]:
    """Export name -> (kernel, numba argument types), from ``simulate`` of every example plan.
    One signature per kernel: the single-plan path lays its arrays out one way (C order, float64)."""
    from neuromod.model.simulate import simulate
    from neuromod.schemas.plan import load_plan

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    with _jit.recording() as calls:
        for path in examples:
            simulate(load_plan(path), 180)
    kernels: dict[str, tuple[object, tuple]] = {}
    for name, kernel, types in calls:
        if name in kernels and kernels[name][1] != types:
            raise RuntimeError(f"{name}: called with two signatures, {kernels[name][1]} and {types}")
        kernels[name] = (kernel, types)
    if not kernels:
        raise RuntimeError("no kernel ran through run_kernel while simulating the example plans")
    return kernels


def _spec_of(numba_type: object) -> str:
    """The manifest's spelling (:func:`neuromod.model._jit._argument_spec`) of one numba argument type."""
    from numba import types

    if isinstance(numba_type, types.Array):
        return f"{numba_type.dtype}[{numba_type.ndim},{'C' if numba_type.layout == 'C' else 'A'}]"
    if isinstance(numba_type, types.Boolean):
        return "bool"
    if isinstance(numba_type, types.Integer):
        return "int64"
    if isinstance(numba_type, types.Float):
        return "float64"
    return str(numba_type)


def build(output_dir: Path | None = None) -> Path:
    """Compile the recorded kernels into the extension and write its manifest (last: a failed
    build leaves none, so the JIT serves); returns the extension's path."""
    numba = _jit.load_numba()
    from numba.pycc import CC

    output_dir = Path(output_dir or Path(__file__).parent)
    manifest_path = output_dir / _jit.AOT_MANIFEST.name
    manifest_path.unlink(missing_ok=True)
    kernels = record_kernels()
    compiler = CC(EXTENSION)
    compiler.output_dir = str(output_dir)
    compiler.target_cpu = "host"  # as numba's JIT: the build runs where it is used (make setup)
    exports = {}
    for name, (kernel, argument_types) in sorted(kernels.items()):
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "cache", "nopython")}
        serial = numba.njit(**options)(kernel.py_func)
        returned = kernel.overloads[argument_types].signature.return_type
        parameters = list(inspect.signature(kernel.py_func).parameters)
        compiler.export(name, returned(*argument_types))(_forwarding(name, serial, parameters))
        exports[name] = [_spec_of(t) for t in argument_types]
    compiler.compile()
    modules = sorted(_jit.compiled_modules & set(sys.modules))
    manifest = {"modules": modules, "source_sha256": _jit._source_digest(modules), "exports": exports,
                "numba": numba.__version__}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return output_dir / compiler.output_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the extension and its manifest (default: the package)")
    args = parser.parse_args()
    began = time.perf_counter()
    path = build(args.out)
    print(f"built {path} in {time.perf_counter() - began:.0f} s (simulate's kernels ahead of time; "
          f"the JIT remains the fallback)")


if __name__ == "__main__":
    main()

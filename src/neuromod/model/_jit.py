"""Compiled kernels without paying for numba where they are not needed.

The model's loops are numba functions (``@njit``). Importing numba and loading its cached
machine code costs a fresh process ~0.7-1.3 s, most of `neuromod simulate`'s wall time, while
one plan needs only two kernels, run on one thread: the kinetic integrator
(:func:`neuromod.model.kinetics._integrate`) and the skin recurrence
(:func:`neuromod.model.skin._skin_recurrence`). So:

* ``make setup`` compiles those kernels ahead of time (:mod:`neuromod.model._aot_build`, numba's
  ``pycc``) from the same Python functions into the C extension ``neuromod.model._aot_kernels``
  (git-ignored build output), with a manifest of the argument types each export was compiled for
  and a digest of the model sources it was built from.
* :func:`njit` here is ``numba.njit`` when numba is loaded, and otherwise defers the decoration:
  the function stays plain Python until something needs it compiled (:func:`load_numba`).
* :func:`run_kernel` runs a kernel from its ahead-of-time export when the module imports, its
  manifest matches the sources on disk (a stale build is never used) and the arguments have the
  types it was compiled for; otherwise through numba's JIT (loaded then). Callers say whether the
  serial export suits the call (the integrator's parallel JIT is faster for large batches).

Without the extension (not built, failed to build, or ``NEUROMOD_JIT=1`` in the environment) numba
is imported with this module and everything runs on the JIT as before. The results are the same
either way (``tests/test_aot.py``: every example plan's ``simulate`` JSON to 1e-12). The trial
kernels (:mod:`neuromod.model.visit_course`) always use the JIT.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache, update_wrapper
from pathlib import Path
from typing import Any

import numpy as np

#: The ahead-of-time module (built by ``python -m neuromod.model._aot_build``) and its manifest.
AOT_MODULE = "neuromod.model._aot_kernels"
AOT_MANIFEST = Path(__file__).with_name("_aot_kernels.json")
#: Set to ``1`` to ignore the ahead-of-time module and compile everything with numba's JIT.
FORCE_JIT_VARIABLE = "NEUROMOD_JIT"

#: Batches of at most this many patients are integrated on one thread (:func:`threads_for`) and
#: may use the serial ahead-of-time kernels: waking numba's parallel team costs ~1 ms on an idle
#: machine and 5-7 ms on the busy 2-core one, more than integrating 100 patients' danger muscles
#: (measured: 99 rows 7 ms on one thread).
SERIAL_BATCH_PATIENTS = 128

_numba: Any = None
_loading = threading.Lock()  # the clinic API may need the JIT from two request threads at once
#: Every function decorated through :func:`njit` whose compilation waits for numba.
_deferred: list[_Deferred] = []
#: Modules holding functions decorated through :func:`njit` (their sources make the build digest).
compiled_modules: set[str] = set()
#: While :func:`recording`: (export name, kernel, argument types) of each :func:`run_kernel` call.
_recorded: list[tuple[str, Any, tuple]] | None = None


def prange(*arguments: int) -> range:
    """``numba.prange`` once numba is loaded (:func:`load_numba` rebinds the name); ``range`` before."""
    return range(*arguments)


class _Deferred:
    """A function decorated with :func:`njit` before numba was loaded: callable (compiling on the
    first call, through :func:`load_numba`), with ``py_func`` as numba's dispatchers have."""

    def __init__(self, py_func: Callable, options: dict) -> None:
        self.py_func = py_func
        self.options = options
        self.dispatcher: Any = None
        update_wrapper(self, py_func)

    def _compiled(self) -> Any:
        numba = load_numba()
        if self.dispatcher is None:  # decorated while another thread was loading numba
            self.dispatcher = numba.njit(**self.options)(self.py_func)
        return self.dispatcher

    def __call__(self, *arguments: Any) -> Any:
        return self._compiled()(*arguments)

    # Where numba code compiled elsewhere (``from numba import njit`` in a module that imported
    # this function before numba was loaded) meets a deferred function among its globals: numba
    # types it by ``_numba_type_`` and inlines it by ``targetoptions`` / ``py_func``, as a dispatcher.
    @property
    def targetoptions(self) -> dict:
        return self.options

    @property
    def _numba_type_(self) -> Any:
        return load_numba().core.types.Dispatcher(self._compiled())


def njit(**options: Any) -> Callable[[Callable], Any]:
    """``numba.njit(**options)``, deferred until numba is needed (see the module docstring)."""

    def decorate(func: Callable) -> Any:
        compiled_modules.add(func.__module__)
        if _numba is not None:
            return _numba.njit(**options)(func)
        deferred = _Deferred(func, options)
        _deferred.append(deferred)
        return deferred

    return decorate


def load_numba() -> Any:
    """Import numba, turn every deferred :func:`njit` function into its dispatcher and rebind the
    names that refer to them in the package's modules (numba resolves a kernel's callees through its
    module globals when it compiles). Idempotent; returns the numba module."""
    global _numba
    if _numba is not None:
        return _numba
    with _loading:
        if _numba is None:
            _numba = _compile_deferred()
    return _numba


def _compile_deferred() -> Any:
    """:func:`load_numba`'s work, under its lock."""
    import numba

    for deferred in _deferred:
        deferred.dispatcher = numba.njit(**deferred.options)(deferred.py_func)
    placeholder = prange  # this module's own name is rebound in the loop too
    for name, module in list(sys.modules.items()):
        if not name.startswith("neuromod.") or module is None:
            continue
        for key, value in list(vars(module).items()):
            if isinstance(value, _Deferred):
                setattr(module, key, value.dispatcher)
            elif value is placeholder:
                setattr(module, key, numba.prange)
    _deferred.clear()
    return numba


def _source_digest(modules: list[str]) -> str:
    """SHA-256 over the named modules' source files, in order: what the ahead-of-time build compiled."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()


def _argument_spec(value: Any) -> str:
    """The type of one kernel argument as the manifest writes it: ``float64[3,C]`` for a C-ordered
    3-d float64 array, ``int64`` / ``float64`` for scalars."""
    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else "A"
        return f"{value.dtype.name}[{value.ndim},{layout}]"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    if isinstance(value, (float, np.floating)):
        return "float64"
    return type(value).__name__


@lru_cache(maxsize=1)
def aot_kernels() -> tuple[Any, dict[str, list[str]]] | None:
    """(the ahead-of-time module, export name -> argument specs), or None: not built, forced off
    (``NEUROMOD_JIT=1``), or built from sources that have changed since (rebuild: ``make setup``)."""
    if os.environ.get(FORCE_JIT_VARIABLE, "") not in ("", "0"):
        return None
    try:
        module = importlib.import_module(AOT_MODULE)
        manifest = json.loads(AOT_MANIFEST.read_text())
    except (ImportError, OSError, ValueError):
        return None
    try:
        for name in manifest["modules"]:
            __import__(name)
        fresh = _source_digest(manifest["modules"]) == manifest["source_sha256"]
    except (ImportError, KeyError, TypeError, OSError):
        return None
    return (module, manifest["exports"]) if fresh else None


def export_name(kernel: Any) -> str:
    """Name of a kernel's ahead-of-time export: ``<module>__<function>`` (e.g. ``kinetics___integrate``)."""
    return f"{kernel.py_func.__module__.rsplit('.', 1)[-1]}__{kernel.py_func.__name__}"


def run_kernel(kernel: Any, *arguments: Any, ahead_of_time: bool = True) -> Any:
    """Call ``kernel`` (an :func:`njit` function) with ``arguments``: through its ahead-of-time
    export when ``ahead_of_time`` (the call suits a serial kernel), numba is not loaded, the module
    is usable (:func:`aot_kernels`) and every argument has the type the export was compiled for
    (the export itself does not check); else through numba's JIT.

    A process that has loaded numba (the clinic app loads it at start, ``neuromod.clinic.app.warm_up``;
    trials need it) runs the JIT's code for serial calls too: the export exists to spare a short process
    numba's import, and once that is paid the JIT's code is faster (the label plan's warm
    ``simulate``, ``benchmarks/simulate_speed.py`` at stop 18: 16.2 ms as the server runs it against
    19.2 ms through the export; the same numbers to the last bit, ``tests/test_aot.py``)."""
    if _recorded is not None:  # building the exports: the JIT runs, and never a previous build
        _recorded.append((export_name(kernel), kernel, tuple(_numba.typeof(a) for a in arguments)))
        ahead_of_time = False
    if ahead_of_time and _numba is None:
        loaded = aot_kernels()
        if loaded is not None:
            module, exports = loaded
            name = export_name(kernel)
            if exports.get(name) == [_argument_spec(a) for a in arguments]:
                return getattr(module, name)(*arguments)
    return kernel(*arguments)  # numba's dispatcher, or a deferred one that loads numba first


@contextmanager
def recording() -> Iterator[list[tuple[str, Any, tuple]]]:
    """Record the kernels :func:`run_kernel` runs and their numba argument types (the build's
    signatures). Needs numba loaded; the calls run on the JIT meanwhile."""
    global _recorded
    load_numba()
    _recorded = []
    try:
        yield _recorded
    finally:
        _recorded = None


@contextmanager
def threads_for(n_patients: int) -> Iterator[None]:
    """Numba's parallel kernels launched from this thread use one thread for a small batch
    (``n_patients <= SERIAL_BATCH_PATIENTS``), else the configured count; restored after.
    Numba's thread count is per launching thread, so concurrent API requests do not interfere.
    Without numba loaded (the ahead-of-time kernels serve small batches) there is nothing to set."""
    if _numba is None or n_patients > SERIAL_BATCH_PATIENTS:
        yield
        return
    before = _numba.get_num_threads()
    _numba.set_num_threads(1)
    try:
        yield
    finally:
        _numba.set_num_threads(before)


def _jit_wanted() -> bool:
    """Whether to load numba now: forced, already imported (paid for), or no ahead-of-time build
    (its files absent; a stale one is found out at the first kernel call, which then compiles)."""
    return (os.environ.get(FORCE_JIT_VARIABLE, "") not in ("", "0") or "numba" in sys.modules
            or not AOT_MANIFEST.exists() or importlib.util.find_spec(AOT_MODULE) is None)


if _jit_wanted():
    load_numba()  # decorate eagerly, as numba itself would

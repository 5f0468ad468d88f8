"""Stage 4 — skin: dynamic lines from contraction, static creases that deepen and repair.

Contraction compresses the skin of an area in proportion to the force of the muscles
that fold it. A stiff film (epidermis and papillary dermis, thickness ``h``) on a soft base
wrinkles once the compressive strain passes an onset strain, with squared amplitude
``h^2 * (strain / onset - 1)`` (Cerda & Mahadevan 2003). We carry the strain as a ratio to
the mean onset strain, ``ratio = baseline_ratio * area_strength``; the patient's baseline ratio
is the one that explains their baseline score. The onset strain varies across an area's skin
(logistic, scale ``onset_strain_spread`` of the mean), and the depth seen is the root mean
square fold over the area: ``h * sqrt(w * softplus((ratio - 1) / w))``, ``w`` the spread (the
logistic's partial mean ``E[(ratio - onset)+]`` in closed form). Lines therefore fade and return
gradually as strength crosses the onset range, rather than all at one strength.

Creases show hysteresis (Hohlfeld & Mahadevan 2011): once folding weakens, most of a line
(the elastic fold) fades within a day or two, but a share of it — the crease's memory at
its old site — fades over weeks; both come back within a day when folding resumes. Static lines (seen at
rest) deepen slowly with folding — faster with age, sun and smoking — and repair slowly
while folding is absent. Shapes: (n_patients, n_areas, n_days).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neuromod.model._jit import njit, run_kernel
from neuromod.reference.parameters import SkinParameters

FloatArray = npt.NDArray[np.float64]


def dynamic_target_depth(strain_ratio: FloatArray, params: SkinParameters) -> FloatArray:
    """Depth (mm) of the fold a strain ``strain_ratio`` times the mean onset strain would make
    (root mean square over the area's distribution of onset strains; see the module docstring)."""
    w = params.onset_strain_spread
    excess = w * np.logaddexp(0.0, (np.asarray(strain_ratio, dtype=float) - 1.0) / w)
    return params.film_thickness_mm * np.sqrt(excess)


def strain_ratio_for_depth(dynamic_depth_mm: FloatArray, params: SkinParameters) -> FloatArray:
    """Inverse of :func:`dynamic_target_depth`: strain ratio that folds the skin that deep
    (at least 0: a fold shallower than the one an unstrained area shows, ~0.003 mm, has ratio 0)."""
    w = params.onset_strain_spread
    excess = np.maximum((np.maximum(dynamic_depth_mm, 0.0) / params.film_thickness_mm) ** 2, 1e-300)
    # softplus^-1(y / w) * w = y + w * log(1 - exp(-y / w)), stable for small and large y
    return np.maximum(1.0 + excess + w * np.log(-np.expm1(-excess / w)), 0.0)


@dataclass(frozen=True)
class SkinState:
    """Line depths (mm) at maximum contraction and at rest, (n_patients, n_areas, n_days)."""

    dynamic_depth: FloatArray
    static_depth: FloatArray

    @property
    def contraction_depth(self) -> FloatArray:
        return self.static_depth + self.dynamic_depth


def skin_response(
    days: FloatArray,
    area_strength: FloatArray,
    baseline_strain_ratio: FloatArray,
    baseline_static_mm: FloatArray,
    deepening_factor: FloatArray,
    params: SkinParameters,
) -> SkinState:
    """Dynamic and static line depth at ``days`` (a daily grid gives accurate lags).

    area_strength: (n_patients, n_areas, n_days) force of the area's muscles relative to
    baseline; baseline_strain_ratio, baseline_static_mm: (n_patients, n_areas) at day 0;
    deepening_factor: (n_patients, 1) multiplier of static deepening (age, sun, smoking).
    """
    days = np.asarray(days, dtype=float)
    target = dynamic_target_depth(baseline_strain_ratio[..., None] * area_strength, params)
    folding = np.clip(area_strength, 0.0, 1.0)
    deepen_per_day = params.static_deepening_mm_per_year / 365.25 * deepening_factor
    memory_share = params.crease_memory_share
    target = np.ascontiguousarray(np.moveaxis(target, -1, 0))
    folding = np.ascontiguousarray(np.moveaxis(folding, -1, 0))
    dynamic = np.empty_like(target)
    static = np.empty_like(target)
    deepen = np.ascontiguousarray(np.broadcast_to(deepen_per_day, target.shape[1:]), dtype=float)
    run_kernel(_skin_recurrence, days, target, folding, np.ascontiguousarray(np.broadcast_to(baseline_static_mm, target.shape[1:]), dtype=float), deepen,
                     float(memory_share), float(params.fade_time_days), float(params.rise_time_days),
                     float(params.crease_memory_fade_days), float(params.static_repair_time_days), dynamic, static)
    return SkinState(np.moveaxis(dynamic, 0, -1), np.moveaxis(static, 0, -1))


@njit(cache=True)
def _skin_recurrence(days, target, folding, baseline_static, deepen_per_day, memory_share, fade_days, rise_days,
                     memory_fade_days, repair_days, dynamic, static):  # pragma: no cover - compiled
    """The day-to-day recurrence of :func:`skin_response`, compiled (it was a Python loop over
    the days, a tenth of a warm ``simulate``). Arrays (n_days, n_patients, n_areas), except
    ``baseline_static`` and ``deepen_per_day`` (n_patients, n_areas). Per step ``dt``: the fold
    and the crease memory approach their goals at first order (``goal + (x - goal) exp(-dt / tau)``,
    ``tau`` fading ``fade_days`` / ``memory_fade_days``, rising ``rise_days``: hysteresis), the static line deepens with the previous
    day's folding and repairs while folding is absent. No fastmath: the same arithmetic as the
    NumPy loop it replaced (``tests/test_simulate.py`` compares to 1e-12)."""
    n_days, n_patients, n_areas = target.shape
    for p in range(n_patients):
        for a in range(n_areas):
            fold = (1.0 - memory_share) * target[0, p, a]
            memory = memory_share * target[0, p, a]
            dynamic[0, p, a] = target[0, p, a]
            static[0, p, a] = baseline_static[p, a]
            for t in range(1, n_days):
                dt = days[t] - days[t - 1]
                goal = (1.0 - memory_share) * target[t, p, a]
                fold = goal + (fold - goal) * np.exp(-dt / (fade_days if goal < fold else rise_days))
                goal = memory_share * target[t, p, a]
                memory = goal + (memory - goal) * np.exp(-dt / (memory_fade_days if goal < memory else rise_days))
                dynamic[t, p, a] = fold + memory
                fold_now = folding[t - 1, p, a]
                previous = static[t - 1, p, a]
                repair = (1.0 - fold_now) * previous * (1.0 - np.exp(-dt / repair_days))
                static[t, p, a] = previous + deepen_per_day[p, a] * fold_now * dt - repair

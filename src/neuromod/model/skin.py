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
    fold = (1.0 - memory_share) * target[0]
    memory = memory_share * target[0]
    dynamic = np.empty_like(target)
    static = np.empty_like(target)
    dynamic[0] = target[0]
    static[0] = baseline_static_mm
    for t in range(1, days.size):
        dt = days[t] - days[t - 1]
        fold = _follow(fold, (1.0 - memory_share) * target[t], params.fade_time_days, params.rise_time_days, dt)
        memory = _follow(memory, memory_share * target[t], params.crease_memory_fade_days, params.rise_time_days, dt)
        dynamic[t] = fold + memory
        fold_now = folding[t - 1]
        repair = (1.0 - fold_now) * static[t - 1] * (1.0 - np.exp(-dt / params.static_repair_time_days))
        static[t] = static[t - 1] + deepen_per_day * fold_now * dt - repair
    return SkinState(np.moveaxis(dynamic, 0, -1), np.moveaxis(static, 0, -1))


def _follow(current: FloatArray, goal: FloatArray, fade_days: float, rise_days: float, dt: float) -> FloatArray:
    """First-order approach to ``goal``: slowly when fading, quickly when rising (hysteresis)."""
    tau = np.where(goal < current, fade_days, rise_days)
    return goal + (current - goal) * np.exp(-dt / tau)

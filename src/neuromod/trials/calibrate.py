"""Calibration: fit the shared population parameters to the published pivotal trials.

Each row of ``data/published/calibration_trials.csv`` is an endpoint of one published arm.
Rows that share product, units per area and population form one virtual trial (with a
placebo arm where the row reports one); the trial's own endpoint definition is mapped to
the model's endpoint in ``data/calibration_endpoints.csv``. Nothing belongs to a single
trial: every arm runs with the same parameters, and only what the trial specified
(product, units, areas, population, endpoint, day) differs.

A row is *reproduced* when the simulated value lies in the published value's 95 % Wilson
interval for ``n_active`` subjects, within 8 percentage points where ``n`` is unknown, or,
for medians in days, within 15 % (assumption: one monthly visit around a ~4-month median).

Objective (minimised by trust-region least squares on log-transformed parameters, common
random numbers):
``sum over rows of ((simulated - published) / tolerance half-width)^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from neuromod.reference.files import read_csv
from neuromod.reference.parameters import ModelParameters, apply_overrides
from neuromod.trials.trial import CourseCache, TrialSpec, parse_trial, run_trial

#: Parameters the calibration fits, with (lower, upper) bounds. All are shared by every trial.
FITTED: dict[str, tuple[float, float]] = {
    "junction.half_block_fraction_of_typical_dose": (0.003, 0.1),
    "junction.light_chain_half_life_days": (15.0, 60.0),
    "patient.male_half_block_factor": (1.0, 4.0),
    "population.half_block_sd": (0.1, 1.5),
    "population.static_depth_median_mm": (0.003, 0.06),
    "population.dynamic_depth_median_mm": (0.06, 0.3),
    "population.subject_depth_bias": (0.8, 1.6),
    "scores.rater_sd_mm": (0.01, 0.06),
    "junction.release_turnover_days": (0.3, 5.0),
    "population.availability_sd": (0.1, 1.5),
    "population.onset_threshold_sd": (0.1, 1.5),
    "population.subject_sd_mm": (0.01, 0.12),
    "population.expectation_bias": (0.01, 0.4),
    "population.expectation_days": (10.0, 200.0),
}
# Not fitted: the crease memory (skin.crease_memory_share, crease_memory_fade_days) sets when the
# effect peaks, and the table has no row on peak timing; the objective alone would shrink it and
# move the peak to ~1 week. Its values in parameters.yaml put the peak at 2-4 weeks.

VISITS = [1, 2, 3, 4, 7, 14, 28, 30, 60, 90, 120, 150, 168, 180, 210, 240, 252, 270, 300, 330, 365]
MEDIAN_TOLERANCE = 0.15
UNKNOWN_N_TOLERANCE_PP = 8.0


@dataclass(frozen=True)
class CalibrationRow:
    """One published endpoint (``arm`` is ``active`` or ``placebo``)."""

    id: str
    product: str
    areas: dict[str, float]
    sex: str
    endpoint: str
    model_endpoint: str
    reason: str
    day: int | None
    value: float
    n: int | None
    arm: str
    source: str

    @property
    def is_median(self) -> bool:
        return self.model_endpoint.startswith("median")

    @property
    def trial_key(self) -> str:
        areas = "-".join(f"{a}{u:g}" for a, u in self.areas.items())
        return f"{self.product}-{areas}-{self.sex}"


def load_rows() -> list[CalibrationRow]:
    """Every published endpoint, active and placebo, as calibration targets."""
    mapping = {r["row_id"]: r for r in read_csv("calibration_endpoints.csv")}
    rows = []
    for raw in read_csv("published/calibration_trials.csv"):
        areas = {}
        for part in raw["areas_units"].split(";"):
            area, units = part.split(":")
            areas[area] = float(units)
        common = dict(
            id=raw["id"], product=raw["product"], areas=areas, sex=raw["sex"], endpoint=raw["endpoint"],
            model_endpoint=mapping[raw["id"]]["model_endpoint"], reason=mapping[raw["id"]]["reason"],
            day=int(raw["day"]) if raw["day"].strip() else None,
            n=int(raw["n_active"]) if raw["n_active"].strip() else None, source=raw["source"],
        )
        rows.append(CalibrationRow(value=float(raw["active_pct"]), arm="active", **common))
        if raw["placebo_pct"].strip():
            rows.append(CalibrationRow(value=float(raw["placebo_pct"]), arm="placebo", **common))
    return rows


def trial_documents(rows: list[CalibrationRow], subjects_per_arm: int = 2000, seed: int = 2026) -> dict[str, dict]:
    """One trial document (the ``trials/*.yaml`` contract) per published arm set."""
    documents: dict[str, dict] = {}
    for row in rows:
        doc = documents.setdefault(row.trial_key, {
            "name": row.trial_key,
            "seed": seed,
            "subjects_per_arm": subjects_per_arm,
            "population": {"sex": row.sex, "age": [18, 75], "baseline": "moderate_or_severe"},
            "arms": [{"name": "active", "product": row.product, "areas": dict(row.areas)}],
            "follow_up_days": list(VISITS),
            "published": [],
        })
        if row.arm == "placebo" and len(doc["arms"]) == 1:
            doc["arms"].append({"name": "placebo", "product": "placebo", "areas": {a: 0 for a in row.areas}})
        doc["published"].append({
            "row": row.id, "arm": row.arm, "endpoint": row.endpoint, "model_endpoint": row.model_endpoint,
            "day": row.day, "value": row.value, "n": row.n, "source": row.source,
        })
    return documents


def wilson_interval(pct: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval (percent) of a proportion ``pct`` % observed in ``n``."""
    p = pct / 100.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(centre - half, 0.0), 100.0 * min(centre + half, 1.0)


def tolerance(row: CalibrationRow) -> tuple[float, float]:
    """The interval a simulated value must fall in to reproduce ``row``."""
    if row.is_median:
        return row.value * (1 - MEDIAN_TOLERANCE), row.value * (1 + MEDIAN_TOLERANCE)
    if row.n:
        return wilson_interval(row.value, row.n)
    return row.value - UNKNOWN_N_TOLERANCE_PP, row.value + UNKNOWN_N_TOLERANCE_PP


def simulated_value(result: dict[str, Any], row: CalibrationRow) -> float | None:
    area = next(iter(row.areas))
    value = result["arms"][row.arm]["areas"][area][row.model_endpoint]
    if isinstance(value, dict):
        return value.get(str(row.day))
    return value


@dataclass(frozen=True)
class RowResult:
    row: CalibrationRow
    simulated: float | None
    low: float
    high: float

    @property
    def passed(self) -> bool:
        return self.simulated is not None and self.low <= self.simulated <= self.high

    @property
    def z(self) -> float:
        """Distance from the published value in units of the tolerance half-width."""
        if self.simulated is None:
            return 10.0
        half = max((self.high - self.low) / 2, 1e-9)
        return (self.simulated - self.row.value) / half


#: Compiled courses shared by successive evaluations (common random numbers: every evaluation
#: draws the same subjects), reused exactly where only rater-stage parameters moved.
COURSES = CourseCache()


def evaluate(params: ModelParameters, rows: list[CalibrationRow], subjects_per_arm: int = 2000,
             seed: int = 2026, progress: bool | None = False) -> list[RowResult]:
    """Run every calibration trial under ``params`` and compare each row."""
    results = []
    for key, document in trial_documents(rows, subjects_per_arm, seed).items():
        spec: TrialSpec = parse_trial(document)
        outcome = run_trial(spec, params=params, progress=progress, courses=COURSES)
        for row in rows:
            if row.trial_key == key:
                low, high = tolerance(row)
                results.append(RowResult(row, simulated_value(outcome, row), low, high))
    return results


def objective(results: list[RowResult]) -> float:
    return float(sum(min(r.z, 10.0) ** 2 if r.simulated is not None else 100.0 for r in results))


def fit(
    params: ModelParameters,
    rows: list[CalibrationRow],
    subjects_per_arm: int = 400,
    seed: int = 2026,
    max_evaluations: int = 150,
    names: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[ModelParameters, float]:
    """Minimise :func:`objective` over the :data:`FITTED` parameters.

    Trust-region least squares (scipy ``least_squares``) on the rows' tolerance-scaled errors,
    in log parameter space within the bounds; finite-difference steps of 5 % are wide enough
    to see through the graininess of integer grades under common random numbers.
    """
    from scipy.optimize import least_squares

    names = names or list(FITTED)
    lower, upper = np.log([FITTED[n][0] for n in names]), np.log([FITTED[n][1] for n in names])
    start = np.clip(np.log([_get(params, name) for name in names]), lower + 1e-9, upper - 1e-9)
    evaluations = [0]

    def residuals(x: np.ndarray) -> np.ndarray:
        trial_params = apply_overrides(params, dict(zip(names, np.exp(x).tolist())))
        results = evaluate(trial_params, rows, subjects_per_arm, seed)
        evaluations[0] += 1
        log(f"evaluation {evaluations[0]:>3}: objective {objective(results):9.2f}  " +
            " ".join(f"{n.split('.')[-1]}={v:.4g}" for n, v in zip(names, np.exp(x))))
        return np.array([np.clip(r.z, -10.0, 10.0) for r in results])

    best = least_squares(residuals, start, bounds=(lower, upper), diff_step=0.05, max_nfev=max_evaluations,
                         x_scale=1.0)
    log(f"least squares: {best.message} ({best.nfev} evaluations)")
    values = dict(zip(names, np.exp(best.x).tolist()))
    return apply_overrides(params, values), float(np.sum(best.fun**2))


def _get(params: ModelParameters, name: str) -> float:
    stage, _, field = name.partition(".")
    return float(getattr(getattr(params, stage), field))


def calibrated_document(params: ModelParameters, prior: ModelParameters, value: float,
                        subjects_per_arm: int, seed: int, max_evaluations: int) -> dict[str, Any]:
    """The ``data/calibrated.yaml`` document: fitted values with their provenance.

    It holds nothing that changes from run to run (no date, no timing), so the same inputs and
    seed give the same file byte for byte.
    """
    return {
        "version": 1,
        "method": (f"neuromod calibrate --subjects {subjects_per_arm} --max-evaluations {max_evaluations} "
                   f"--seed {seed}: trust-region least squares on log parameters from the priors of "
                   "parameters.yaml; objective sum of squared tolerance-scaled errors over "
                   "data/published/calibration_trials.csv (see docs/calibration.md)"),
        "objective": round(value, 3),
        "values": {name: round(_get(params, name), 6) for name in FITTED},
        "priors": {name: _get(prior, name) for name in FITTED},
    }


def write_calibrated(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Fitted by `neuromod calibrate`; applied on top of parameters.yaml.\n"
                    + yaml.safe_dump(document, sort_keys=False))
    return path


def select_rows(rows: list[CalibrationRow], ids: list[str] | None) -> list[CalibrationRow]:
    """The rows whose id is in ``ids`` (both arms of each); all rows without ``ids``.

    Raises ValueError naming the unknown ids.
    """
    if not ids:
        return rows
    known = {row.id for row in rows}
    unknown = sorted(set(ids) - known)
    if unknown:
        raise ValueError(f"--rows: unknown row id(s) {', '.join(unknown)}; see data/published/calibration_trials.csv")
    return [row for row in rows if row.id in ids]


def write_trial_files(folder: Path, subjects_per_arm: int = 2000, seed: int = 2026) -> list[Path]:
    """Write one trial file per calibration trial into ``folder`` (the shipped ``trials/``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, document in trial_documents(load_rows(), subjects_per_arm, seed).items():
        path = folder / f"{key}.yaml"
        path.write_text(
            f"# Virtual trial reproducing published arms ({key}); generated by neuromod.trials.calibrate.\n"
            "# `published` lists the rows it is checked against (data/published/calibration_trials.csv).\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
        )
        paths.append(path)
    return paths

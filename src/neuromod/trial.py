"""Virtual trials: a trial file (YAML) in, the published endpoints per arm out (JSON).

The contract (``docs/trials.md``): a trial names a seed, subjects per arm, the population,
its arms (product, units per area in the label pattern, treatment days) and follow-up visit
days. Each arm's subjects are drawn in chunks of ``CHUNK`` with their own seed
``(seed, arm, chunk)``, so the same seed gives the same numbers however the chunks are
spread over processes or machines.

Endpoints (percent of subjects, per scored area, at each follow-up day), as defined in
``data/published/README.md``:

* ``inv_none_mild`` / ``subj_none_mild`` — grade 0 or 1 at maximum contraction (investigator / subject)
* ``inv_ge1_grade`` — investigator grade at least 1 below the subject's baseline grade
* ``composite_ge2_grade`` — at least 2 grades better by BOTH investigator and subject
* ``subj_ge2_global`` — subject's global assessment at least "+2" (perceived depth halved)
* ``subj_onset_by_day`` — cumulative % who noticed an effect by that day (daily diary)
* ``fraction_of_max_effect_by_day`` — mean investigator improvement / its maximum over visits
* ``residual_expression_pct`` — mean % of baseline movement kept at maximum contraction ("natural look")

and medians in days: ``median_onset_days``, ``median_duration_among_day30_responders``
(Kaplan-Meier, visits after day 30, among investigator none/mild at day 30),
``median_days_to_return_to_baseline`` (KM, first visit graded at or above baseline after an
improvement), ``median_days_to_loss_of_none_mild`` (KM, among those none/mild by day 30).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tqdm import tqdm

from neuromod.anatomy import FaceMap, load_face_map
from neuromod.antibodies import neutralize, seroconversion_probability
from neuromod.parameters import ModelParameters, default_parameters
from neuromod.plan import Plan, PlanError, format_validation_error, parse_plan
from neuromod.population import (
    Cohort,
    PopulationSpec,
    enrol,
    investigator_grades,
    perceived_depth,
    subject_grades,
)
from neuromod.simulate import DISCLAIMER, plan_injections, run_model
from neuromod.spread import spread

FloatArray = npt.NDArray[np.float64]

#: subjects simulated together; also the unit of seeding (see module docstring).
CHUNK = 1000
DEFAULT_FOLLOW_UP = [1, 2, 3, 4, 7, 14, 30, 60, 90, 120, 150, 168, 180, 252]


class TrialError(ValueError):
    """An invalid trial file; the message names the field."""


class ArmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    product: str
    areas: dict[str, float] = Field(min_length=1, description="units per area, label pattern")
    treatment_days: list[float] = Field(default_factory=lambda: [0.0])


class TrialSpec(BaseModel):
    """A virtual trial file."""

    model_config = ConfigDict(extra="forbid")
    name: str = "virtual trial"
    seed: int = Field(default=0, ge=0)
    subjects_per_arm: int = Field(default=2000, ge=1, le=100_000_000, description="1-1e8")
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    arms: list[ArmSpec] = Field(min_length=1)
    follow_up_days: list[int] = Field(default_factory=lambda: list(DEFAULT_FOLLOW_UP))
    published: list[dict[str, Any]] = Field(
        default_factory=list, description="published results this trial reproduces (documentation only)"
    )

    @field_validator("follow_up_days")
    @classmethod
    def _visits(cls, days: list[int]) -> list[int]:
        if not days or sorted(set(days)) != days or days[0] < 1 or days[-1] > 3650:
            raise ValueError("must be strictly increasing days within 1-3650")
        return days

    @model_validator(mode="after")
    def _arms(self) -> "TrialSpec":
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arms: arm names must be unique")
        for i, arm in enumerate(self.arms):
            try:
                arm_plan(arm)
            except PlanError as error:
                raise ValueError(f"arms.{i} ({arm.name}): {error}") from None
        return self


def arm_plan(arm: ArmSpec) -> Plan:
    """The plan an arm gives every subject (validated like any plan)."""
    return parse_plan({"product": arm.product, "areas": arm.areas, "treatment_days": arm.treatment_days})


def parse_trial(document: Any) -> TrialSpec:
    if not isinstance(document, dict):
        raise TrialError("trial: expected a mapping with arms")
    try:
        return TrialSpec.model_validate(document)
    except ValidationError as error:
        raise TrialError(format_validation_error(error)) from None


def load_trial(path: str | Path) -> TrialSpec:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TrialError(f"trial file: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise TrialError(f"trial file: malformed YAML in {path}: {error}") from None
    return parse_trial(document)


# -- one arm --------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmRecords:
    """Per-subject records of one arm: everything the endpoints need.

    inv, subj: (n, n_scored, n_visits) grades; expression: (n, n_scored, n_visits) residual
    expression (area strength); baseline_inv, baseline_subj: (n, n_scored);
    global_ratio: (n, n_scored, n_visits) subject-perceived depth / baseline perceived depth;
    onset_day: (n, n_scored) first day an effect was noticed (inf: never);
    events: name -> (n,) bool adverse events.
    """

    inv: npt.NDArray[np.int64]
    subj: npt.NDArray[np.int64]
    expression: FloatArray
    baseline_inv: npt.NDArray[np.int64]
    baseline_subj: npt.NDArray[np.int64]
    global_ratio: FloatArray
    onset_day: FloatArray
    events: dict[str, npt.NDArray[np.bool_]]

    @staticmethod
    def concatenate(parts: list["ArmRecords"]) -> "ArmRecords":
        first = parts[0]
        return ArmRecords(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("inv", "subj", "expression", "baseline_inv", "baseline_subj", "global_ratio", "onset_day")),
            events={k: np.concatenate([p.events[k] for p in parts]) for k in first.events},
        )


@dataclass(frozen=True)
class PreparedArm:
    """What every chunk of an arm shares: its plan's doses and dose profiles."""

    plan: Plan
    scored: list[int]
    dose_per_muscle: FloatArray
    profile: FloatArray
    danger: dict[str, list[int]]
    ona_units_per_treatment: float


_PREPARED: dict[str, PreparedArm] = {}


def prepare_arm(arm: ArmSpec, face_map: FaceMap, params: ModelParameters) -> PreparedArm:
    """The arm's plan through the spread stage (cached: spread does not depend on patients)."""
    key = f"{arm.model_dump_json(exclude={'name'})}|{params.spread!r}|{id(face_map)}"
    if key not in _PREPARED:
        _PREPARED[key] = _prepare_arm(arm, face_map, params)
    return _PREPARED[key]


def _prepare_arm(arm: ArmSpec, face_map: FaceMap, params: ModelParameters) -> PreparedArm:
    plan = arm_plan(arm)
    points = plan.points(face_map)
    result = spread(face_map, plan_injections(points, plan), plan.product_info.spread_factor, params.spread)
    scored = [face_map.areas.index(area) for area in arm.areas]
    danger: dict[str, list[int]] = {}
    for j, region in enumerate(face_map.regions):
        if region.danger in ("eyelid_ptosis", "brow_ptosis"):
            danger.setdefault(region.danger, []).append(j)
    ona = sum(plan.product_info.to_ona_units(p.units) for p in points)
    return PreparedArm(plan, scored, result.dose_per_muscle, result.profile, danger, ona)


def simulate_chunk(
    prepared: PreparedArm,
    population: PopulationSpec,
    n: int,
    follow_up_days: list[int],
    seed: tuple[int, ...],
    face_map: FaceMap,
    params: ModelParameters,
) -> ArmRecords:
    """Enrol ``n`` subjects with their own seed, treat them, and rate them at each visit."""
    rng = np.random.default_rng(list(seed))
    cohort: Cohort = enrol(population, n, len(face_map.areas), prepared.scored, rng, params)
    days = np.arange(0.0, max(follow_up_days) + 1.0)
    treatments = np.asarray(prepared.plan.treatment_days, dtype=float)
    doses = np.repeat(prepared.dose_per_muscle[None, :], n, axis=0)
    danger_columns = [j for cols in prepared.danger.values() for j in cols]
    doses[:, danger_columns] *= cohort.danger_multiplier[:, None]
    doses = np.repeat(doses[:, None, :], treatments.size, axis=1)
    # antibodies draw from their own stream, so adding them leaves every other draw unchanged
    probability = seroconversion_probability(
        np.full(treatments.size, prepared.ona_units_per_treatment), treatments, prepared.plan.product_info.immunogenicity,
        ~cohort.female, params.antibodies)
    doses, antibodies = neutralize(doses, probability, np.random.default_rng([*seed, 1]), params.antibodies)
    output = run_model(days, treatments, doses, cohort.patients, face_map, params, prepared.profile)
    visits = np.asarray(follow_up_days)
    pop = params.population
    expectation = 1.0 - pop.expectation_bias * np.exp(-visits / pop.expectation_days)
    depth = output.contraction_depth_mm[:, prepared.scored][:, :, visits] * expectation
    strength = output.area_strength[:, prepared.scored]
    inv = investigator_grades(depth, rng, params)
    subj = subject_grades(depth, rng, params)
    baseline_depth = output.contraction_depth_mm[:, prepared.scored, 0]
    perceived_now = perceived_depth(depth, rng, params)
    perceived_then = perceived_depth(baseline_depth[..., None], rng, params)
    noticed = (1.0 - strength[..., 1:]) >= cohort.onset_threshold[:, None, None]
    first = np.where(noticed.any(axis=-1), noticed.argmax(axis=-1) + 1.0, np.inf)
    events = {"neutralizing_antibodies": antibodies}
    for name, columns in prepared.danger.items():
        threshold = (params.population.eyelid_ptosis_block if name == "eyelid_ptosis"
                     else params.population.brow_ptosis_block)
        present = [k for k, j in enumerate(output.muscle_index) if j in columns]
        blocked = output.blocked_fraction[:, present].max(axis=(1, 2)) if present else np.zeros(n)
        events[name] = blocked > threshold
    expression = strength[..., visits]
    return ArmRecords(inv, subj, expression, cohort.baseline_inv[:, prepared.scored],
                      cohort.baseline_subj[:, prepared.scored],
                      perceived_now / np.maximum(perceived_then, 1e-9), first, events)


# -- endpoints ------------------------------------------------------------------------
def kaplan_meier_median(times: FloatArray, observed: npt.NDArray[np.bool_]) -> float | None:
    """Median of event times with right-censoring (product-limit); None if not reached."""
    order = np.argsort(times, kind="stable")
    times, observed = times[order], observed[order]
    survival = 1.0
    at_risk = times.size
    for t in np.unique(times):
        here = times == t
        deaths = int(observed[here].sum())
        if at_risk > 0 and deaths:
            survival *= 1.0 - deaths / at_risk
            if survival <= 0.5:
                return float(t)
        at_risk -= int(here.sum())
    return None


def _first_visit(condition: npt.NDArray[np.bool_], visits: npt.NDArray[np.int64]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """(day of the first visit where ``condition`` holds, whether it ever did); censored at the last visit."""
    hit = condition.any(axis=-1)
    day = np.where(hit, visits[condition.argmax(axis=-1)], visits[-1]).astype(float)
    return day, hit


def area_endpoints(records: ArmRecords, a: int, visits: list[int]) -> dict[str, Any]:
    """All endpoints of scored area ``a`` (see module docstring)."""
    v = np.asarray(visits)
    inv, subj = records.inv[:, a], records.subj[:, a]
    b_inv, b_subj = records.baseline_inv[:, a, None], records.baseline_subj[:, a, None]
    pct = lambda mask: {str(d): round(100.0 * float(m), 2) for d, m in zip(visits, mask.mean(axis=0))}  # noqa: E731
    improvement = (b_inv - inv).mean(axis=0)
    best = improvement.max()
    onset = records.onset_day[:, a]
    out: dict[str, Any] = {
        "inv_none_mild": pct(inv <= 1),
        "subj_none_mild": pct(subj <= 1),
        "inv_ge1_grade": pct(inv <= b_inv - 1),
        "composite_ge2_grade": pct((inv <= b_inv - 2) & (subj <= b_subj - 2)),
        "subj_ge2_global": pct(records.global_ratio[:, a] <= 0.5),
        "subj_onset_by_day": {str(d): round(100.0 * float((onset <= d).mean()), 2) for d in visits},
        "fraction_of_max_effect_by_day": {
            str(d): round(100.0 * float(m / best), 2) if best > 0 else 0.0 for d, m in zip(visits, improvement)
        },
        "median_onset_days": float(np.median(onset)) if np.isfinite(np.median(onset)) else None,
        "residual_expression_pct": {
            str(d): round(100.0 * float(m), 2) for d, m in zip(visits, records.expression[:, a].mean(axis=0))
        },
    }
    after30 = v > 30
    if 30 in visits and after30.any():
        responders = inv[:, visits.index(30)] <= 1
        day, hit = _first_visit(inv[responders][:, after30] > 1, v[after30])
        out["median_duration_among_day30_responders"] = kaplan_meier_median(day, hit) if responders.any() else None
        early = (inv[:, v <= 30] <= 1).any(axis=1)
        day, hit = _first_visit(inv[early][:, after30] > 1, v[after30])
        out["median_days_to_loss_of_none_mild"] = kaplan_meier_median(day, hit) if early.any() else None
    improved_before = np.maximum.accumulate(inv <= b_inv - 1, axis=1)
    back = (inv >= b_inv) & np.concatenate([np.zeros_like(improved_before[:, :1]), improved_before[:, :-1]], axis=1)
    never = ~improved_before[:, -1]
    day, hit = _first_visit(back, v)
    day = np.where(never, float(v[0]), day)
    out["median_days_to_return_to_baseline"] = kaplan_meier_median(day, hit | never)
    return out


def dask_runner(address: str | None = None, workers: int | None = None):
    """A ``chunk_runner`` that spreads chunks over a Dask cluster.

    address: a scheduler (``tcp://host:8786``); without one, a local cluster of ``workers``
    processes is started (and closed after the run by the returned runner's caller via
    ``runner.close()``).
    """
    from dask.distributed import Client, LocalCluster

    if address:
        client = Client(address)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

    def runner(jobs: list[tuple]) -> list["ArmRecords"]:
        futures = client.map(lambda job: simulate_chunk(*job), jobs, pure=False)
        return client.gather(futures)

    def close() -> None:
        client.close()
        if cluster is not None:
            cluster.close()

    runner.close = close  # type: ignore[attr-defined]
    return runner


def run_trial(
    spec: TrialSpec,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
    progress: bool | None = None,
    chunk_runner=None,
) -> dict[str, Any]:
    """Run every arm of ``spec``; returns the documented JSON document.

    chunk_runner: optional callable mapping a list of chunk jobs (argument tuples of
    :func:`simulate_chunk`) to their results, e.g. a Dask client's map; default: in process.
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    jobs = []
    prepared = {}
    for arm_index, arm in enumerate(spec.arms):
        prepared[arm.name] = prepare_arm(arm, face_map, params)
        for chunk, start in enumerate(range(0, spec.subjects_per_arm, CHUNK)):
            n = min(CHUNK, spec.subjects_per_arm - start)
            jobs.append((arm.name, (prepared[arm.name], spec.population, n, spec.follow_up_days,
                                    (spec.seed, arm_index, chunk), face_map, params)))
    if chunk_runner is None:
        bar = tqdm(jobs, desc=f"trial {spec.name}", unit="chunk", disable=progress is False if progress is not None else None,
                   leave=False)
        results = [simulate_chunk(*args) for _, args in bar]
    else:
        results = chunk_runner([args for _, args in jobs])
    by_arm: dict[str, list[ArmRecords]] = {}
    for (name, _), records in zip(jobs, results):
        by_arm.setdefault(name, []).append(records)
    arms = {}
    for arm in spec.arms:
        records = ArmRecords.concatenate(by_arm[arm.name])
        arms[arm.name] = {
            "product": arm.product,
            "areas_units": dict(arm.areas),
            "treatment_days": list(arm.treatment_days),
            "n": int(records.inv.shape[0]),
            "areas": {area: area_endpoints(records, a, spec.follow_up_days) for a, area in enumerate(arm.areas)},
            "adverse_events_pct": {k: round(100.0 * float(v.mean()), 3) for k, v in records.events.items()},
        }
    return {
        "name": spec.name,
        "seed": spec.seed,
        "subjects_per_arm": spec.subjects_per_arm,
        "follow_up_days": list(spec.follow_up_days),
        "arms": arms,
        "disclaimer": DISCLAIMER,
    }

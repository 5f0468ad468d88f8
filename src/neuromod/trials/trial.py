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
Each median also comes read continuously, ``<median>_interpolated`` (:func:`grouped_median`: the
0.5 crossing located within its visit class, or diary day, and moved on by half the class), which
moves by days where the step median jumps a whole visit spacing; calibration reads these.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from neuromod.model.adverse_events import (PlanBreach, breach_doses, draw_breaches, draw_susceptible, event_depressors,
                                           event_muscles, event_occurs, event_susceptible_muscles, vary_danger_doses)
from neuromod.model.antibodies import neutralize, seroconversion_probability
from neuromod.model.patient import with_product
from neuromod.model.simulate import DISCLAIMER, plan_injections
from neuromod.model.spread import spread
from neuromod.model.visit_course import VisitCourse, visit_course
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.clinical import load_adverse_events, none_mild_max_grade
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.schemas.plan import Plan
from neuromod.schemas.trial import (  # noqa: F401  (re-exported: the runner's vocabulary)
    DEFAULT_FOLLOW_UP,
    ArmSpec,
    PopulationSpec,
    TrialError,
    TrialSpec,
    arm_plan,
    load_trial,
    parse_trial,
    with_subjects,
)
from neuromod.schemas.types import LIMITS
from neuromod.trials.population import (
    Cohort,
    enrol,
    expectation_factor,
    investigator_grades,
    perceived_depth,
    subject_grades,
    visit_deviations,
)

FloatArray = npt.NDArray[np.float64]

#: subjects simulated together; also the unit of seeding (see module docstring).
CHUNK = 1000


# -- one arm --------------------------------------------------------------------------
IntArray = npt.NDArray[np.int64]

#: Survival endpoints, each counted per visit day as (censored, events).
SURVIVAL = ("median_duration_among_day30_responders", "median_days_to_loss_of_none_mild",
            "median_days_to_return_to_baseline")
#: Endpoints read at one day from that day's visit (or diary day) alone: their value at day ``d``
#: is the same whatever visits follow ``d``. Medians, and shares of the course's maximum
#: (``fraction_of_max_effect_by_day``), need the whole follow-up instead.
VISIT_ENDPOINTS = ("inv_none_mild", "subj_none_mild", "inv_ge1_grade", "composite_ge2_grade", "subj_ge2_global",
                   "subj_onset_by_day", "residual_expression_pct")


@dataclass(frozen=True)
class ArmSummary:
    """What the endpoints need from an arm's subjects, as counts and sums that add up over chunks.

    Its size does not grow with the number of subjects (a 1e7-subject arm is summarised in the
    same few kilobytes as a 1e3-subject one), so memory stays bounded however large the trial.
    Shapes: ``counts[name]`` (n_scored, n_visits) subjects meeting a per-visit endpoint;
    ``improvement`` and ``expression`` (n_scored, n_visits) sums over subjects of investigator
    grade improvement and residual expression; ``onset`` (n_scored, last day + 2) histogram of
    the first day an effect was noticed (last bin: never); ``survival[name]`` (n_scored, n_visits,
    2) censored and event counts at each visit day; ``events`` adverse-event counts.
    """

    n: int
    counts: dict[str, IntArray]
    improvement: FloatArray
    expression: FloatArray
    onset: IntArray
    survival: dict[str, IntArray]
    events: dict[str, int]

    def __add__(self, other: "ArmSummary") -> "ArmSummary":
        return ArmSummary(
            self.n + other.n,
            {k: v + other.counts[k] for k, v in self.counts.items()},
            self.improvement + other.improvement,
            self.expression + other.expression,
            self.onset + other.onset,
            {k: v + other.survival[k] for k, v in self.survival.items()},
            {k: v + other.events[k] for k, v in self.events.items()},
        )


def _first_visit(condition: npt.NDArray[np.bool_]) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """(index of the first visit where ``condition`` holds, whether it ever did); censored at the last."""
    hit = condition.any(axis=-1)
    return np.where(hit, condition.argmax(axis=-1), condition.shape[-1] - 1), hit


def _survival_counts(index: IntArray, hit: npt.NDArray[np.bool_], n_visits: int, offset: int = 0) -> IntArray:
    """(n_visits, 2) censored and event counts per visit for event-or-censoring visit ``index + offset``."""
    # a histogram by bincount (~10x faster than np.add.at on a chunk): bin 2 * visit + (event or censored)
    return np.bincount(2 * (index + offset) + hit, minlength=2 * n_visits).reshape(n_visits, 2)


def summarize(inv: IntArray, subj: IntArray, expression: FloatArray, baseline_inv: IntArray,
              baseline_subj: IntArray, global_ratio: FloatArray, onset_day: FloatArray,
              events: dict[str, npt.NDArray[np.bool_]], visits: list[int]) -> ArmSummary:
    """Per-subject records of a chunk reduced to an :class:`ArmSummary`.

    inv, subj: (n, n_scored, n_visits) grades; expression, global_ratio: (n, n_scored, n_visits);
    baseline_inv, baseline_subj: (n, n_scored); onset_day: (n, n_scored) first day an effect was
    noticed (inf: never); events: name -> (n,) adverse events.
    """
    v = np.asarray(visits)
    n, n_scored, n_visits = inv.shape
    mild = none_mild_max_grade()
    # grades gained since baseline, once: every count below is then a comparison with a scalar
    # (broadcasting the (n, n_scored, 1) baselines in each comparison cost ~5x more per chunk)
    inv_gained = baseline_inv[..., None] - inv
    none_mild = inv <= mild
    improved = inv_gained >= 1
    counts = {
        "inv_none_mild": none_mild,
        "subj_none_mild": subj <= mild,
        "inv_ge1_grade": improved,
        "composite_ge2_grade": (inv_gained >= 2) & ((baseline_subj[..., None] - subj) >= 2),
        "subj_ge2_global": global_ratio <= 0.5,
    }
    last_day = int(v.max())
    onset_bin = np.where(np.isfinite(onset_day), np.minimum(onset_day, last_day), last_day + 1).astype(np.int64)
    onset = np.bincount((onset_bin + (last_day + 2) * np.arange(n_scored)).ravel(),
                        minlength=n_scored * (last_day + 2)).reshape(n_scored, last_day + 2)
    survival = {name: np.zeros((n_scored, n_visits, 2), dtype=np.int64) for name in SURVIVAL}
    after30 = v > 30
    first_after = int(np.argmax(after30)) if after30.any() else n_visits
    for a in range(n_scored):
        mild_now = none_mild[:, a]
        if 30 in visits and after30.any():
            responders = mild_now[:, visits.index(30)]
            index, hit = _first_visit(~mild_now[responders][:, after30])
            survival[SURVIVAL[0]][a] = _survival_counts(index, hit, n_visits, first_after)
            early = mild_now[:, v <= 30].any(axis=1)
            index, hit = _first_visit(~mild_now[early][:, after30])
            survival[SURVIVAL[1]][a] = _survival_counts(index, hit, n_visits, first_after)
        improved_before = np.maximum.accumulate(improved[:, a], axis=1)
        back = inv_gained[:, a] <= 0  # graded at or above baseline, after an improvement at an earlier visit
        back[:, 0] = False
        back[:, 1:] &= improved_before[:, :-1]
        never = ~improved_before[:, -1]
        index, hit = _first_visit(back)
        survival[SURVIVAL[2]][a] = _survival_counts(np.where(never, 0, index), hit | never, n_visits)
    return ArmSummary(
        n=n,
        counts={k: m.sum(axis=0) for k, m in counts.items()},
        improvement=inv_gained.sum(axis=0).astype(float),
        expression=expression.sum(axis=0),
        onset=onset,
        survival=survival,
        events={k: int(e.sum()) for k, e in events.items()},
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
    breaches: dict[str, PlanBreach]


#: arms through the spread stage, oldest dropped beyond :data:`_PREPARED_SIZE`; each entry holds
#: its face map so that the id in the key stays that map's.
_PREPARED: dict[str, tuple[PreparedArm, FaceMap]] = {}
_PREPARED_SIZE = 64


def prepare_arm(arm: ArmSpec, face_map: FaceMap, params: ModelParameters) -> PreparedArm:
    """The arm's plan through the spread stage (cached, bounded: spread does not depend on patients)."""
    key = f"{arm.model_dump_json(exclude={'name'})}|{params.spread!r}|{id(face_map)}"
    if key not in _PREPARED:
        if len(_PREPARED) >= _PREPARED_SIZE:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = (_prepare_arm(arm, face_map, params), face_map)
    return _PREPARED[key][0]


def _prepare_arm(arm: ArmSpec, face_map: FaceMap, params: ModelParameters) -> PreparedArm:
    plan = arm_plan(arm)
    points = plan.points(face_map)
    injections = plan_injections(points, plan)
    result = spread(face_map, injections, plan.product_info.spread_factor, params.spread)
    scored = [face_map.areas.index(area) for area in arm.areas]
    ona = sum(plan.product_info.to_ona_units(p.units) for p in points)
    rules = load_adverse_events()
    danger = {name: list(muscles) for name, muscles in event_muscles(face_map, rules).items()}
    return PreparedArm(plan, scored, result.dose_per_muscle, result.profile, danger, ona,
                       breach_doses(injections, face_map, rules))


class CourseCache:
    """Chunks' compiled courses (:class:`VisitCourse`) kept for reuse across parameter sets that
    differ only in the rater stage (calibration's finite differences in those parameters).

    A chunk's course depends on its seed, size, population, arm, visits and every parameter
    except :data:`RATER_STAGE` (subjects' bias and noise, expectation): those act after the
    course, on the draws that follow it, and the cohort's draws do not depend on them. So a
    reused course gives exactly the numbers a fresh one would. Least recently used courses are
    dropped beyond ``max_bytes``.
    """

    #: Parameters (stage, names) that act only after the course.
    RATER_STAGE = ("population", ("subject_depth_bias", "subject_sd_mm", "expectation_bias", "expectation_days",
                                  "expectation_sd"))

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._courses: OrderedDict[str, tuple[PreparedArm, VisitCourse, int]] = OrderedDict()

    def key(self, prepared: PreparedArm, population: PopulationSpec, n: int, follow_up_days: list[int],
            seed: tuple[int, ...], params: ModelParameters) -> str:
        stage, names = self.RATER_STAGE
        course_params = replace(params, **{stage: replace(getattr(params, stage), **{name: 0.0 for name in names})})
        return f"{id(prepared)}|{population.model_dump_json()}|{n}|{follow_up_days}|{seed}|{course_params!r}"

    def get(self, key: str, prepared: PreparedArm, compute: Callable[[], VisitCourse]) -> VisitCourse:
        if key in self._courses:
            self._courses.move_to_end(key)
            self.hits += 1
            return self._courses[key][1]
        course = compute()
        size = sum(getattr(course, f).nbytes for f in course.__dataclass_fields__)
        self._courses[key] = (prepared, course, size)  # the arm is held so its id stays unique
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._courses) > 1:
            self.bytes -= self._courses.popitem(last=False)[1][2]
        return course


def simulate_chunk(
    prepared: PreparedArm,
    population: PopulationSpec,
    n: int,
    follow_up_days: list[int],
    seed: tuple[int, ...],
    face_map: FaceMap,
    params: ModelParameters,
    courses: CourseCache | None = None,
) -> ArmSummary:
    """Enrol ``n`` subjects with their own seed, treat them, rate them at each visit, and
    summarise them (:class:`ArmSummary`). ``courses``: reuse compiled courses across parameter
    sets that differ only in the rater stage (:class:`CourseCache`)."""
    rng = np.random.default_rng(list(seed))
    # the visits' shared rating deviations draw from their own stream (enrolment, then each visit)
    visit_rng = np.random.default_rng([*seed, 3])
    cohort: Cohort = enrol(population, n, len(face_map.areas), prepared.scored, rng, params, visit_rng)
    treatments = np.asarray(prepared.plan.treatment_days, dtype=float)
    rules = load_adverse_events()
    # septum breaches draw from their own stream (as antibodies do), leaving every other draw unchanged
    breached = draw_breaches(n, np.random.default_rng([*seed, 2]), prepared.breaches)
    susceptible = draw_susceptible(n, np.random.default_rng([*seed, 4]), rules)  # its own stream too
    doses = vary_danger_doses(np.repeat(prepared.dose_per_muscle[None, :], n, axis=0), cohort.danger_multiplier,
                              face_map, rules, prepared.breaches, breached)
    doses = np.repeat(doses[:, None, :], treatments.size, axis=1)
    # antibodies draw from their own stream, so adding them leaves every other draw unchanged
    probability = seroconversion_probability(
        np.full(treatments.size, prepared.ona_units_per_treatment), treatments, prepared.plan.product_info.immunogenicity,
        ~cohort.female, params.antibodies)
    doses, antibodies = neutralize(doses, probability, np.random.default_rng([*seed, 1]), params.antibodies)
    treated = with_product(cohort.patients, prepared.plan.product_info)  # the product's onset and persistence
    groups = list(prepared.danger)
    depressors = event_depressors(face_map, rules)
    offset_groups = [name for name in groups if name in depressors]
    lifting = event_susceptible_muscles(face_map, rules)
    lifting_groups = [name for name in groups if name in lifting]

    def compute() -> VisitCourse:
        return visit_course(follow_up_days, treatments, doses, treated, face_map, params, prepared.profile,
                            prepared.scored, cohort.onset_threshold,
                            [prepared.danger[name] for name in groups] + [depressors[name] for name in offset_groups]
                            + [lifting[name] for name in lifting_groups])

    course = compute() if courses is None else courses.get(
        courses.key(prepared, population, n, follow_up_days, seed, params), prepared, compute)
    visits = np.asarray(follow_up_days, dtype=float)
    latest = treatments[np.maximum(np.searchsorted(treatments, visits, side="right") - 1, 0)]
    expectation = expectation_factor(visits - latest, params, cohort.expectation_scale[:, None, None])
    depth = course.contraction_depth_mm * expectation
    shared = visit_deviations(depth.shape, visit_rng, params)  # both raters see the visit's deviation
    # each rater's impression of the face, the same at every visit as at baseline
    persistent_inv = cohort.persistent_inv_mm[:, prepared.scored, None]
    persistent_subj = cohort.persistent_subj_mm[:, prepared.scored, None]
    inv = investigator_grades(depth, rng, params, shared, persistent_inv)
    subj = subject_grades(depth, rng, params, shared, persistent_subj)
    perceived_now = perceived_depth(depth, rng, params, shared, persistent_subj)
    baseline_shared = cohort.baseline_shared_mm[:, prepared.scored, None]
    perceived_then = perceived_depth(course.baseline_depth_mm[..., None], rng, params, baseline_shared,
                                     persistent_subj)
    events = {"neutralizing_antibodies": antibodies}
    for g, name in enumerate(groups):  # the same rule as adverse_events.cohort_events, on the kernel's peaks
        offset = (course.max_blocked[:, len(groups) + offset_groups.index(name)] if name in offset_groups else None)
        held = (course.max_blocked[:, len(groups) + len(offset_groups) + lifting_groups.index(name)]
                if name in lifting_groups else None)
        events[name] = event_occurs(rules.events[name], course.max_blocked[:, g], offset, susceptible.get(name), held)
    expression = course.area_strength
    first = course.onset_day
    return summarize(inv, subj, expression, cohort.baseline_inv[:, prepared.scored],
                     cohort.baseline_subj[:, prepared.scored], perceived_now / np.maximum(perceived_then, 1e-9),
                     first, events, follow_up_days)


# -- endpoints ------------------------------------------------------------------------
def kaplan_meier_survival(censored: IntArray, events: IntArray) -> FloatArray:
    """Product-limit survival just after each of increasing event times, from the counts
    censored and with the event at each: shape (n_times,), 1.0 before any event."""
    survival, at_risk = 1.0, int(np.sum(censored) + np.sum(events))
    out = np.ones(len(events))
    for i, (lost, deaths) in enumerate(zip(censored, events)):
        if at_risk > 0 and deaths:
            survival *= 1.0 - deaths / at_risk
        out[i] = survival
        at_risk -= int(lost + deaths)
    return out


def kaplan_meier_median_counts(times: FloatArray, censored: IntArray, events: IntArray) -> float | None:
    """Median event time (product-limit) from counts at increasing ``times``; None if not reached."""
    reached = np.flatnonzero(kaplan_meier_survival(censored, events) <= 0.5)
    return float(times[reached[0]]) if reached.size else None


def kaplan_meier_median(times: FloatArray, observed: npt.NDArray[np.bool_]) -> float | None:
    """Median of event times with right-censoring (product-limit); None if not reached."""
    unique, index = np.unique(times, return_inverse=True)
    events = np.bincount(index, weights=observed, minlength=unique.size).astype(np.int64)
    censored = np.bincount(index, minlength=unique.size) - events
    return kaplan_meier_median_counts(unique, censored, events)


def grouped_median(ends: FloatArray, survival: FloatArray, start: float) -> float | None:
    """The median of event times that are known only to the class they fall in, read continuously.

    ``ends`` (n,) increasing: the day each class ends (a visit, or a diary day); class ``i`` holds
    the events after ``ends[i - 1]`` (``start`` for the first) up to ``ends[i]``; ``survival`` (n,)
    the share still without the event at each end. A median read as "the first end with survival
    at or below 0.5" (:func:`kaplan_meier_median_counts`) is the end of the class in which the
    crossing falls, so it jumps by a whole class (30 days between 4-month visits) when the
    crossing moves by a day. Here the crossing is located within its class by linear
    interpolation of survival, and moved on by half the class: what visits of that spacing read
    on average when the event falls uniformly within a class. The result changes continuously
    with the curve, lies within half a class of the step median, and equals it where the
    crossing is in the middle of its class. Days; None if survival never reaches 0.5.
    """
    reached = np.flatnonzero(survival <= 0.5)
    if not reached.size:
        return None
    i = int(reached[0])
    begin = float(ends[i - 1]) if i else float(start)
    before = float(survival[i - 1]) if i else 1.0
    width = float(ends[i]) - begin
    within = (before - 0.5) / (before - float(survival[i])) if before > survival[i] else 1.0
    return begin + within * width + 0.5 * width


def _median_onset(histogram: IntArray) -> float | None:
    """The median of onset days from their histogram (last bin: never; None if the median is never)."""
    n = int(histogram.sum())
    cumulative = np.cumsum(histogram)
    middle = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    values = [int(np.searchsorted(cumulative, k, side="right")) for k in middle]
    if any(value == histogram.size - 1 for value in values):
        return None
    return float(np.mean(values))


def _median_onset_interpolated(histogram: IntArray) -> float | None:
    """:func:`grouped_median` of onset days from their histogram (last bin: never): day ``d`` of
    the diary holds the effects first noticed after day ``d - 1``, up to day ``d``."""
    n = int(histogram.sum())
    if not n:
        return None
    days = np.arange(histogram.size - 1, dtype=float)
    return grouped_median(days, 1.0 - np.cumsum(histogram[:-1]) / n, start=-1.0)


#: Suffix of an endpoint that reads a median continuously (:func:`grouped_median`) beside its step median.
INTERPOLATED = "_interpolated"


def _printed(value: float | None) -> float | None:
    """A median in days as the trial document prints it (2 decimals; None stays None)."""
    return None if value is None else round(float(value), 2)


def area_endpoints(summary: ArmSummary, a: int, visits: list[int]) -> dict[str, Any]:
    """All endpoints of scored area ``a`` (see module docstring)."""
    n = summary.n
    pct = lambda counts: {str(d): round(100.0 * float(c / n), 2) for d, c in zip(visits, counts[a])}  # noqa: E731
    improvement = summary.improvement[a] / n
    best = improvement.max()
    onset_by_day = np.cumsum(summary.onset[a])
    out: dict[str, Any] = {name: pct(counts) for name, counts in summary.counts.items()}
    out["subj_onset_by_day"] = {str(d): round(100.0 * float(onset_by_day[d] / n), 2) for d in visits}
    out["fraction_of_max_effect_by_day"] = {
        str(d): round(100.0 * float(m / best), 2) if best > 0 else 0.0 for d, m in zip(visits, improvement)}
    out["median_onset_days"] = _median_onset(summary.onset[a])
    out["median_onset_days" + INTERPOLATED] = _printed(_median_onset_interpolated(summary.onset[a]))
    out["residual_expression_pct"] = {
        str(d): round(100.0 * float(m / n), 2) for d, m in zip(visits, summary.expression[a])}
    v = np.asarray(visits)
    names = SURVIVAL if 30 in visits and (v > 30).any() else SURVIVAL[2:]
    for name in names:
        censored, events = summary.survival[name][a, :, 0], summary.survival[name][a, :, 1]
        scored = (censored + events).sum() > 0
        out[name] = kaplan_meier_median_counts(v, censored, events) if scored else None
        # events of the first class follow treatment (day 0); the others the visit before
        out[name + INTERPOLATED] = _printed(grouped_median(v.astype(float), kaplan_meier_survival(censored, events),
                                                           start=0.0)) if scored else None
    return out


#: address schemes a Dask scheduler listens on over the network.
DASK_SCHEMES = ("tcp", "tls")


def check_dask_address(address: str) -> str:
    """``address`` if it has the form ``tcp://host:port`` (or ``tls://``), else a TrialError
    naming ``--dask``; checked before anything connects."""
    import re

    match = re.fullmatch(r"(?:(tcp|tls)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})", address.strip())
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise TrialError(
            f"--dask: malformed scheduler address {address!r}; allowed: tcp://host:port or tls://host:port, "
            "port 1-65535"
        )
    return address.strip() if match.group(1) else f"tcp://{address.strip()}"


@dataclass
class DaskPool:
    """A Dask client (a scheduler's, or a local cluster's that it closes) that runs work
    elsewhere: the trial's chunks (:func:`dask_runner`) and the calibration's cross-validation
    folds (:func:`neuromod.trials.calibrate.cross_validate`)."""

    client: Any
    cluster: Any = None

    def completed(self, function: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[int, Any]]:
        """``function(item)`` for every item on the cluster; yields ``(index of the item, result)``
        as each one finishes, so the caller can show progress and keep every finished result."""
        from dask.distributed import as_completed

        futures = [self.client.submit(function, item, pure=False) for item in items]
        position = {future.key: index for index, future in enumerate(futures)}
        for future in as_completed(futures):
            yield position[future.key], future.result()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def dask_pool(address: str | None = None, workers: int | None = None) -> DaskPool:
    """A :class:`DaskPool` on the scheduler at ``address`` (``tcp://host:8786``), reached within
    ``dask_connect_timeout_s`` (``data/plan_limits.yaml``) or a TrialError; without one, on a local
    cluster of ``workers`` processes (one thread each, and a share of the machine's cores for the
    engine's ``numba`` threads, so that the workers do not oversubscribe the cores between them),
    which ``close()`` shuts down."""
    import logging
    import os

    from dask.distributed import Client, LocalCluster

    if address:
        address = check_dask_address(address)
        timeout = LIMITS.trial.dask_connect_timeout_s
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # the failure is reported once, below
        try:
            client = Client(address, timeout=f"{timeout:g}s")
        except (OSError, TimeoutError) as error:
            raise TrialError(
                f"--dask: cannot reach a Dask scheduler at {address} within {timeout:g} s "
                f"({type(error).__name__}); start one with `dask scheduler` or use --workers N"
            ) from None
        finally:
            quiet.setLevel(level)
        return DaskPool(client)
    workers = workers or 2
    engine_threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           env={"NUMBA_NUM_THREADS": str(engine_threads)})
    return DaskPool(Client(cluster), cluster)


def dask_runner(address: str | None = None, workers: int | None = None):
    """A ``chunk_runner`` that spreads chunks over a Dask cluster (:func:`dask_pool`); the caller
    closes it after the run with ``runner.close()``."""
    pool = dask_pool(address, workers)

    def runner(jobs: list[tuple]) -> list["ArmSummary"]:
        futures = pool.client.map(lambda job: simulate_chunk(*job), jobs, pure=False)
        return pool.client.gather(futures)

    runner.close = pool.close  # type: ignore[attr-defined]
    return runner


def run_trial(
    spec: TrialSpec,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
    progress: bool | None = None,
    chunk_runner=None,
    courses: CourseCache | None = None,
) -> dict[str, Any]:
    """Run every arm of ``spec``; returns the documented JSON document.

    chunk_runner: optional callable mapping a list of chunk jobs (argument tuples of
    :func:`simulate_chunk`) to their results, e.g. a Dask client's map; default: in process.
    courses: compiled courses to reuse in process (:class:`CourseCache`; calibration).
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
        results = (simulate_chunk(*args, courses) for _, args in bar)  # summarised one chunk at a time
    else:
        results = iter(chunk_runner([args for _, args in jobs]))
    by_arm: dict[str, ArmSummary] = {}
    for (name, _), summary in zip(jobs, results):
        by_arm[name] = by_arm[name] + summary if name in by_arm else summary
    arms = {}
    for arm in spec.arms:
        summary = by_arm[arm.name]
        arms[arm.name] = {
            "product": arm.product,
            "areas_units": dict(arm.areas),
            "treatment_days": list(arm.treatment_days),
            "n": summary.n,
            "areas": {area: area_endpoints(summary, a, spec.follow_up_days) for a, area in enumerate(arm.areas)},
            "adverse_events_pct": {k: round(100.0 * v / summary.n, 3) for k, v in summary.events.items()},
        }
    return {
        "name": spec.name,
        "seed": spec.seed,
        "subjects_per_arm": spec.subjects_per_arm,
        "follow_up_days": list(spec.follow_up_days),
        "arms": arms,
        "disclaimer": DISCLAIMER,
    }

"""Clinical tables: adverse events and their thresholds, treatment goals, the planner's doses.

Read from ``data/adverse_events.yaml`` and ``data/planning.yaml``; every number there has a
source (or ``assumption`` and why). Which muscle belongs to which adverse event is the
``danger`` column of ``data/muscles.csv`` (:class:`neuromod.reference.anatomy.MuscleRegion`);
loading checks that every such event is defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from neuromod.reference.files import read_csv, read_data_yaml


def _number(entry: Any, where: str) -> float:
    """The value of a ``{value, unit, source}`` entry, refusing one without a source."""
    if not isinstance(entry, dict) or "value" not in entry or not str(entry.get("source", "")).strip():
        raise ValueError(f"{where}: must be a mapping with value, unit and source")
    return float(entry["value"])


@dataclass(frozen=True)
class AdverseEvent:
    """An event caused by toxin reaching a danger muscle: it occurs in a patient when the
    peak blocked fraction of any of its muscles (either side) exceeds ``block_threshold``.

    septum_breach: how toxin crosses a barrier to its muscles (None: no barrier);
    depressors: muscles (names in muscles.csv) that pull against its muscle: the event needs
    its muscle's peak block to exceed theirs (the highest of them) by ``block_threshold``, so
    treating them with it protects (an elevator loses to its depressors only if weakened more);
    susceptible: a share of people in whom the event follows the muscle's own block, without
    the depressors' protection (None: everyone follows the rule above)."""

    name: str
    description: str
    block_threshold: float
    septum_breach: SeptumBreach | None = None
    depressors: tuple[str, ...] = ()
    susceptible: Susceptible | None = None


@dataclass(frozen=True)
class Susceptible:
    """People in whom an event with depressors happens on its muscle's own block (the brow that
    rests on frontalis tone: gravity and the lid's skin, not the depressors, are what the
    frontalis holds up, so blocking the depressors does not protect).

    share: fraction (0-1) of patients who are so; block_threshold: the peak blocked fraction
    (0-1) of any of ``muscles`` above which the event happens in them; who: the group in words,
    as it follows "patients" ("whose brow rests on frontalis tone"), for the tables and pages
    that show the rule; muscles: names in muscles.csv of the muscles that hold the brow up in
    them (the whole frontalis below the C-line: they lift the brow with all of it, not only its
    lateral tail), the event's danger muscles among them; empty: the danger muscles alone."""

    share: float
    block_threshold: float
    who: str
    muscles: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeptumBreach:
    """How toxin reaches a danger muscle that sits behind a barrier (the levator behind the
    orbital septum): not through the tail of a correctly placed injection's field, which the
    barrier all but stops, but in the few people in whom the injection nearest the muscle
    crosses the barrier (a point placed low or deep at the orbital rim, a lax septum).

    An injection lands off its planned point by a between-person offset towards the orbit with
    s.d. ``placement_sd_mm``; it breaches when it lands within ``rim_distance_mm`` of the
    muscle's centre (the septum's attachment at the orbital rim), so a point ``d`` mm from the
    centre breaches with probability ``Phi((rim_distance_mm - d) / placement_sd_mm)``, and
    ``share_of_point`` of its units then reach the muscle.
    """

    rim_distance_mm: float
    placement_sd_mm: float
    share_of_point: float


@dataclass(frozen=True)
class AdverseEventRules:
    """The adverse events, how a described patient's risk is integrated, and when injections
    count as one point (``same_point_radius_mm``) for the per-point limit.

    reported_only: danger-muscle events without a threshold (event -> why): their muscles'
    units and block are reported, but no risk is computed and their dose does not vary."""

    events: dict[str, AdverseEvent]
    reported_only: dict[str, str]
    risk_grid_sd: float
    risk_grid_step_sd: float
    quadrature_nodes: int
    same_point_radius_mm: float


def _breach(entry: Any, where: str) -> SeptumBreach | None:
    if entry is None:
        return None
    breach = SeptumBreach(*(_number(entry.get(key), f"{where}.{key}") for key in ("rim_distance_mm", "placement_sd_mm",
                                                                                    "share_of_point")))
    if breach.placement_sd_mm <= 0.0 or not 0.0 <= breach.share_of_point <= 1.0:
        raise ValueError(f"{where}: placement_sd_mm must be > 0 and share_of_point in 0-1")
    return breach


def _susceptible(entry: Any, where: str) -> Susceptible | None:
    if entry is None:
        return None
    lifting = entry.get("muscles")
    if lifting is not None:
        if not isinstance(lifting, dict) or not str(lifting.get("source", "")).strip():
            raise ValueError(f"{where}.muscles: must be a mapping with value (muscles.csv muscle names) and source")
        lifting = lifting.get("value")
    group = Susceptible(*(_number(entry.get(key), f"{where}.{key}") for key in ("share", "block_threshold")),
                        who=str(entry.get("who") or "").strip(),
                        muscles=() if lifting is None else _known_muscles(lifting, f"{where}.muscles"))
    if not 0.0 <= group.share <= 1.0 or not 0.0 < group.block_threshold < 1.0 or not group.who:
        raise ValueError(f"{where}: share must be in 0-1, block_threshold in (0, 1), and who a phrase")
    return group


def _known_muscles(names: Any, where: str) -> tuple[str, ...]:
    """A list of muscles.csv muscle names, or a one-line error naming ``where``."""
    if not isinstance(names, list) or not names:
        raise ValueError(f"{where}: must be a non-empty list of muscles.csv muscle names")
    known = {row["muscle"] for row in read_csv("muscles.csv")}
    unknown = sorted(set(map(str, names)) - known)
    if unknown:
        raise ValueError(f"{where}: unknown muscle(s) {', '.join(unknown)}; allowed: muscles.csv muscle names")
    return tuple(str(m) for m in names)


def _depressors(entry: Any, where: str) -> tuple[str, ...]:
    if entry is None:
        return ()
    if not isinstance(entry, dict) or not str(entry.get("source", "")).strip() or not entry.get("muscles"):
        raise ValueError(f"{where}: must be a mapping with muscles and source")
    return _known_muscles(entry["muscles"], f"{where}.muscles")


@lru_cache(maxsize=1)
def load_adverse_events() -> AdverseEventRules:
    """The packaged adverse-event rules (``data/adverse_events.yaml``)."""
    document = read_data_yaml("adverse_events.yaml")
    events = {
        name: AdverseEvent(name, str(entry["description"]), _number(entry["block_threshold"], f"events.{name}"),
                           _breach(entry.get("septum_breach"), f"events.{name}.septum_breach"),
                           _depressors(entry.get("depressors"), f"events.{name}.depressors"),
                           _susceptible(entry.get("susceptible"), f"events.{name}.susceptible"))
        for name, entry in document["events"].items()
    }
    named = {row["danger"].strip() for row in read_csv("muscles.csv")} - {""}
    reported_only = {name: str(why) for name, why in (document.get("reported_only") or {}).items()}
    undefined = sorted(named - set(events) - set(reported_only))
    if undefined:
        raise ValueError(f"muscles.csv danger: event(s) {', '.join(undefined)} not defined in adverse_events.yaml")
    return AdverseEventRules(
        events=events,
        reported_only=reported_only,
        risk_grid_sd=_number(document["risk_grid_sd"], "risk_grid_sd"),
        risk_grid_step_sd=_number(document["risk_grid_step_sd"], "risk_grid_step_sd"),
        quadrature_nodes=int(_number(document["quadrature_nodes"], "quadrature_nodes")),
        same_point_radius_mm=_number(document["same_point_radius_mm"], "same_point_radius_mm"),
    )


@dataclass(frozen=True)
class TreatmentGoal:
    """A treatment goal: FWS grade at maximum contraction at most ``max_grade``."""

    name: str
    max_grade: int


@dataclass(frozen=True)
class PlanningTables:
    """The dose planner's tables (see ``data/planning.yaml`` for each number's source).

    reference_ona_units: onabotulinumtoxinA units of each area's label (or typical) pattern;
    scale_floor, scale_ceiling: the searched multiples of that pattern; steps_per_doubling:
    candidates per doubling of the dose; goal_day: the day the goal is checked;
    default_coverage, hold_share, default_max_ptosis_risk: the planner's defaults (shares 0-1).
    """

    reference_ona_units: dict[str, float]
    scale_floor: float
    scale_ceiling: float
    steps_per_doubling: int
    goal_day: int
    goals: dict[str, TreatmentGoal]
    default_coverage: float
    hold_share: float
    default_max_ptosis_risk: float

    def scales(self) -> list[float]:
        """The searched multiples of the reference pattern, smallest first: geometric steps
        from the floor, ending exactly at the ceiling."""
        scales = []
        k = 0
        while True:
            scale = self.scale_floor * 2.0 ** (k / self.steps_per_doubling)
            if scale >= self.scale_ceiling * (1 - 1e-9):
                break
            scales.append(round(scale, 4))
            k += 1
        return scales + [self.scale_ceiling]


@lru_cache(maxsize=1)
def load_planning() -> PlanningTables:
    """The packaged planner tables (``data/planning.yaml``)."""
    document = read_data_yaml("planning.yaml")
    scale = document["dose_scale"]
    return PlanningTables(
        reference_ona_units={area: _number(entry, f"reference_ona_units.{area}")
                             for area, entry in document["reference_ona_units"].items()},
        scale_floor=_number(scale["floor"], "dose_scale.floor"),
        scale_ceiling=_number(scale["ceiling"], "dose_scale.ceiling"),
        steps_per_doubling=int(_number(scale["steps_per_doubling"], "dose_scale.steps_per_doubling")),
        goal_day=int(_number(document["goal_day"], "goal_day")),
        goals={name: TreatmentGoal(name, int(_number({"value": entry["max_grade"], "source": entry.get("source")},
                                                      f"goals.{name}")))
               for name, entry in document["goals"].items()},
        default_coverage=_number(document["default_coverage"], "default_coverage"),
        hold_share=_number(document["hold_share"], "hold_share"),
        default_max_ptosis_risk=_number(document["default_max_ptosis_risk"], "default_max_ptosis_risk"),
    )


def none_mild_max_grade() -> int:
    """The highest FWS grade at maximum contraction that counts as "none or mild" (1): the one
    definition used by trial endpoints, the planner's goal and reports."""
    return load_planning().goals["none_mild"].max_grade

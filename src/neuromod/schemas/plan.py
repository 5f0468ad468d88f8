"""Injection plans: the validated input of a simulation.

A plan names a product, how the vial was reconstituted, where the injections go (named
sites, x/y points on the face map, or the ``areas`` shorthand for label patterns) and when
treatments repeat. Everything is checked here, at the door, with errors that name the field
and the allowed range; the model stages downstream trust what they receive.

The shortest valid plan is ``{product: botox, areas: {glabella: 20}}``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.files import DocumentError, read_document
from neuromod.reference.products import Product, get_product, load_products
from neuromod.schemas.patient import PatientDescription
from neuromod.schemas.types import LIMITS, Day, FiniteFloat, Text, Units, field_path
from neuromod.schemas.types import format_validation_error as _format_validation_error

#: The plan limits (``data/plan_limits.yaml``, each with its source); names kept for callers.
PLAN_LIMITS = LIMITS.plan
MAX_ONA_UNITS_PER_SITE = PLAN_LIMITS.max_ona_units_per_site
MAX_VOLUME_PER_SITE_ML = PLAN_LIMITS.max_volume_per_site_ml
DILUTION_TOLERANCE = PLAN_LIMITS.dilution_tolerance
MAX_TREATMENT_DAY = PLAN_LIMITS.max_treatment_day
#: default injection depth (mm) for a point given by coordinates: intramuscular in the upper face.
DEFAULT_DEPTH_MM = 3.0
#: relative slack when summing units at one point (label shares such as 0.166667 x 150 U).
_SUM_TOLERANCE = 1e-6


class PlanError(ValueError):
    """An invalid plan; the message lists each problem with its field and allowed range."""


class Injection(BaseModel):
    """One injection: at a named ``site`` or at ``x_mm``/``y_mm``; ``units`` or ``volume_ml``."""

    model_config = ConfigDict(extra="forbid")
    site: Text | None = Field(default=None, description="a standard site (see `neuromod sites`)")
    x_mm: FiniteFloat | None = Field(
        default=None, ge=-PLAN_LIMITS.max_face_coordinate_mm, le=PLAN_LIMITS.max_face_coordinate_mm,
        description=f"mm from the nasion, + towards the patient's left, on the face map "
                    f"(|x| <= {PLAN_LIMITS.max_face_coordinate_mm:g})")
    y_mm: FiniteFloat | None = Field(
        default=None, ge=-PLAN_LIMITS.max_face_coordinate_mm, le=PLAN_LIMITS.max_face_coordinate_mm,
        description=f"mm from the nasion, + up, on the face map (|y| <= {PLAN_LIMITS.max_face_coordinate_mm:g})")
    depth_mm: FiniteFloat | None = Field(default=None, gt=0, le=PLAN_LIMITS.max_depth_mm,
                                         description=f"mm below the skin, (0, {PLAN_LIMITS.max_depth_mm:g}]")
    units: Units | None = Field(
        default=None, description=f"product units, > 0 and <= {PLAN_LIMITS.max_ona_units_per_site:g} "
                                  "onabotulinumtoxinA-equivalent units per point")
    volume_ml: FiniteFloat | None = Field(
        default=None,
        description=f"mL at the plan's dilution, (0, {PLAN_LIMITS.max_volume_per_site_ml:g}] per point")


class Plan(BaseModel):
    """A treatment plan. See the module docstring and ``examples/``."""

    model_config = ConfigDict(extra="forbid")
    patient: PatientDescription = Field(default_factory=PatientDescription)
    product: Text = Field(description="a product name (see `neuromod products`)")
    vial_units: FiniteFloat | None = Field(
        default=None, gt=0, le=PLAN_LIMITS.max_vial_units,
        description=f"units in the vial, (0, {PLAN_LIMITS.max_vial_units:g}]")
    saline_ml: FiniteFloat | None = Field(
        default=None, ge=PLAN_LIMITS.min_saline_ml, le=PLAN_LIMITS.max_saline_ml,
        description=f"mL of saline added, {PLAN_LIMITS.min_saline_ml:g}-{PLAN_LIMITS.max_saline_ml:g}")
    injections: list[Injection] | None = Field(
        default=None, max_length=PLAN_LIMITS.max_injections,
        description=f"at most {PLAN_LIMITS.max_injections} injections")
    areas: dict[Text, Units] | None = Field(
        default=None, description=f"units per area in its label pattern, > 0 (placebo >= 0) and <= "
                                  f"{PLAN_LIMITS.max_ona_units_per_site:g} onabotulinumtoxinA-equivalent units per site")
    treatment_days: list[Day] = Field(
        default_factory=lambda: [0.0], min_length=1, max_length=PLAN_LIMITS.max_treatments,
        description=f"days 0-{PLAN_LIMITS.max_treatment_day:g}, first 0, at most {PLAN_LIMITS.max_treatments} "
                    "treatments, spaced by at least the label interval")
    every_days: FiniteFloat | None = Field(
        default=None, gt=0,
        description=f"repeat every N days instead of treatment_days: >= the product's label interval "
                    f"(and >= {PLAN_LIMITS.min_every_days:g}), at most {PLAN_LIMITS.max_treatments} treatments")
    until_day: Day = Field(default=MAX_TREATMENT_DAY,
                           description=f"last day a repeat may fall on with every_days, 0-{MAX_TREATMENT_DAY:g}")

    @model_validator(mode="before")
    @classmethod
    def _expand_schedule(cls, data: Any) -> Any:
        """``every_days: N`` becomes treatment_days 0, N, 2N, ... up to ``until_day``; its range is
        checked first, so a tiny interval never builds a huge schedule."""
        if not isinstance(data, dict) or data.get("every_days") is None:
            return data
        if "treatment_days" in data:
            raise ValueError("every_days: give either every_days or treatment_days, not both")
        every, until = data["every_days"], data.get("until_day", MAX_TREATMENT_DAY)
        try:
            every = TypeAdapter(FiniteFloat).validate_python(every)
            until = TypeAdapter(Day).validate_python(until)
        except ValidationError:
            return data  # the field validators report the bad value with its range
        product = load_products().get(data.get("product")) if isinstance(data.get("product"), str) else None
        interval = max(PLAN_LIMITS.min_every_days, product.min_retreat_days if product else 0.0)
        if every < interval:
            why = (f"{product.name} label: repeat no sooner than {product.min_retreat_days:g} days"
                   if product and product.min_retreat_days else f"at most one treatment every {interval:g} days")
            raise ValueError(f"every_days: must be >= {interval:g} days ({why}), got {every:g}")
        count = int((until + 1e-9) // every) + 1
        if count > PLAN_LIMITS.max_treatments:
            raise ValueError(
                f"every_days: {every:g} days until day {until:g} gives {count} treatments; allowed: at most "
                f"{PLAN_LIMITS.max_treatments} (raise every_days or lower until_day)")
        return {**data, "treatment_days": [float(d) for d in np.arange(0.0, until + 1e-9, every)]}

    @model_validator(mode="after")
    def _check(self) -> "Plan":
        problems = plan_problems(self, load_face_map())
        if problems:
            shown = problems[:20] + ([f"... and {len(problems) - 20} more problems"] if len(problems) > 20 else [])
            raise ValueError("; ".join(shown))
        return self

    # -- derived ---------------------------------------------------------------------
    @property
    def product_info(self) -> Product:
        return get_product(self.product)

    @property
    def units_per_ml(self) -> float:
        """Concentration after reconstitution (product units per mL)."""
        product = self.product_info
        vial = self.vial_units if self.vial_units is not None else product.vial_units
        saline = self.saline_ml if self.saline_ml is not None else product.label_saline_ml
        return vial / saline

    def points(self, face_map: FaceMap | None = None) -> list["InjectionPoint"]:
        """Every injection as a resolved point (position, depth, units, volume)."""
        return resolve_points(self, face_map or load_face_map())

    def total_units(self) -> float:
        return sum(p.units for p in self.points())


@dataclass(frozen=True)
class InjectionPoint:
    """A resolved injection: where, how deep, how many product units in what volume."""

    label: str
    area: str
    x_mm: float
    y_mm: float
    depth_mm: float
    units: float
    volume_ml: float


def resolve_points(plan: Plan, face_map: FaceMap) -> list[InjectionPoint]:
    """Expand ``areas`` shorthand and named sites into points (assumes a validated plan)."""
    per_ml = plan.units_per_ml
    points: list[InjectionPoint] = []
    for area, units in (plan.areas or {}).items():
        for site in face_map.area_sites(area):
            site_units = units * site.share
            points.append(InjectionPoint(site.name, area, site.x_mm, site.y_mm, site.depth_mm,
                                         site_units, site_units / per_ml))
    for i, inj in enumerate(plan.injections or []):
        units = inj.units if inj.units is not None else inj.volume_ml * per_ml
        volume = inj.volume_ml if inj.volume_ml is not None else units / per_ml
        if inj.site is not None:
            site = face_map.site(inj.site)
            points.append(InjectionPoint(site.name, site.area, site.x_mm, site.y_mm,
                                         inj.depth_mm or site.depth_mm, units, volume))
        else:
            points.append(InjectionPoint(f"point_{i + 1}", "custom", inj.x_mm, inj.y_mm,
                                         inj.depth_mm or DEFAULT_DEPTH_MM, units, volume))
    return points


def plan_problems(plan: Plan, face_map: FaceMap) -> list[str]:
    """Every rule a plan breaks, each naming its field and the allowed range."""
    products = load_products()
    if plan.product not in products:
        return [f"product: unknown product {plan.product!r}; allowed: {', '.join(sorted(products))}"]
    product = products[plan.product]
    problems: list[str] = []
    if not plan.injections and not plan.areas:
        problems.append("injections/areas: give at least one injection or one area")
    area_names = face_map.areas_with_sites
    for area in plan.patient.baseline:
        if area not in face_map.areas:
            problems.append(f"{field_path('patient', 'baseline', area)}: unknown area; allowed: {', '.join(face_map.areas)}")
    per_ml = plan.units_per_ml
    max_site = MAX_ONA_UNITS_PER_SITE * product.units_per_ona_unit
    for area, units in (plan.areas or {}).items():
        if area not in area_names:
            problems.append(f"{field_path('areas', area)}: unknown area; allowed: {', '.join(area_names)}")
            continue
        n_sites = len(face_map.area_sites(area))
        allowed_zero = not product.contains_toxin
        if units < 0 or (units == 0 and not allowed_zero) or units > max_site * n_sites:
            low = ">= 0" if allowed_zero else "> 0"
            problems.append(
                f"{field_path('areas', area)}: units must be {low} and <= {max_site * n_sites:g} "
                f"({n_sites} sites x {max_site:g} {plan.product} units), got {units:g}"
            )
    for i, inj in enumerate(plan.injections or []):
        problems += _injection_problems(i, inj, face_map, per_ml, max_site, plan.product)
    if not problems:
        points = resolve_points(plan, face_map)
        total = sum(p.units for p in points)
        if total > product.max_session_units:
            problems.append(
                f"units (session total): {total:g} {plan.product} units exceeds the label maximum "
                f"of {product.max_session_units:g} per session"
            )
        problems += _point_problems(plan, points, max_site)
    problems += _schedule_problems(plan.treatment_days, product)
    return problems


def _point_sources(plan: Plan) -> list[str]:
    """The field each resolved point comes from, in :func:`resolve_points` order."""
    sources = []
    for area in plan.areas or {}:
        sources += [field_path("areas", area)] * len(load_face_map().area_sites(area))
    return sources + [f"injections.{i}" for i in range(len(plan.injections or []))]


def _point_problems(plan: Plan, points: list["InjectionPoint"], max_site: float) -> list[str]:
    """Units and volume given at the same point (same site, or same x/y to 0.1 mm) are summed
    before the per-point limits apply: sixteen 25 U entries at one site are 400 U at one spot."""
    at_point: dict[tuple[float, float], list[int]] = defaultdict(list)
    for k, point in enumerate(points):
        at_point[(round(point.x_mm, 1), round(point.y_mm, 1))].append(k)
    sources = _point_sources(plan)
    problems = []
    for (x, y), members in at_point.items():
        if len(members) < 2:
            continue
        units = sum(points[k].units for k in members)
        volume = sum(points[k].volume_ml for k in members)
        fields = sorted({sources[k] for k in members}, key=sources.index)
        named = ", ".join(fields[:3]) + (f" and {len(fields) - 3} more" if len(fields) > 3 else "")
        where = f"{len(members)} entries at one point ({x:g}, {y:g}) mm ({named})"
        if units > max_site * (1 + _SUM_TOLERANCE):
            problems.append(
                f"{fields[0]}: {where} add up to {units:g} {plan.product} units; allowed: <= {max_site:g} "
                f"per point ({MAX_ONA_UNITS_PER_SITE:g} onabotulinumtoxinA-equivalent units; entries at one point are summed)"
            )
        if volume > MAX_VOLUME_PER_SITE_ML * (1 + _SUM_TOLERANCE):
            problems.append(
                f"{fields[0]}: {where} add up to {volume:g} mL; allowed: <= {MAX_VOLUME_PER_SITE_ML:g} mL per point "
                "(entries at one point are summed)"
            )
    return problems


def _injection_problems(
    i: int, inj: Injection, face_map: FaceMap, per_ml: float, max_site: float, product: str
) -> list[str]:
    where = f"injections.{i}"
    problems: list[str] = []
    has_point = inj.x_mm is not None or inj.y_mm is not None
    if inj.site is not None and has_point:
        problems.append(f"{where}: give either site or x_mm/y_mm, not both")
    elif inj.site is not None:
        if inj.site not in face_map.sites:
            problems.append(f"{where}.site: unknown site {inj.site!r}; see `neuromod sites`")
    elif inj.x_mm is None or inj.y_mm is None:
        problems.append(f"{where}: give a site, or both x_mm and y_mm")
    elif not bool(face_map.on_face(inj.x_mm, inj.y_mm)):
        x0, x1, y0, y1 = face_map.bounds_mm
        problems.append(
            f"{where}.x_mm/y_mm: point ({inj.x_mm:g}, {inj.y_mm:g}) mm is off the face map "
            f"(inside the outline within x {x0:g}..{x1:g}, y {y0:g}..{y1:g} mm)"
        )
    if inj.units is None and inj.volume_ml is None:
        problems.append(f"{where}: give units or volume_ml")
    if inj.units is not None and not (0 < inj.units <= max_site):
        problems.append(f"{where}.units: must be > 0 and <= {max_site:g} {product} units per site, got {inj.units:g}")
    if inj.volume_ml is not None and not (0 < inj.volume_ml <= MAX_VOLUME_PER_SITE_ML):
        problems.append(
            f"{where}.volume_ml: must be > 0 and <= {MAX_VOLUME_PER_SITE_ML:g} mL per site, got {inj.volume_ml:g}"
        )
    if inj.units is not None and inj.volume_ml is not None and inj.volume_ml > 0:
        expected = inj.volume_ml * per_ml
        if abs(inj.units - expected) > DILUTION_TOLERANCE * expected:
            problems.append(
                f"{where}.units/volume_ml: {inj.units:g} units in {inj.volume_ml:g} mL disagrees with the "
                f"dilution of {per_ml:g} units/mL (expected {expected:g} units, within "
                f"{DILUTION_TOLERANCE:.0%})"
            )
    if inj.units is None and inj.volume_ml is not None and 0 < inj.volume_ml <= MAX_VOLUME_PER_SITE_ML:
        if inj.volume_ml * per_ml > max_site:
            problems.append(
                f"{where}.volume_ml: {inj.volume_ml:g} mL at {per_ml:g} units/mL is "
                f"{inj.volume_ml * per_ml:g} units, above {max_site:g} per site"
            )
    return problems


def _schedule_problems(days: list[float], product: Product) -> list[str]:
    if not days:
        return ["treatment_days: give at least one day (default [0])"]
    problems = []
    if days[0] != 0:
        problems.append(f"treatment_days: the first treatment is day 0, got {days[0]:g}")
    for previous, day in zip(days, days[1:]):
        if day - previous < product.min_retreat_days or day <= previous:
            problems.append(
                f"treatment_days: day {day:g} comes {day - previous:g} days after day {previous:g}; "
                f"{product.name} label: repeat no sooner than {product.min_retreat_days:g} days"
            )
    if days[-1] > MAX_TREATMENT_DAY:
        problems.append(f"treatment_days: must lie within 0..{MAX_TREATMENT_DAY:g} (10 years), got {days[-1]:g}")
    return problems


def format_validation_error(error: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """One line per problem, ``field.path: problem; allowed: range`` (see :mod:`neuromod.schemas.types`)."""
    return _format_validation_error(error, model, prefix)


def parse_plan(document: Any) -> Plan:
    """Validate a parsed plan document (a mapping) into a :class:`Plan` or raise :class:`PlanError`."""
    if not isinstance(document, dict):
        raise PlanError("plan: expected a mapping with at least product and areas or injections")
    try:
        return Plan.model_validate(document)
    except ValidationError as error:
        raise PlanError(format_validation_error(error, Plan)) from None


def load_plan(path: str | Path) -> Plan:
    """Read a YAML or JSON plan file strictly (:func:`neuromod.reference.files.read_document`)
    and validate it."""
    try:
        document = read_document(path, "plan file")
    except DocumentError as error:
        raise PlanError(str(error)) from None
    return parse_plan(document)

"""Injection plans: the validated input of a simulation.

A plan names a product, how the vial was reconstituted, where the injections go (named
sites, x/y points on the face map, or the ``areas`` shorthand for label patterns) and when
treatments repeat. Everything is checked here, at the door, with errors that name the field
and the allowed range; the model stages downstream trust what they receive.

The shortest valid plan is ``{product: botox, areas: {glabella: 20}}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.products import Product, get_product, load_products
from neuromod.schemas.patient import PatientDescription

#: assumption: larger single-site doses fall outside facial practice (label sites take
#: 2-10 onabotulinumtoxinA units; masseter sites up to ~15).
MAX_ONA_UNITS_PER_SITE = 25.0
#: assumption: a facial injection bolus above 0.5 mL is outside practice (label: 0.05-0.1 mL).
MAX_VOLUME_PER_SITE_ML = 0.5
#: units and volume may disagree with the dilution by rounding only (relative).
DILUTION_TOLERANCE = 0.05
#: default injection depth (mm) for a point given by coordinates: intramuscular in the upper face.
DEFAULT_DEPTH_MM = 3.0
#: assumption: no facial session uses more points (label patterns 5-15, full-face charts ~60);
#: bounds the spread stage's memory (points x face-map cells).
MAX_INJECTIONS = 200
#: longest schedule simulated (days): ten years.
MAX_TREATMENT_DAY = 3650


class PlanError(ValueError):
    """An invalid plan; the message lists each problem with its field and allowed range."""


class Injection(BaseModel):
    """One injection: at a named ``site`` or at ``x_mm``/``y_mm``; ``units`` or ``volume_ml``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    site: str | None = Field(default=None, description="a standard site (see `neuromod sites`)")
    x_mm: float | None = Field(default=None, description="mm from the nasion, + towards the patient's left")
    y_mm: float | None = Field(default=None, description="mm from the nasion, + up")
    depth_mm: float | None = Field(default=None, gt=0, le=20, description="mm below the skin, (0, 20]")
    units: float | None = Field(default=None, description="product units")
    volume_ml: float | None = Field(default=None, description="mL at the plan's dilution")


class Plan(BaseModel):
    """A treatment plan. See the module docstring and ``examples/``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    patient: PatientDescription = Field(default_factory=PatientDescription)
    product: str
    vial_units: float | None = Field(default=None, gt=0, le=1000, description="units in the vial, (0, 1000]")
    saline_ml: float | None = Field(default=None, gt=0, le=10, description="mL of saline added, (0, 10]")
    injections: list[Injection] | None = Field(default=None, max_length=MAX_INJECTIONS,
                                               description=f"at most {MAX_INJECTIONS} points")
    areas: dict[str, float] | None = Field(default=None, description="units per area in its label pattern")
    treatment_days: list[float] = Field(default_factory=lambda: [0.0])
    every_days: float | None = Field(
        default=None, description="repeat every N days (>= the label interval) instead of treatment_days"
    )
    until_day: float = Field(default=MAX_TREATMENT_DAY, ge=0, le=MAX_TREATMENT_DAY,
                             description="last day a repeat may fall on with every_days, 0-3650")

    @model_validator(mode="before")
    @classmethod
    def _expand_schedule(cls, data: Any) -> Any:
        """``every_days: N`` becomes treatment_days 0, N, 2N, ... up to ``until_day``."""
        if isinstance(data, dict) and data.get("every_days") is not None:
            every = data["every_days"]
            if "treatment_days" in data:
                raise ValueError("every_days: give either every_days or treatment_days, not both")
            if not isinstance(every, (int, float)) or not math.isfinite(every) or every < 1:
                raise ValueError(f"every_days: must be a number of days >= 1, got {every!r}")
            until = data.get("until_day", MAX_TREATMENT_DAY)
            if not isinstance(until, (int, float)) or not 0 <= until <= MAX_TREATMENT_DAY:
                raise ValueError(f"until_day: must be 0-{MAX_TREATMENT_DAY}, got {until!r}")
            data = {**data, "treatment_days": [float(d) for d in np.arange(0.0, float(until) + 1e-9, float(every))]}
        return data

    @model_validator(mode="after")
    def _check(self) -> "Plan":
        problems = plan_problems(self, load_face_map())
        if problems:
            raise ValueError("; ".join(problems))
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
            problems.append(f"patient.baseline.{area}: unknown area; allowed: {', '.join(face_map.areas)}")
    per_ml = plan.units_per_ml
    max_site = MAX_ONA_UNITS_PER_SITE * product.units_per_ona_unit
    for area, units in (plan.areas or {}).items():
        if area not in area_names:
            problems.append(f"areas.{area}: unknown area; allowed: {', '.join(area_names)}")
            continue
        n_sites = len(face_map.area_sites(area))
        allowed_zero = not product.contains_toxin
        if units < 0 or (units == 0 and not allowed_zero) or units > max_site * n_sites:
            low = ">= 0" if allowed_zero else "> 0"
            problems.append(
                f"areas.{area}: units must be {low} and <= {max_site * n_sites:g} "
                f"({n_sites} sites x {max_site:g} {plan.product} units), got {units:g}"
            )
    for i, inj in enumerate(plan.injections or []):
        problems += _injection_problems(i, inj, face_map, per_ml, max_site, plan.product)
    if not problems:
        total = sum(p.units for p in resolve_points(plan, face_map))
        if total > product.max_session_units:
            problems.append(
                f"units (session total): {total:g} {plan.product} units exceeds the label maximum "
                f"of {product.max_session_units:g} per session"
            )
    problems += _schedule_problems(plan.treatment_days, product)
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
        problems.append(f"treatment_days: must lie within 0..{MAX_TREATMENT_DAY} (10 years), got {days[-1]:g}")
    return problems


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (pydantic's errors, without its prefixes)."""
    messages = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        messages.append(f"{location}: {message}" if location else message)
    return "; ".join(messages)


def parse_plan(document: Any) -> Plan:
    """Validate a parsed plan document (a mapping) into a :class:`Plan` or raise :class:`PlanError`."""
    if not isinstance(document, dict):
        raise PlanError("plan: expected a mapping with at least product and areas or injections")
    try:
        return Plan.model_validate(document)
    except ValidationError as error:
        raise PlanError(format_validation_error(error)) from None


def load_plan(path: str | Path) -> Plan:
    """Read a YAML or JSON plan file and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlanError(f"plan file: cannot read {path}: {error.strerror}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise PlanError(f"plan file: malformed {'JSON' if path.suffix == '.json' else 'YAML'} in {path}: {error}") from None
    return parse_plan(document)

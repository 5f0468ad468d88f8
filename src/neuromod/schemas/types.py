"""The type vocabulary of every document (plan, patient, trial) and command-line option.

Numbers are strict: a boolean or a string is not a number (``units: true`` and ``units: "20"``
are refused, not read as 1 and 20), a whole-number field takes integers only (``seed: true``,
``subjects_per_arm: 2.0`` refused), and NaN and infinity are refused everywhere. Each alias is
defined once here and reused; the ranges come from ``data/plan_limits.yaml``
(:mod:`neuromod.reference.limits`).

:func:`format_validation_error` turns pydantic's errors into the project's one-line form,
``field.path: problem; allowed: range``, with the offending value shortened.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args, get_origin

from pydantic import AllowInfNan, BaseModel, Field, Strict, TypeAdapter, ValidationError

from neuromod.reference.limits import load_limits

LIMITS = load_limits()

#: Any finite real number (int or float; not bool, not str, not NaN/inf).
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
#: A whole number (int only; not bool, not float, not str).
WholeNumber = Annotated[int, Strict()]
#: Text (str only; a number is not a name).
Text = Annotated[str, Strict()]

#: Product units (of the plan's product); the range (> 0, per point, per session) depends on the
#: product and is checked, with the product-specific numbers, in :mod:`neuromod.schemas.plan`.
Units = FiniteFloat
#: A dose to convert between products: any finite number of units >= 0.
AnyUnits = Annotated[FiniteFloat, Field(ge=0)]
#: A day after the first treatment, 0 - max_treatment_day.
Day = Annotated[FiniteFloat, Field(ge=0, le=LIMITS.plan.max_treatment_day)]
#: Days simulated (a horizon), 1 - simulation.max_days.
HorizonDays = Annotated[WholeNumber, Field(ge=1, le=LIMITS.simulation.max_days)]
#: A follow-up visit day of a trial, 1 - trial.max_follow_up_day.
VisitDay = Annotated[WholeNumber, Field(ge=1, le=LIMITS.trial.max_follow_up_day)]
#: Years of a long-term projection, 1 - projection.max_years.
ProjectionYears = Annotated[WholeNumber, Field(ge=1, le=LIMITS.projection.max_years)]
#: Local Dask worker processes, 1 - trial.max_local_workers.
LocalWorkers = Annotated[WholeNumber, Field(ge=1, le=LIMITS.trial.max_local_workers)]
#: Parameter sets drawn for a trial's intervals (trial --parameter-draws), 0 (none) - trial.max_parameter_draws.
ParameterDraws = Annotated[WholeNumber, Field(ge=0, le=LIMITS.trial.max_parameter_draws)]
#: Subjects per arm of each parameter draw (trial --draw-subjects), 1 - trial.max_subjects_per_arm.
DrawSubjects = Annotated[WholeNumber, Field(ge=1, le=LIMITS.trial.max_subjects_per_arm)]
#: An FWS grade, 0 (none) - 3 (severe).
Grade = Annotated[FiniteFloat, Field(ge=0, le=3)]
#: A fraction, 0 - 1.
Fraction = Annotated[FiniteFloat, Field(ge=0, le=1)]
#: Age in years, 18 - 90 (the trials' adult range).
AgeYears = Annotated[FiniteFloat, Field(ge=18, le=90)]


class InputError(ValueError):
    """Invalid input (a document or an option); the message is one line per problem, each naming
    the field and the allowed range."""


#: pydantic error types -> the project's wording.
_MESSAGES = {
    "float_type": "must be a number (booleans and strings are not numbers)",
    "int_type": "must be a whole number (booleans, decimals and strings are not)",
    "string_type": "must be text",
    "finite_number": "must be a finite number (not NaN or infinity)",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "extra_forbidden": "unknown field",
    "missing": "required field missing",
    "too_long": "has too many entries",
    "too_short": "has too few entries",
}


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_\-]{1,60}")


def field_path(*parts: Any) -> str:
    """A dotted field path for messages; a key that is not a plain name is quoted (so a key with
    a newline or 10,000 characters cannot break the one-line message)."""
    shown = []
    for part in parts:
        text = str(part)
        shown.append(text if isinstance(part, int) or _PLAIN_NAME.fullmatch(text) else _short(text, 40))
    return ".".join(shown)


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 5:
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(annotation: Any) -> list[Any]:
    """The types inside ``Annotated``/``Optional``/containers that may hold nested models."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is None:
        return [annotation]
    found = []
    for arg in get_args(annotation):
        found += _unwrap(arg)
    return found


def field_description(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The description (which states the allowed range) of the field at ``loc`` in ``model``,
    or of the nearest enclosing field."""
    description = None
    current = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            continue
        info = current.model_fields[part]
        description = info.description or description
        nested = [t for t in _unwrap(info.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = nested[0] if nested else None
    return description


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose field the last part of ``loc`` names (for "unknown field" errors)."""
    current = model
    for part in loc[:-1]:
        if current is None:
            return None
        if isinstance(part, str) and part in current.model_fields:
            nested = [t for t in _unwrap(current.model_fields[part].annotation)
                      if isinstance(t, type) and issubclass(t, BaseModel)]
            current = nested[0] if nested else None
    return current


def format_validation_error(error: ValidationError, model: type[BaseModel] | None = None,
                            prefix: str = "") -> str:
    """One line per problem: ``field.path: problem, got value; allowed: range`` (pydantic's
    errors without its prefixes; the range is the field's description when known)."""
    messages = []
    for item in error.errors():
        loc = tuple(item["loc"])
        location = prefix + field_path(*loc)
        kind = item["type"]
        if kind == "value_error":
            message = str(item["msg"]).removeprefix("Value error, ")
        else:
            message = _MESSAGES.get(kind) or str(item["msg"]).replace("Input should", "must")
            if kind == "extra_forbidden":
                owner = _model_at(model, loc)
                if owner is not None:
                    message += f"; allowed: {', '.join(owner.model_fields)}"
            elif kind != "missing" and "input" in item and not isinstance(item["input"], (dict, BaseModel)):
                message += f", got {_short(item['input'])}"
            described = field_description(model, loc)
            if described and kind not in ("extra_forbidden", "missing"):
                message += f"; allowed: {described}"
        messages.append(f"{location}: {message}" if location else message)
    # a plan with many bad entries is reported in full, but never in unbounded length
    if len(messages) > 20:
        messages = messages[:20] + [f"... and {len(messages) - 20} more problems"]
    return "; ".join(messages)


def check_value(kind: Any, value: Any, field: str, allowed: str) -> Any:
    """Validate one value (e.g. a command-line option) against a type of this module; raise
    :class:`InputError` ``field: problem, got value; allowed: range``."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as error:
        item = error.errors()[0]
        message = _MESSAGES.get(item["type"]) or str(item["msg"]).replace("Input should", "must").removeprefix(
            "Value error, ")
        raise InputError(f"{field}: {message}, got {_short(value)}; allowed: {allowed}") from None

"""Property-based: random and mutated plan, trial and patient documents (and files) either
validate — and a valid plan simulates a short horizon quickly — or are refused with a
PlanError/TrialError whose one-line message starts with the field at fault. Never another
exception, never a silent coercion (a boolean, string, NaN or infinity where a number belongs
is always refused, naming its path), always within a time bound (hypothesis ``deadline``).

Sizes are kept small (``max_examples``) so the file runs in well under 30 s."""

from __future__ import annotations

import copy
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuromod.model.simulate import simulate
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.products import load_products
from neuromod.schemas.plan import Plan, PlanError, load_plan, parse_plan
from neuromod.schemas.trial import TrialError, TrialSpec, load_trial, parse_trial

FACE = load_face_map()
PRODUCTS = sorted(load_products())
AREAS = FACE.areas_with_sites
SITES = sorted(FACE.sites)

#: hypothesis settings: no example database (nothing written into the repository), a time bound
#: per example that a slow shared machine still meets, and no health check on slow generation.
FAST = settings(max_examples=80, deadline=timedelta(seconds=5), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: values that are NOT numbers (or not finite): each must be refused wherever a number belongs.
NOT_NUMBERS = [True, False, "20", "abc", "", float("nan"), float("inf"), -float("inf"), [1], {"a": 1}, []]
#: other replacements: may be valid or not, but never crash.
ODD_VALUES = [None, 0, -1, 1e-300, 1e300, 10**20, 2.5, 3650, 90, 1, "glabella", "botox", [0, 90], {}]


# -- documents ------------------------------------------------------------------------------------
@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    if draw(st.booleans()):
        patient["age"] = draw(st.integers(18, 90))
    if draw(st.booleans()):
        patient["sex"] = draw(st.sampled_from(["female", "male"]))
    if draw(st.booleans()):
        contraction = draw(st.floats(0, 3))
        patient["baseline"] = {draw(st.sampled_from(AREAS)): {"rest": draw(st.floats(0, contraction)),
                                                               "contraction": contraction}}
    return patient


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid plans: a product, some areas and/or injections, maybe a schedule."""
    product = draw(st.sampled_from(PRODUCTS))
    plan: dict[str, Any] = {"product": product}
    toxin = product != "placebo"
    if draw(st.booleans()) or True:
        chosen = draw(st.lists(st.sampled_from(AREAS), min_size=1, max_size=2, unique=True))
        plan["areas"] = {a: draw(st.integers(1 if toxin else 0, 30)) for a in chosen}
    if draw(st.booleans()):
        plan["injections"] = [
            {"site": draw(st.sampled_from(SITES)), "units": draw(st.floats(0.5, 10))}
            if draw(st.booleans())
            else {"x_mm": draw(st.floats(-40, 40)), "y_mm": draw(st.floats(-10, 50)),
                  "volume_ml": draw(st.floats(0.01, 0.1))}
            for _ in range(draw(st.integers(1, 3)))
        ]
    schedule = draw(st.sampled_from(["none", "days", "every"]))
    if schedule == "days":
        plan["treatment_days"] = [0, draw(st.integers(90, 400))]
    elif schedule == "every":
        plan["every_days"] = draw(st.integers(90, 400))
        plan["until_day"] = draw(st.integers(0, 800))
    if draw(st.booleans()):
        plan["patient"] = draw(patients())
    return plan


def arms(draw: st.DrawFn, index: int) -> dict[str, Any]:
    return {"name": f"arm{index}", "product": draw(st.sampled_from(PRODUCTS[:2])),
            "areas": {"glabella": draw(st.integers(10, 30))}}


@st.composite
def trials(draw: st.DrawFn) -> dict[str, Any]:
    days = sorted(set(draw(st.lists(st.integers(1, 400), min_size=1, max_size=5))))
    return {"seed": draw(st.integers(0, 1000)), "subjects_per_arm": draw(st.integers(1, 5000)),
            "arms": [arms(draw, i) for i in range(draw(st.integers(1, 3)))], "follow_up_days": days,
            "population": {"sex": draw(st.sampled_from(["female", "male", "mixed"])),
                           "age": [18, draw(st.integers(18, 90))]}}


def leaves(document: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) leaf of a nested document, lists and mappings included as nodes."""
    found = [(path, document)] if path else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += leaves(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += leaves(value, (*path, index))
    return found


def replaced(document: Any, path: tuple, value: Any) -> Any:
    result = copy.deepcopy(document)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return result


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy) -> tuple[dict[str, Any], tuple, Any, Any]:
    """A valid-looking document with one leaf replaced (or one unknown field added)."""
    document = draw(base)
    spots = leaves(document)
    path, original = draw(st.sampled_from(spots))
    value = draw(st.sampled_from(NOT_NUMBERS + ODD_VALUES) | st.floats(allow_nan=True, allow_infinity=True)
                 | st.integers(-(10**12), 10**12))
    return replaced(document, path, value), path, original, value


def starts_with_a_field(message: str, fields: set[str]) -> bool:
    """The message names a known field first, or names the unknown field it refuses."""
    head = message.split(":", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    return head in fields or ": unknown field" in message


PLAN_FIELDS = set(Plan.model_fields) | {"injections/areas", "units", "plan"}
TRIAL_FIELDS = set(TrialSpec.model_fields) | {"trial"}


def check_refusal(error: Exception, fields: set[str]) -> None:
    message = str(error)
    assert "\n" not in message and len(message) < 5000, message
    assert starts_with_a_field(message, fields), message


# -- properties -----------------------------------------------------------------------------------
@FAST
@given(mutated(plans()))
def test_mutated_plans_validate_or_name_the_field(case):
    document, path, original, value = case
    try:
        plan = parse_plan(document)
    except PlanError as error:
        check_refusal(error, PLAN_FIELDS)
        if is_number(original) and not is_number(value) and value is not None:
            assert dotted(path) in str(error) or path[0] in str(error), (path, value, str(error))
        return
    # accepted: a number was never replaced by a non-number (no silent coercion) ...
    assert not (is_number(original) and not is_number(value) and value is not None), (path, value)
    # ... and every number in the document survives unchanged in the validated plan
    if path[0] in ("areas", "injections", "vial_units", "saline_ml") and is_number(value):
        dumped = plan.model_dump()
        node = dumped
        for part in path:
            node = node[part]
        assert node == value and not isinstance(node, bool)


@FAST
@given(mutated(st.builds(lambda p: {"product": "botox", "areas": {"glabella": 20}, "patient": p},
                         patients().filter(bool))))
def test_mutated_patients_validate_or_name_the_field(case):
    document, path, original, value = case
    try:
        parse_plan(document)
    except PlanError as error:
        check_refusal(error, PLAN_FIELDS)
        if is_number(original) and not is_number(value) and value is not None:
            assert dotted(path) in str(error), (path, value, str(error))
        return
    assert not (is_number(original) and not is_number(value) and value is not None), (path, value)


@FAST
@given(mutated(trials()))
def test_mutated_trials_validate_or_name_the_field(case):
    document, path, original, value = case
    try:
        spec = parse_trial(document)
    except TrialError as error:
        check_refusal(error, TRIAL_FIELDS)
        if is_number(original) and not is_number(value) and value is not None:
            assert dotted(path) in str(error) or f"arms.{path[1]}" in str(error), (path, value, str(error))
        return
    assert not (is_number(original) and not is_number(value) and value is not None), (path, value)
    assert isinstance(spec.seed, int) and isinstance(spec.subjects_per_arm, int)
    assert all(type(d) is int for d in spec.follow_up_days)


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["product", "areas", "injections", "units", "arms", "seed", "glabella", "x"]) | st.text(max_size=5),
        children, max_size=4),
    max_leaves=20,
)


@settings(FAST, max_examples=50)
@given(JSON_LIKE)
def test_random_documents_are_refused_cleanly(document):
    for parse, error_type, fields in ((parse_plan, PlanError, PLAN_FIELDS), (parse_trial, TrialError, TRIAL_FIELDS)):
        try:
            parse(document)
        except error_type as error:
            check_refusal(error, fields)


@settings(FAST, max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.sampled_from(["product: botox\nareas: {glabella: 20}\n", "arms: [{name: a, product: botox, areas: {glabella: 20}}]\n",
                     "{\"product\": \"botox\", \"areas\": {\"glabella\": 20}}"]).flatmap(
        lambda text: st.integers(0, len(text)).flatmap(
            lambda cut: st.sampled_from(["", ":", "[", "\t", "&a", "*a", "\xff", "{", "\n  x: 1", ".nan"]).map(
                lambda junk: (text[:cut] + junk + text[cut:]).encode("utf-8", "surrogateescape")))),
), suffix=st.sampled_from([".yaml", ".json"]))
def test_random_files_are_read_or_refused_with_the_file_named(tmp_path, content, suffix):
    path = tmp_path / f"doc{suffix}"
    path.write_bytes(content)
    for load, error_type in ((load_plan, PlanError), (load_trial, TrialError)):
        try:
            load(path)
        except error_type as error:
            message = str(error)
            assert "\n" not in message
            assert str(path) in message or starts_with_a_field(message, PLAN_FIELDS | TRIAL_FIELDS), message


@pytest.fixture(scope="module")
def warm():
    """Compile the kinetics once, so the time bound measures simulation, not compilation."""
    simulate(parse_plan({"product": "botox", "areas": {"glabella": 20}}), days=14)


@settings(max_examples=8, deadline=timedelta(seconds=10), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(plans())
def test_valid_plans_simulate_a_short_horizon_quickly(warm, document):
    try:
        plan = parse_plan(document)
    except PlanError as error:
        check_refusal(error, PLAN_FIELDS)
        return
    result = simulate(plan, days=14)
    for course in result.courses.values():
        assert len(course.fws_contraction) == 15
        assert all(0 <= g <= 3 for g in course.fws_contraction)

"""Every route with a body, fed wrong types, NaN, huge values and unknown fields (generated
from the OpenAPI document): 422 with the field named, and nothing written."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from neuromod.clinic.db import Base, make_engine, make_sessions

#: a value of the wrong JSON type for a property: an object, or a list where objects are accepted
#: (pydantic's lax mode turns numbers into datetimes and "1.5" into a number, so neither is used)
WRONG_VALUE, WRONG_FOR_OBJECTS = {"wrong": "type"}, ["wrong", "type"]


def resolve(schema, components):
    if "$ref" in schema:
        return resolve(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    return schema


def kinds(schema, components):
    """The JSON types a property accepts (through anyOf/allOf), besides null."""
    schema = resolve(schema, components)
    if "anyOf" in schema or "allOf" in schema:
        return {k for option in schema.get("anyOf", []) + schema.get("allOf", []) for k in kinds(option, components)}
    if "enum" in schema and "type" not in schema:
        return {"string"}
    return {schema["type"]} - {"null"} if "type" in schema else set()


def bodies(client):
    """(method, url, property, kinds, is_bounded_number) for every property of every request body."""
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            if not body or "application/json" not in body["content"]:
                continue  # no body, or a form upload (its own tests)
            schema = resolve(body["content"]["application/json"]["schema"], components)
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            for name, prop in schema.get("properties", {}).items():
                resolved = resolve(prop, components)
                options = [resolve(o, components) for o in resolved.get("anyOf", [resolved])]
                bounded = any("maximum" in o or "exclusiveMaximum" in o for o in options)
                yield method.upper(), url, name, kinds(prop, components), bounded


def counts(url):
    engine = make_engine(url)
    with make_sessions(engine)() as db:
        result = {name: db.execute(select(func.count()).select_from(table)).scalar_one()
                  for name, table in Base.metadata.tables.items() if name not in ("auth_sessions",)}
    engine.dispose()
    return result


def expect_422_naming(response, field):
    assert response.status_code == 422, (response.request.url, field, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and field in detail, (response.request.url, field, detail)


def test_bad_bodies_are_refused_naming_the_field(clinic):
    headers = {**clinic.as_role("admin"), "Content-Type": "application/json"}
    before = counts(clinic.settings.database_url)
    cases = 0
    for method, url, name, accepted, bounded in bodies(clinic.client):
        send = lambda raw: clinic.client.request(method, url, content=raw, headers=headers)  # noqa: E731
        # unknown field
        expect_422_naming(send(json.dumps({"surely_not_a_field": 1})), "surely_not_a_field")
        # wrong type (one not accepted by the property)
        wrong = WRONG_FOR_OBJECTS if "object" in accepted else WRONG_VALUE
        expect_422_naming(send(json.dumps({name: wrong})), name)
        cases += 2
        if accepted & {"number", "integer"}:
            expect_422_naming(send(f'{{"{name}": NaN}}'), name)
            expect_422_naming(send(f'{{"{name}": Infinity}}'), name)
            cases += 2
            if bounded:
                expect_422_naming(send(f'{{"{name}": 1e308}}'), name)
                cases += 1
        if "string" in accepted:
            expect_422_naming(send(json.dumps({name: "x" * 100_000})), name)
            cases += 1
    assert cases > 150
    assert counts(clinic.settings.database_url) == before


@pytest.mark.parametrize("path", ["/api/patients/99999999999/consents", "/api/lots/-1", "/api/plans/0"])
def test_out_of_range_ids_are_422(clinic, path):
    response = clinic.client.get(path, headers=clinic.as_role("admin"))
    expect_422_naming(response, path.split("/")[2].rstrip("s") + "_id")


def test_nested_plan_errors_name_the_plan_field(clinic):
    headers = clinic.as_role("injector")
    response = clinic.client.post("/api/predict", content='{"product": "botox", "areas": {"glabella": NaN}}',
                                  headers={**headers, "Content-Type": "application/json"})
    expect_422_naming(response, "areas.glabella")
    response = clinic.client.post("/api/predict", json={"product": "botox", "areas": {"glabella": 1e300}},
                                  headers=headers)
    expect_422_naming(response, "areas.glabella: units must be > 0 and <= 125")
    response = clinic.client.post("/api/predict", json={"product": "botox", "areas": {"glabella": 20}},
                                  params={"days": 10**9}, headers=headers)
    expect_422_naming(response, "days")


def test_oversized_body_is_413(clinic):
    response = clinic.client.post("/api/predict", content=b"[" + b"1," * 600_000 + b"1]",
                                  headers={**clinic.as_role("injector"), "Content-Type": "application/json"})
    assert response.status_code == 413 and "body" in response.json()["detail"]


def test_null_may_clear_contact_details_only(clinic):
    headers = clinic.as_role("front_desk")
    patient = clinic.client.post("/api/patients", headers=headers, json={
        "given_name": "N", "family_name": "Null", "birth_date": "1980-01-01", "sex": "female", "phone": "1"}).json()
    before = counts(clinic.settings.database_url)
    for field in ("given_name", "birth_date", "sex"):
        expect_422_naming(clinic.client.patch(f"/api/patients/{patient['id']}", json={field: None}, headers=headers),
                          f"{field}: may not be null")
    assert counts(clinic.settings.database_url) == before
    cleared = clinic.client.patch(f"/api/patients/{patient['id']}", json={"phone": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["phone"] is None
    expect_422_naming(clinic.client.patch(f"/api/accounts/{clinic.staff['injector']}", json={"password": None},
                                          headers=clinic.as_role("admin")), "password: may not be null")

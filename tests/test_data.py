"""Every number carries a source; the published data travel with the package."""

import csv
import io
from importlib import resources

import pytest
import yaml

from neuromod.reference.parameters import parse_parameters


def data_text(*parts):
    return resources.files("neuromod").joinpath("data", *parts).read_text("utf-8")


def entries(node, where=""):
    if isinstance(node, dict) and "value" in node:
        yield where, node
    elif isinstance(node, dict):
        for key, sub in node.items():
            yield from entries(sub, f"{where}.{key}" if where else key)


def test_every_parameter_has_a_unit_and_a_source():
    document = yaml.safe_load(data_text("parameters.yaml"))
    found = list(entries({k: v for k, v in document.items() if k != "version"}))
    assert len(found) > 30
    for where, entry in found:
        assert str(entry.get("unit", "")).strip(), where
        source = str(entry.get("source", ""))
        assert len(source) > 10, where


def test_a_parameter_without_a_source_is_refused():
    document = yaml.safe_load(data_text("parameters.yaml"))
    document["junction"]["hill_coefficient"]["source"] = ""
    with pytest.raises(ValueError, match="junction.hill_coefficient has no source"):
        parse_parameters(document)


@pytest.mark.parametrize("name", ["muscles.csv", "sites.csv", "products.csv"])
def test_every_row_of_the_model_data_names_a_source(name):
    rows = list(csv.DictReader(io.StringIO(data_text(name))))
    assert rows
    source_columns = [c for c in rows[0] if c.endswith("source")]
    for row in rows:
        assert all(len(row[c].strip()) > 5 for c in source_columns), row


@pytest.mark.parametrize("name", ["calibration_trials.csv", "mechanism.csv", "safety.csv", "anatomy.csv", "products.csv"])
def test_published_data_is_shipped_with_sources(name):
    rows = list(csv.DictReader(io.StringIO(data_text("published", name))))
    assert rows and all(row["source"].strip() for row in rows)


def test_every_input_limit_has_a_unit_and_a_source_and_the_schemas_use_it():
    """data/plan_limits.yaml: each limit has a unit and a source (or 'assumption' and why), and
    the plan schema enforces the number written there (not a copy in code)."""
    from neuromod.reference.limits import limit_sources, load_limits
    from neuromod.schemas.plan import PlanError, parse_plan

    document = yaml.safe_load(data_text("plan_limits.yaml"))
    found = list(entries({k: v for k, v in document.items() if k != "version"}))
    assert len(found) == len(limit_sources()) >= 20
    for where, entry in found:
        assert str(entry.get("unit", "")).strip() and len(str(entry.get("source", ""))) > 10, where
    limits = load_limits()
    plan = {"product": "botox", "areas": {"glabella": 20}}
    parse_plan({**plan, "saline_ml": limits.plan.min_saline_ml})
    with pytest.raises(PlanError, match=f"saline_ml: must be greater than or equal to {limits.plan.min_saline_ml:g}"):
        parse_plan({**plan, "saline_ml": limits.plan.min_saline_ml * 0.99})
    at_limit = [{"site": "glabella_procerus", "units": 1.0}] * limits.plan.max_injections
    parse_plan({"product": "botox", "injections": [{"site": s, "units": 0.1} for s in
                                                    ["glabella_procerus"] * limits.plan.max_injections]})
    with pytest.raises(PlanError, match=f"at most {limits.plan.max_injections} injections"):
        parse_plan({"product": "botox", "injections": [*at_limit, at_limit[0]]})


def test_a_corrupt_data_file_names_the_file_and_line():
    """The strict reader refuses a CSV row with an unquoted comma (two shipped files had one)."""
    from neuromod.reference import files

    bad = "a,b,source\n1,2,fine\n3,4,one, two\n"
    with pytest.raises(files.DocumentError, match="data file: x.csv: line 3 has 4 fields, the header 3"):
        files.read_csv_text(bad, "x.csv")

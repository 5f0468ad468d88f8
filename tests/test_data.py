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

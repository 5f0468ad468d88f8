"""Reading the packaged data files (``neuromod/data``). Only the input stages use this."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

import yaml


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of a packaged CSV file as dictionaries of strings."""
    text = resources.files("neuromod").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def read_yaml(name: str) -> Any:
    """A packaged YAML file, parsed."""
    return yaml.safe_load(resources.files("neuromod").joinpath("data", name).read_text("utf-8"))

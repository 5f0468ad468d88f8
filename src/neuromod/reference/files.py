"""Reading the packaged data files (``neuromod/data``). Only the input stages use this."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

import yaml

#: libyaml's parser where PyYAML was built with it (same documents, ~10x faster: the packaged
#: parameters and face map are read on every start of the command line).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of a packaged CSV file as dictionaries of strings."""
    text = resources.files("neuromod").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def read_yaml_text(text: str) -> Any:
    """A YAML document (safe subset) parsed with the fastest safe loader available."""
    return yaml.load(text, Loader=_YAML_LOADER)


def read_yaml(name: str) -> Any:
    """A packaged YAML file (``neuromod/data/<name>``); None if there is no such file."""
    resource = resources.files("neuromod").joinpath("data", name)
    return read_yaml_text(resource.read_text("utf-8")) if resource.is_file() else None

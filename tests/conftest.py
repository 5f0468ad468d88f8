"""Shared fixtures: the packaged face map, parameters and a plan factory."""

import pytest

from neuromod.reference.anatomy import load_face_map
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.plan import parse_plan


@pytest.fixture(scope="session")
def face_map():
    return load_face_map()


@pytest.fixture(scope="session")
def params():
    return default_parameters()


@pytest.fixture
def make_plan():
    def _make(**document):
        return parse_plan(document)

    return _make

"""neuromod — botulinum toxin type A in facial muscles, from injection plan to wrinkle score.

Predictions are model estimates for planning and education, not medical advice.

The package is layered along the flow of data; each layer imports only those below it
(checked by the import-linter contract in ``pyproject.toml``):

``reference`` (products, face map, parameters, data files) -> ``schemas`` (pydantic
documents: patient, plan, trial) -> ``model`` (spread -> junction -> muscle -> skin ->
scores, compiled kinetics, :func:`simulate`) -> ``trials`` (populations, virtual trials,
calibration, planner, projections) -> ``export`` / ``report`` -> ``cli``.

The names below are imported lazily, so ``import neuromod.reference`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ModelParameters": "neuromod.reference.parameters",
    "default_parameters": "neuromod.reference.parameters",
    "load_parameters": "neuromod.reference.parameters",
    "convert": "neuromod.reference.products",
    "get_product": "neuromod.reference.products",
    "load_products": "neuromod.reference.products",
    "Plan": "neuromod.schemas.plan",
    "PlanError": "neuromod.schemas.plan",
    "load_plan": "neuromod.schemas.plan",
    "parse_plan": "neuromod.schemas.plan",
    "DISCLAIMER": "neuromod.model.simulate",
    "SimulationResult": "neuromod.model.simulate",
    "simulate": "neuromod.model.simulate",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'neuromod' has no attribute {name!r}")

"""neuromod — botulinum toxin type A in facial muscles, from injection plan to wrinkle score.

Predictions are model estimates for planning and education, not medical advice.

The flow, one module per stage: :mod:`products`, :mod:`anatomy`, :mod:`plan` (inputs) ->
:mod:`spread` -> :mod:`junction` -> :mod:`muscle` -> :mod:`skin` -> :mod:`scores`
(the model, pure functions over arrays whose leading axis is the patient), with
:mod:`patient` describing who is treated and :mod:`simulate` composing the stages.
"""

from neuromod.parameters import ModelParameters, default_parameters, load_parameters
from neuromod.plan import Plan, PlanError, load_plan, parse_plan
from neuromod.products import convert, get_product, load_products
from neuromod.simulate import DISCLAIMER, SimulationResult, simulate

__all__ = [
    "DISCLAIMER",
    "ModelParameters",
    "Plan",
    "PlanError",
    "SimulationResult",
    "convert",
    "default_parameters",
    "get_product",
    "load_parameters",
    "load_plan",
    "load_products",
    "parse_plan",
    "simulate",
]
__version__ = "0.1.0"

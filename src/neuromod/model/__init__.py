"""Layer 3 — the pure model: spread -> junction -> muscle -> skin -> scores, the compiled
kinetics, and :mod:`~neuromod.model.simulate` composing them for one plan. Arrays have the
patient as their leading axis. Imports only the schemas and reference layers."""

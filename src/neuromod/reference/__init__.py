"""Layer 1 — reference data: products, the face map, model parameters and the readers of the
versioned data files in ``neuromod/data``. Imports nothing else of neuromod."""

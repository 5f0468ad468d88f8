"""Layer 2 — schemas: the pydantic documents (patient, plan, trial) validated once at the edge
and shared by the CLI, the engine and the clinic API. Imports only :mod:`neuromod.reference`."""

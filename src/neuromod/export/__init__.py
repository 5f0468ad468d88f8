"""Layer 5 — exports to standard formats (SBML)."""

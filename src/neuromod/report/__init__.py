"""Layer 5 — reports: tables, figures and the example and calibration reports."""

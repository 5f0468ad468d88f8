"""Layer 4 — many patients: populations and raters, virtual trials and their endpoints,
calibration, dose planning and long-term projections. Built on the model."""

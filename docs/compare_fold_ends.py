"""Which rows and priors favour which of two fold ends, each evaluated on every calibration row
(docs/calibration.md, stop 33: the kept fit's basin against stop 32's). Run from the repo root:
`.venv/bin/python docs/compare_fold_ends.py` (1000 subjects per arm, the fit's seed; ~1 minute)."""
import json
import math
from pathlib import Path

from neuromod.reference.parameters import apply_overrides, parameter_value, prior_parameters
from neuromod.trials import calibrate

FOLDS = Path("calibration-starts/stop33-folds")
WIDE, NARROW = "joseph-2021", "botox-forehead-study-1"  # the kept end, and stop 32's kept end

rows = calibrate.load_rows()
prior = prior_parameters()
ends = {study: json.loads((FOLDS / f"{study}.json").read_text())["values"] for study in (WIDE, NARROW)}


def prior_terms(values: dict[str, float]) -> dict[str, float]:
    """Each fitted parameter's squared prior residual (log distance from parameters.yaml in prior SDs)."""
    return {name: (math.log(value / parameter_value(prior, name)) / calibrate.PRIOR_LOG_SD) ** 2
            for name, value in values.items()}


results = {study: calibrate.evaluate(apply_overrides(prior, values), rows, calibrate.FIT_SUBJECTS_PER_ARM)
           for study, values in ends.items()}
for study, result in results.items():
    print(f"end of fold {study}: rows {calibrate.objective(result):.1f}, priors {sum(prior_terms(ends[study]).values()):.2f}, "
          f"{sum(r.passed for r in result)} of {len(result)} rows reproduced")
wide_prior, narrow_prior = prior_terms(ends[WIDE]), prior_terms(ends[NARROW])
print("priors that differ by more than 0.3 (wide / narrow):")
for name in wide_prior:
    if abs(wide_prior[name] - narrow_prior[name]) > 0.3:
        print(f"  {name}: {wide_prior[name]:.2f} / {narrow_prior[name]:.2f}")
by_row = sorted(((w.residual ** 2 - n.residual ** 2, w, n) for w, n in zip(results[WIDE], results[NARROW])),
                key=lambda item: item[0])
print("rows by deviance difference (negative: the wide end fits better): row, arm, simulated wide / narrow, published")
for difference, w, n in by_row[:8] + by_row[-8:]:
    print(f"  {difference:+.2f} {w.row.id} {w.row.arm}: {w.simulated:.1f} / {n.simulated:.1f}, {w.row.value}")

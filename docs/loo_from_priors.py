"""Leave-one-trial-out folds refitted from the priors (the honest version), for a few trials."""
import sys, time
from neuromod.reference.parameters import default_parameters, prior_parameters
from neuromod.trials import calibrate as cal
rows = cal.load_rows()
prior, shipped = prior_parameters(), default_parameters()
for key in sys.argv[1:]:
    t = time.time()
    kept = [r for r in rows if r.trial_key != key]; held = [r for r in rows if r.trial_key == key]
    fold = cal.fit(prior, kept, 400, 2026, 150, names=list(cal.FITTED), log=lambda line: None)
    out = cal.evaluate(fold.params, held, 400, 2026)
    inside = cal.evaluate(shipped, held, 400, 2026)
    print(f"{key}: out of sample {sum(r.passed for r in out)} of {len(out)}, in sample {sum(r.passed for r in inside)} "
          f"of {len(inside)}; {fold.evaluations} evaluations, {time.time() - t:.0f} s; "
          + "; ".join(f"{o.row.id}/{o.row.arm} {o.simulated} vs {o.row.value}" for o in out), flush=True)

"""A personal prediction as a table (terminal) and a figure: the patient's own follow-up grades
over the predicted 5/25/75/95 % bands of the expected FWS grade, for the whole history.

Model estimates for planning and education, not medical advice (on the table and the figure).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromod.model.scores import expected_score  # noqa: E402
from neuromod.model.simulate import DISCLAIMER  # noqa: E402
from neuromod.report.plots import FOOTNOTE  # noqa: E402
from neuromod.trials.personal import BANDS, PersonalPrediction, weighted_quantiles  # noqa: E402

#: days after the last treatment shown in the terminal table.
TABLE_DAYS_AFTER = (0, 3, 14, 30, 60, 90, 120, 150, 180, 270, 365)


def personal_table(prediction: PersonalPrediction) -> str:
    """Median and 90 % band of the expected FWS grade per area at standard days after the last
    treatment; wear-off, re-treatment day, parameters and the method's diagnostic."""
    lines = []
    for area, p in prediction.areas.items():
        start = int(p.days[0])
        lines.append(f"{area}: expected FWS grade, median [5-95 %] (days from the first treatment)")
        lines.append(f"{'day':>6} {'at contraction':>22} {'at rest':>22}")
        for after in TABLE_DAYS_AFTER:
            k = after
            if k >= p.days.size:
                break
            c, r = p.fws_contraction, p.fws_rest
            lines.append(f"{start + after:>6} {c['median'][k]:>8.2f} [{c['p05'][k]:.2f}-{c['p95'][k]:.2f}]"
                         f"{'':>3} {r['median'][k]:>8.2f} [{r['p05'][k]:.2f}-{r['p95'][k]:.2f}]")
        w = p.wear_off_day
        lines.append(f"wear-off of the last treatment: day {_day(w['median'])} (90 %: {_day(w['p05'])} to {_day(w['p95'])})")
        lines.append("")
    lines.append(f"suggested re-treatment: {_day(prediction.retreat_day)}")
    lines.append("\nparameter                      prior median   posterior median [5-95 %]")
    for s in prediction.parameters:
        lines.append(f"{s.name:<30} {s.prior_median:>12.4g}   {s.posterior_median:>10.4g} "
                     f"[{s.posterior_p05:.4g}-{s.posterior_p95:.4g}]")
    d = prediction.diagnostic.to_json()
    lines.append(f"\nmethod: {d['method']}; {d['particles']} virtual twins, {d['observations']} observations, "
                 f"ESS {d['ess']:g} (prior importance sampling ESS {d['prior_ess']:g})")
    if prediction.next_dose is not None:
        nd = prediction.next_dose
        if nd.get("plan"):
            units = ", ".join(f"{a} {u:g} U" for a, u in nd["plan"]["areas"].items())
            lines.append(f"next session: {nd['plan']['product']} {units} (x{nd['scale_of_label_pattern']:g} the label "
                         f"pattern): {nd['explanation']}")
        else:
            lines.append(f"next session: no label-pattern dose meets the goal: {nd['explanation']}")
    lines += [f"note: {n}" for n in prediction.notes]
    return "\n".join(lines)


def _day(value: float | None) -> str:
    return "after the horizon" if value is None else f"{value:g}"


def plot_personal(prediction: PersonalPrediction, path: Path) -> Path:
    """One row per area: FWS at contraction (left) and at rest (right) against day, the bands
    of the expected grade over the whole history, the follow-up grades as rated, treatments."""
    params = prediction.params
    areas = list(prediction.areas)
    days = prediction.full_days
    fig, axes = plt.subplots(len(areas), 2, figsize=(11, 3.4 * len(areas) + 0.6), squeeze=False, sharex=True)
    quantiles = np.array([q for _, q in BANDS])
    for row, area in enumerate(areas):
        a = prediction.area_names.index(area)
        for col, (kind, depth) in enumerate((("contraction", prediction.contraction_mm),
                                             ("rest", prediction.rest_mm))):
            ax = axes[row, col]
            bands = weighted_quantiles(expected_score(depth[:, a], params.scores), prediction.weights, quantiles)
            ax.fill_between(days, bands[0], bands[4], color="tab:blue", alpha=0.18, label="5-95 %")
            ax.fill_between(days, bands[1], bands[3], color="tab:blue", alpha=0.35, label="25-75 %")
            ax.plot(days, bands[2], color="tab:blue", lw=1.5, label="median")
            for day in prediction.history.treatment_days:
                ax.axvline(day, color="0.3", ls="--", lw=0.8)
            key = "fws_contraction" if kind == "contraction" else "fws_rest"
            for rater, marker in (("investigator", "o"), ("self", "^")):
                seen = [(o.day, getattr(o, key)) for o in prediction.history.observations
                        if o.area == area and o.rater == rater and getattr(o, key) is not None]
                if seen:
                    x, y = zip(*seen)
                    ax.plot(x, y, marker, color="tab:red", ms=7, ls="none", label=f"rated ({rater})")
            if kind == "contraction":
                wear = prediction.areas[area].wear_off_day["median"]
                if wear is not None:
                    ax.axvline(wear, color="tab:orange", lw=1.2, label=f"wear-off, day {wear:g}")
            ax.set_ylim(-0.1, 3.1)
            ax.set_yticks([0, 1, 2, 3])
            ax.set_ylabel(f"{area}: FWS at {kind}")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7, loc="best", framealpha=0.6)
    for ax in axes[-1]:
        ax.set_xlabel("day (from the first treatment)")
    fig.suptitle("Personal prediction from the patient's own follow-ups")
    fig.text(0.5, 0.005, f"{FOOTNOTE}. {DISCLAIMER}", ha="center", fontsize=6.5, wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

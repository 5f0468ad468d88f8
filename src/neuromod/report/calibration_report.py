"""``docs/calibration.md``: every calibration row, published against simulated, pass or fail."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuromod.reference.parameters import ModelParameters, prior_parameters  # noqa: E402
from neuromod.report.plots import FOOTNOTE  # noqa: E402
from neuromod.trials.calibrate import (  # noqa: E402
    FITTED,
    CalibrationRow,
    RowResult,
    evaluate,
    objective,
)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def plot_results(results: list[RowResult], path: Path) -> Path:
    """Published (with tolerance) against simulated, one point per row."""
    percent = [r for r in results if not r.row.is_median]
    medians = [r for r in results if r.row.is_median]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [2, 1]})
    for a, group, unit in ((ax, percent, "% of subjects"), (bx, medians, "days")):
        for r in group:
            color = "tab:green" if r.passed else "tab:red"
            a.errorbar(r.row.value, r.simulated if r.simulated is not None else 0,
                       xerr=[[r.row.value - r.low], [r.high - r.row.value]], fmt="o", color=color, ms=4, alpha=0.8)
        lims = (0, 100) if unit.startswith("%") else (0, 250)
        a.plot(lims, lims, color="grey", lw=0.8)
        a.set_xlim(*lims)
        a.set_ylim(*lims)
        a.set_xlabel(f"published ({unit}; bar = tolerance)")
        a.set_ylabel(f"simulated ({unit})")
        a.grid(alpha=0.3)
    ax.set_title("calibration rows (green: reproduced)")
    bx.set_title("medians")
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_time_courses(params: ModelParameters, path: Path, subjects: int) -> Path:
    """Simulated time courses of the label glabella arms, with the published points on them."""
    from neuromod.trials.calibrate import load_rows, tolerance, trial_documents
    from neuromod.trials.trial import parse_trial, run_trial

    rows = load_rows()
    keys = ["botox-glabella20-mixed", "dysport-glabella50-mixed", "daxxify-glabella40-mixed", "botox-glabella20-female"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    documents = trial_documents(rows, subjects)
    for key in keys:
        if key not in documents:
            continue
        result = run_trial(parse_trial(documents[key]), params=params, progress=False)
        area = result["arms"]["active"]["areas"]["glabella"]
        for ax, endpoint in zip(axes, ("inv_none_mild", "inv_ge1_grade")):
            series = area[endpoint]
            line, = ax.plot([int(d) for d in series], list(series.values()), label=key)
            for row in rows:
                if row.trial_key == key and row.model_endpoint == endpoint and row.arm == "active" and row.day:
                    low, high = tolerance(row)
                    ax.errorbar(row.day, row.value, yerr=[[row.value - low], [high - row.value]], fmt="s",
                                color=line.get_color(), ms=6)
    for ax, endpoint in zip(axes, ("inv_none_mild", "inv_ge1_grade")):
        ax.set_title(f"{endpoint} (line: simulated, squares: published)", fontsize=9)
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("% of subjects")
    axes[0].legend(fontsize=7)
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


#: agreement of a simulated adverse-event rate with a published one: within this factor
#: either way (safety.csv gives no n for most rows, so no binomial interval; the published
#: rates for one product and dose differ by up to 4.5x between sources: Botox 20 U 1.2-5.4 %).
SAFETY_AGREEMENT_FACTOR = 2.0


def safety_rows(params: ModelParameters, subjects: int) -> list[str]:
    """Markdown rows: published adverse-event rates (data/published/safety.csv) against the
    model's, for the single-area glabella plans in that table (a dose range: both ends, each
    checked). Not fitted: a check, agreement within :data:`SAFETY_AGREEMENT_FACTOR`."""
    from neuromod.reference.files import read_csv
    from neuromod.trials.trial import parse_trial, run_trial

    lines = []
    cache: dict[tuple[str, float], dict] = {}
    for row in read_csv("published/safety.csv"):
        if row["event"] not in ("eyelid_ptosis", "brow_ptosis") or row["area"] != "glabella":
            continue
        published = float(row["rate_pct"])
        simulated = []
        for units in sorted({float(u) for u in row["dose_units"].split("-")}):
            key = (row["product"], units)
            if key not in cache:
                spec = {"name": "safety", "seed": 17, "subjects_per_arm": subjects, "follow_up_days": [30, 60],
                        "arms": [{"name": "a", "product": row["product"], "areas": {"glabella": units}}]}
                arm = run_trial(parse_trial(spec), params=params, progress=False)["arms"]["a"]
                cache[key] = arm["adverse_events_pct"]
            simulated.append(cache[key][row["event"]])
        agree = all(published / SAFETY_AGREEMENT_FACTOR <= v <= published * SAFETY_AGREEMENT_FACTOR for v in simulated)
        lines.append(f"| {row['product']} | glabella {row['dose_units']} U | {row['event']} | {row['rate_pct']} | "
                     f"{' / '.join(f'{v:.1f}' for v in simulated)} | {'pass' if agree else '**fail**'} | "
                     f"{row['source']} |")
    return lines


def write_calibration_report(params: ModelParameters, rows: list[CalibrationRow], docs: Path, subjects: int,
                             notes: Path | None = None) -> Path:
    """``calibration.md`` and its figures into ``docs``; ``notes`` (default
    ``docs/calibration_notes.md``), when it exists, is appended: why rows are missed."""
    docs.mkdir(parents=True, exist_ok=True)
    figures = docs / "figures"
    figures.mkdir(exist_ok=True)
    results = evaluate(params, rows, subjects)
    plot_results(results, figures / "calibration_rows.png")
    plot_time_courses(params, figures / "calibration_time_courses.png", subjects)
    prior = prior_parameters()
    passed = sum(r.passed for r in results)
    lines = [
        "# Calibration",
        "",
        "> Model estimates for planning and education, not medical advice.",
        "",
        "Generated by `neuromod calibrate --install` (fit + report) or `neuromod calibrate --report-only --install`",
        f"({subjects} virtual subjects per arm, seed 2026). Every row of",
        "`src/neuromod/data/published/calibration_trials.csv` (active and placebo arms) is simulated",
        "with one shared parameter set; only what each trial specified differs (product, units per",
        "area, areas, population, endpoint, day). How each trial's endpoint maps onto the model's is",
        "in `src/neuromod/data/calibration_endpoints.csv`.",
        "",
        "**Reproduced** means the simulated value lies in the published value's 95 % Wilson interval",
        "for `n_active`, within 8 percentage points where `n` is unknown, or within 15 % for medians",
        "in days. Objective: sum over rows of the squared error in units of that half-width",
        "(trust-region least squares on log parameters, common random numbers).",
        "",
        f"**{passed} of {len(results)} rows reproduced; objective {objective(results):.1f}.**",
        "",
        "## Fitted parameters",
        "",
        "| parameter | prior | fitted | bounds |",
        "|---|---|---|---|",
    ]
    for name, (low, high) in FITTED.items():
        stage, _, field = name.partition(".")
        lines.append(f"| `{name}` | {getattr(getattr(prior, stage), field):.4g} | "
                     f"{getattr(getattr(params, stage), field):.4g} | {low:g}-{high:g} |")
    lines += [
        "",
        "## Rows",
        "",
        "| row | arm | endpoint (model) | day | published | tolerance | simulated | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.row.id} | {r.row.arm} | {r.row.endpoint} ({r.row.model_endpoint}) | {r.row.day or ''} | "
            f"{r.row.value:g} | {r.low:.1f}-{r.high:.1f} | {_fmt(r.simulated)} | {'pass' if r.passed else '**fail**'} |"
        )
    lines += [
        "",
        "## Adverse events (a check, not fitted)",
        "",
        f"Eyelid and brow ptosis in virtual glabella arms ({max(subjects, 4000)} subjects) against",
        "`data/published/safety.csv` (a dose range: both ends). Eyelid ptosis: a levator block above its",
        "threshold, reached when an injection crosses the orbital septum (`septum_breach` in",
        "`data/adverse_events.yaml`: the chance falls with each point's distance from the orbit, not with",
        "its dose). Brow ptosis: a lower frontalis block in excess of its depressors' (`depressors`), its",
        "units varying by placement (`population.danger_dose_sd`). Agreement: within a factor of",
        f"{SAFETY_AGREEMENT_FACTOR:g} either way (no n in the table for a binomial interval).",
        "",
        "| product | plan | event | published % | simulated % | agreement | source |",
        "|---|---|---|---|---|---|---|",
        *safety_rows(params, max(subjects, 4000)),
    ]
    lines += ["", "![published against simulated](figures/calibration_rows.png)", "",
              "![time courses](figures/calibration_time_courses.png)", ""]
    failed = [r for r in results if not r.passed]
    if failed:
        lines += ["## Rows not reproduced", "", "Why each misses is discussed below.", ""]
        for r in failed:
            lines.append(f"- **{r.row.id}** ({r.row.arm}, {r.row.model_endpoint}): published {r.row.value:g}, "
                         f"simulated {_fmt(r.simulated)} (tolerance {r.low:.1f}-{r.high:.1f})")
        lines.append("")
    notes = notes or docs / "calibration_notes.md"
    if notes.exists():
        lines += [notes.read_text()]
    path = docs / "calibration.md"
    path.write_text("\n".join(lines) + "\n")
    return path

"""``docs/calibration.md``: every calibration row (efficacy and safety), published against
simulated, pass or fail, with its likelihood; the fitted parameters with their Laplace
intervals; leave-one-trial-out cross-validation; conflicts between trials."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import math  # noqa: E402

from neuromod.reference.parameters import (  # noqa: E402
    ModelParameters,
    ParameterUncertainty,
    parameter_uncertainty,
    parameter_value,
    prior_parameters,
)
from neuromod.report.plots import FOOTNOTE  # noqa: E402
from neuromod.trials.calibrate import (  # noqa: E402
    FITTED,
    HALF_WIDTH_SDS,
    HETEROGENEITY_DF,
    PRIOR_LOG_SD,
    RESIDUAL_CAP,
    SAFETY_AGREEMENT_FACTOR,
    SAFETY_SUBJECTS_FACTOR,
    CalibrationRow,
    FitResult,
    Fold,
    RowResult,
    conflicts,
    error_model,
    evaluate,
    log_likelihood,
    objective,
)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def plot_results(results: list[RowResult], path: Path) -> Path:
    """Published (with tolerance) against simulated, one point per row."""
    percent = [r for r in results if not r.row.is_median and not r.row.is_safety]
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


def _result(r: RowResult) -> str:
    return "pass" if r.passed else "**fail**"


def _laplace_interval(value: float, name: str, uncertainty: ParameterUncertainty | None) -> str:
    """The parameter's 95 % Laplace interval, ``exp(log value +- 1.96 SD)``; — when not fitted."""
    if uncertainty is None or name not in uncertainty.names:
        return "—"
    sd = uncertainty.log_sd[uncertainty.names.index(name)]
    return f"{value * math.exp(-1.959964 * sd):.4g}-{value * math.exp(1.959964 * sd):.4g} (log SD {sd:.2f})"


def parameter_lines(params: ModelParameters, uncertainty: ParameterUncertainty | None) -> list[str]:
    prior = prior_parameters()
    lines = ["| parameter | prior | fitted | Laplace 95 % interval | bounds |", "|---|---|---|---|---|"]
    for name, (low, high) in FITTED.items():
        value = parameter_value(params, name)
        lines.append(f"| `{name}` | {parameter_value(prior, name):.4g} | {value:.4g} | "
                     f"{_laplace_interval(value, name, uncertainty)} | {low:g}-{high:g} |")
    if uncertainty is not None:
        names = [n.split(".")[-1] for n in uncertainty.names]
        strong = sorted(((abs(c), a, b, c) for i, a in enumerate(names) for j, (b, c) in
                         enumerate(zip(names, uncertainty.correlation[i])) if j > i), reverse=True)[:5]
        if strong:
            lines += ["", "Strongest correlations of the log parameters (Laplace): " + "; ".join(
                f"`{a}`-`{b}` {c:+.2f}" for _, a, b, c in strong) + "."]
    return lines


def efficacy_lines(results: list[RowResult]) -> list[str]:
    lines = ["| row | arm | endpoint (model) | day | published | tolerance | simulated | result | likelihood | "
             "residual | log L |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.row.is_safety:
            continue
        lk = r.likelihood
        lines.append(
            f"| {r.row.id} | {r.row.arm} | {r.row.endpoint} ({r.row.model_endpoint}) | {r.row.day or ''} | "
            f"{r.row.value:g} | {r.low:.1f}-{r.high:.1f} | {_fmt(r.simulated)} | {_result(r)} | {error_model(r.row)} | "
            f"{lk.residual:+.2f} | {lk.log_likelihood:.2f} |")
    return lines


def safety_lines(results: list[RowResult]) -> list[str]:
    """Safety rows of the fit: published ptosis rate against the virtual arm's."""
    lines = ["| row | product | plan | event | published % | tolerance | simulated % | result | residual | log L | "
             "source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r.row.is_safety:
            continue
        lk = r.likelihood
        plan = ", ".join(f"{a} {u:g} U" for a, u in r.row.areas.items())
        lines.append(f"| {r.row.id} | {r.row.product} | {plan} | {r.row.model_endpoint} | {r.row.value:g} | "
                     f"{r.low:.2f}-{r.high:.2f} | {_fmt(r.simulated)} | {_result(r)} | {lk.residual:+.2f} | "
                     f"{lk.log_likelihood:.2f} | {r.row.source} |")
    return lines


def cross_validation_lines(folds: list[Fold] | None, subjects: int) -> list[str]:
    if not folds:
        return ["Not run with this report: `neuromod calibrate --cross-validate` (with `--install`, into this file)."]
    held = [r for fold in folds for r in fold.held_out]
    passed, inside = sum(r.passed for r in held), sum(r.passed for fold in folds for r in fold.in_sample)
    lines = [
        f"**{passed} of {len(held)} rows reproduced out of sample** (in sample, by the full fit: {inside} of "
        f"{len(held)}); {subjects} subjects per arm (the fit's).",
        "",
    ]
    from_priors = all(fold.from_priors for fold in folds)
    lines += [
        "Each trial (`study` in `data/calibration_studies.csv`: one published trial or pooled analysis, with",
        "all its arms, endpoints and safety rates) is left out in turn and the calibration's own descent",
        "(the same priors, fitted parameters, subjects and seed) is run on every other row.",
        ("Each fold starts at the priors, as the full fit does, so nothing the left-out trial taught the full "
         "fit reaches it: this is the honest measure of prediction."
         if from_priors and all(fold.start == "the priors" for fold in folds) else
         f"{sum(fold.start != 'the priors' for fold in folds)} of {len(folds)} folds start at the end of the same "
         "study's fold in an earlier cross-validation (`--fold-start FOLDER`"
         + ("" if all(fold.start != "the priors" for fold in folds) else "; the others at the priors") + "): that end "
         "is a descent from the priors on every row but the same trial's, under the earlier model, so nothing the "
         "left-out trial taught any fit reaches the fold, and this is still the honest measure of prediction; the "
         "start only shortens the descent after a small change of the model or the likelihood. Each fold's "
         "descent ends where the calibration's own stopping rule stops it "
         f"({sum(fold.evaluations for fold in folds)} evaluations in all)."
         if from_priors else
         "Each fold starts at the full fit, which saw the trial, with a fresh Jacobian of the kept rows "
         "(`--fold-start fit`): a fold that stops early stays at the full fit, so these "
         "figures are close to in-sample; `--fold-start priors` gives the honest measure."),
        "The left-out rows are then simulated at the fold's parameters with the same seed (common random",
        "numbers), so in- and out-of-sample values differ by the parameters alone. Objective: the kept rows'",
        "deviance plus the priors', at the full fit and at the fold's end.",
        "",
        "| fold | evaluations | objective: full fit → fold fit | held-out rows reproduced | stopped |",
        "|---|---|---|---|---|",
    ]
    for fold in folds:
        lines.append(f"| {fold.study} | {fold.evaluations} | {fold.objective_full:.1f} → {fold.objective_fold:.1f} | "
                     f"{fold.passed} of {len(fold.held_out)} | {fold.stopped} |")
    lines += ["", "| fold | row | arm | endpoint | day | published | tolerance | in sample | out of sample | result |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for fold in folds:
        for r, inside in zip(fold.held_out, fold.in_sample):
            lines.append(f"| {fold.study} | {r.row.id} | {r.row.arm} | {r.row.model_endpoint} | {r.row.day or ''} | "
                         f"{r.row.value:g} | {r.low:.1f}-{r.high:.1f} | {_fmt(inside.simulated)} | {_fmt(r.simulated)} | "
                         f"{_result(r)} |")
    return lines


def _pull_cells(c) -> str:
    """The parameter and both pulls; a dash where no fitted parameter moves these rows."""
    if c.first_pull == 0 and c.second_pull == 0:
        return "— (no fitted parameter moves them) | —"
    return f"`{c.parameter.split('.')[-1]}` | {c.first_pull:+.2f} / {c.second_pull:+.2f}"


def conflict_lines(fitted: FitResult | None, rows: list[CalibrationRow]) -> list[str]:
    if fitted is None:
        return ["Needs the fit's Jacobian: run a fit, or `--report-only --cross-validate`."]
    found = conflicts(fitted, rows)
    lines = [
        "Pairs of rows of the same product (efficacy or safety), from different trials or sources, each missed",
        "by at least 1 SD, that pull a fitted parameter in opposite directions, and pairs that cannot both be",
        "met (the same plan, endpoint and day with disjoint tolerances: *irreconcilable*, listed first). *Pull*",
        "is `-J[row, parameter] x residual`: the direction in which the row would move the log parameter (the",
        "gradient of half its squared residual, reversed), at the fit",
        f"({fitted.results[0].simulated_n if fitted.results else 0} subjects per efficacy arm); the strongest",
        "12 pairs by the smaller of the two opposed pulls. At the optimum the pulls of all rows and the prior",
        "on each parameter sum to zero: the fit follows the row with the smaller residual, named in the last",
        "column. Pulls of safety rows on parameters of the wrinkle stages (depth, raters) are Monte Carlo:",
        "such a parameter changes which virtual subjects enter a moderate-or-severe trial, not their ptosis.",
        "",
    ]
    if not found:
        return lines + ["No such pair at this fit."]
    lines += ["| product | kind | row, arm, endpoint, day (published, simulated, residual) | the other row | "
              "parameter | pulls | follows |", "|---|---|---|---|---|---|---|"]
    for c in found:
        a, b = c.first, c.second
        lines.append(
            f"| {a.row.product} | {'irreconcilable' if c.irreconcilable else 'opposed pulls'} | "
            f"{a.row.id} {a.row.arm} {a.row.model_endpoint} {a.row.day or ''} ({a.row.value:g}, {_fmt(a.simulated)}, "
            f"{a.likelihood.residual:+.1f}) | "
            f"{b.row.id} {b.row.arm} {b.row.model_endpoint} {b.row.day or ''} ({b.row.value:g}, {_fmt(b.simulated)}, "
            f"{b.likelihood.residual:+.1f}) | "
            f"{_pull_cells(c)} | {c.followed.row.id} |")
    return lines


def write_calibration_report(params: ModelParameters, rows: list[CalibrationRow], docs: Path, subjects: int,
                             notes: Path | None = None, fitted: FitResult | None = None,
                             folds: list[Fold] | None = None,
                             uncertainty: ParameterUncertainty | None = None) -> Path:
    """``calibration.md`` and its figures into ``docs``; ``notes`` (default
    ``docs/calibration_notes.md``), when it exists, is appended: why rows are missed.

    ``fitted``: the fit (or the installed parameters' Jacobian) for the conflicts; ``folds``: the
    cross-validation; ``uncertainty``: the Laplace approximation (default: the packaged fit's)."""
    docs.mkdir(parents=True, exist_ok=True)
    figures = docs / "figures"
    figures.mkdir(exist_ok=True)
    uncertainty = uncertainty if uncertainty is not None else parameter_uncertainty()
    results = evaluate(params, rows, subjects)
    plot_results(results, figures / "calibration_rows.png")
    plot_time_courses(params, figures / "calibration_time_courses.png", subjects)
    passed = sum(r.passed for r in results)
    safety = [r for r in results if r.row.is_safety]
    cv = ""
    if folds:
        held = [r for fold in folds for r in fold.held_out]
        cv = f" Leave-one-trial-out: **{sum(r.passed for r in held)} of {len(held)} rows reproduced out of sample.**"
    lines = [
        "# Calibration",
        "",
        "> Model estimates for planning and education, not medical advice.",
        "",
        "Generated by `neuromod calibrate --install --cross-validate` (fit, cross-validation and report) or",
        "`neuromod calibrate --report-only --install` (report of the installed fit; with `--cross-validate`, and its",
        "leave-one-trial-out folds)",
        f"({subjects} virtual subjects per efficacy arm, {SAFETY_SUBJECTS_FACTOR * subjects} per safety arm, seed 2026).",
        "Every row of `src/neuromod/data/published/calibration_trials.csv` (active and placebo arms) and",
        "every ptosis rate of `src/neuromod/data/published/safety.csv` after a glabella plan, alone or with",
        "the forehead (a dose range: a row at each end) is simulated with one shared parameter set; only what each trial specified",
        "differs (product, units per area, areas, population, endpoint, day). How each trial's endpoint",
        "maps onto the model's is in `src/neuromod/data/calibration_endpoints.csv`.",
        "",
        "**Reproduced** (the tables' pass/fail) means the simulated value lies in the published value's 95 %",
        "Wilson interval for `n_active`, within 8 percentage points where `n` is unknown, within 15 % for",
        f"medians in days, and within a factor of {SAFETY_AGREEMENT_FACTOR:g} either way for safety rates without `n`",
        "(safety rates with `n`: their Wilson interval, as any percentage with `n`).",
        "",
        "**Likelihood** (what the fit maximises; each row's standardised residual `r`, `-2 log L = sum r^2`",
        "plus constants):",
        "",
        "- percentages with `n` (safety rates too, where `safety.csv` gives `n`): binomial on `n`; the residual is the deviance residual",
        "  `sign(sim - pub) sqrt(2 x binomial deviance)`, the simulated proportion floored at half a virtual",
        "  subject from 0 and 1 (its Monte Carlo resolution: 0 of 1000 virtual subjects is read as 1 in 2000),",
        "  so a simulated 0 % against a published 1 % is a finite miss and against a published 0 % costs under",
        "  one unit of deviance;",
        f"- percentages without `n`: normal, the 8-point half-width as {HALF_WIDTH_SDS:g} SD (SD 4 points);",
        "- medians in days: log-normal; variance = the published median's own (the 15 % half-width as 2 SD,",
        "  SD 0.07) plus the simulated median's rounding to the visits it is read at (uniform over the visit",
        "  spacing at that day: spacing^2 / 12; onset diaries: one day). A median on monthly visits is read to",
        "  +-15 days, as large as the published median's error, so neither alone would be honest;",
        "- safety rates without `n` in `safety.csv`: log-normal, a factor of 2 as 2 SD (SD 0.35): published",
        "  rates for one product and dose differ up to 4.5-fold between sources, and rare events are reported",
        "  from trials of a few hundred subjects (1 % of 300 is 3 cases: a Poisson factor of ~2 either way).",
        "",
        f"Weak priors: each fitted log parameter is normal around its `parameters.yaml` value with SD {PRIOR_LOG_SD:.2f}",
        "(a factor of 2; assumption), one extra residual per parameter: weakly identified parameters stay",
        f"near their sources and `J^T J` is invertible. Residuals are capped at +-{RESIDUAL_CAP:g} (a row missed by more",
        "than 10 SD adds a constant and no gradient); the log-likelihoods below are uncapped.",
        "",
        f"**Heterogeneity between trials** (since stop 31): the fit reads each capped residual `r` through a "
        f"Student-t of {HETEROGENEITY_DF:g}",
        "degrees of freedom, `r_t = sign(r) sqrt((df + 1) log(1 + r^2 / df))` (`calibrate.robust_residual`), and",
        "minimises `sum r_t^2` (the deviance and objective below are these). A published value differs from the",
        "model by its sampling error and by what sets its trial apart (population, raters, photographs, visit",
        "windows), and that second part is heavy-tailed: trials of one product, dose, endpoint and day differ",
        "by 3-8 of their SDs (Conflicts, below). Within 2 SD the t costs about what the normal costs; a 6-SD miss",
        "costs 11.5 units instead of 36, so one trial that disagrees with the rest is outvoted rather than met",
        "halfway. df 4: Lange, Little & Taylor 1989 (J Am Stat Assoc 84:881), assumption; the table's",
        "pass/fail and log-likelihood columns are the rows' own error models above.",
        "",
        "**Parameter uncertainty** (Laplace approximation): the posterior of the log parameters is taken as",
        "normal at the optimum with covariance `(J^T J)^-1`, `J` the final Jacobian of all residuals (rows",
        "and priors) in log-parameter space. With standardised residuals, `J^T J` is the Gauss-Newton",
        "approximation of the Hessian of `-log posterior`, exact where the residuals are linear in the log",
        "parameters near the optimum and positive definite by the priors; it needs no more simulations than",
        "the fit already made (profiles or MCMC would need hundreds of fits of ~minutes each). Its limits:",
        "finite-difference steps (forward, in each log parameter, 0.05 x max(1, |log value|): at least a",
        "5 % change of every parameter) through Monte Carlo graininess, parameters at a bound (their",
        "interval is one-sided in truth), and non-Gaussian tails. `neuromod trial --json` draws from it",
        "(docs/trials.md, Intervals).",
        "",
        f"**{passed} of {len(results)} rows reproduced** ({sum(r.passed for r in safety)} of {len(safety)} safety rows);"
        f" deviance {objective(results):.1f}, log-likelihood {log_likelihood(results):.1f}.{cv}",
        "",
        "## Fitted parameters",
        "",
        *parameter_lines(params, uncertainty),
        "",
        "## Fit: efficacy rows",
        "",
        *efficacy_lines(results),
        "",
        "## Safety rows (fitted)",
        "",
        f"Eyelid and brow ptosis in virtual glabella (and forehead-with-glabella) arms ({SAFETY_SUBJECTS_FACTOR * subjects} subjects, to day 60)",
        "against `data/published/safety.csv`; the rates come from the arm's `adverse_events_pct`, as",
        "`neuromod trial` reports them. Eyelid ptosis: a levator block above its threshold, reached when an",
        "injection crosses the orbital septum (`septum_breach` in `data/adverse_events.yaml`: the chance",
        "falls with each point's distance from the orbit, not with its dose). Brow ptosis: a lower frontalis",
        "block in excess of its depressors' (`depressors`), its units varying by placement",
        "(`population.danger_dose_sd`), and in the share of people whose brow rests on frontalis tone",
        "(`susceptible`) the lifting frontalis' own block above a lower threshold: the most-blocked of the",
        "lower and the middle frontalis (both below the C-line, `susceptible.muscles`), so forehead points",
        "reach them as well.",
        "",
        *safety_lines(results),
        "",
        "## Cross-validation: leave one trial out",
        "",
        *cross_validation_lines(folds, fitted.results[0].simulated_n if fitted and fitted.results else subjects),
        "",
        "## Conflicts",
        "",
        *conflict_lines(fitted, rows),
        "",
        "## Likelihood by trial",
        "",
        "| trial | rows | reproduced | deviance | log L |",
        "|---|---|---|---|---|",
    ]
    for key in dict.fromkeys(r.row.trial_key for r in results):
        group = [r for r in results if r.row.trial_key == key]
        lines.append(f"| {key} | {len(group)} | {sum(r.passed for r in group)} | {objective(group):.1f} | "
                     f"{log_likelihood(group):.1f} |")
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

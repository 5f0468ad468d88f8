"""The command line: ``neuromod simulate | products | sites | convert | report``.

Every prediction printed here is a model estimate for planning and education, not medical
advice. Invalid input (files and options alike) exits with status 2 and one line per problem,
``error: <field>: <problem; allowed range>``, before any work starts; options are validated
through the same schema types as the files (:mod:`neuromod.schemas.types`). Output folders are
checked before the work and written atomically (:func:`neuromod.reference.files.atomic_output_folder`),
so a failure leaves nothing behind.
"""

from __future__ import annotations

import os

# The command line's matrix products are small (a plan's spread: a few injections x the face
# map's cells), and a pool of BLAS threads costs more to start and synchronise than it saves:
# 1-4 s of a cold ``simulate`` on a busy 2-core machine. Set before NumPy loads; an explicit
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import csv
import json
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

from neuromod.model.simulate import DISCLAIMER, simulate
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.files import (
    DocumentError,
    atomic_output_file,
    atomic_output_folder,
    check_output_folder,
)
from neuromod.reference.products import convert as convert_units
from neuromod.reference.products import load_products
from neuromod.report.tables import score_table, write_outputs
from neuromod.schemas.plan import PlanError, load_plan
from neuromod.schemas.types import (
    LIMITS,
    AnyUnits,
    DrawSubjects,
    FiniteFloat,
    HorizonDays,
    InputError,
    LocalWorkers,
    ParameterDraws,
    ProjectionYears,
    check_value,
)


class OneLineErrors(TyperGroup):
    """Usage errors (an option that is not a number, a missing argument) as one line,
    ``error: --option: problem``, exit status 2, like every other bad input."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        argv = args[0] if args else kwargs.get("args")
        if not (argv if argv is not None else sys.argv[1:]):
            return super().main(*args, standalone_mode=standalone_mode, **kwargs)  # no arguments: the help
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.BadParameter as error:
            param = error.param
            where = "/".join(param.opts) if param is not None and getattr(param, "opts", None) else (
                error.param_hint or "input")
            if param is not None and not getattr(param, "opts", None) and getattr(param, "name", None):
                where = param.name
            message = str(error.message or "").replace("Input should be", "must be")
            if not message:  # a missing argument or option
                message = error.format_message()
            typer.echo(f"error: {where}: {message}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        except typer.TyperException as error:  # usage errors: unknown option, missing argument, ...
            if type(error).__name__ == "NoArgsIsHelpError":
                return super().main(*args, standalone_mode=standalone_mode, **kwargs)
            message = error.format_message() if hasattr(error, "format_message") else str(error)
            typer.echo(f"error: {message}", err=True)
            sys.exit(2)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=OneLineErrors,
                  help="neuromod: botulinum toxin plans to predicted wrinkle scores. " + DISCLAIMER)

def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _checked(kind: Any, value: Any, option: str, allowed: str) -> Any:
    """``value`` validated as ``kind`` (a schema type), or exit 2 with one line naming ``option``."""
    try:
        return check_value(kind, value, option, allowed)
    except InputError as error:
        _fail(str(error))


def _output_folder(out: Path, option: str = "--out") -> Path:
    """``out`` checked before any work (not a file, its parent exists), or exit 2."""
    try:
        return check_output_folder(out, option)
    except DocumentError as error:
        _fail(str(error))


def _product(name: str, option: str) -> str:
    """A known product name, or exit 2 naming ``option`` and the allowed names."""
    products = load_products()
    if name not in products:
        _fail(f"{option}: unknown product {name!r}; allowed: {', '.join(sorted(products))}")
    return name


def _moved(paths: Iterable[Path], staging: Path, out: Path) -> list[Path]:
    """Where files written into the staging folder lie once it is moved into ``out``."""
    return [out / Path(p).relative_to(staging) for p in paths]


@app.command("simulate")
def simulate_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON)"),
    days: int = typer.Option(180, "--days", help=f"days to simulate, 1-{LIMITS.simulation.max_days}"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for CSV and PNG outputs"),
    as_json: bool = typer.Option(False, "--json", help="print the course as JSON on stdout"),
) -> None:
    """Predict the course of one plan: scores by area over time, muscles reached."""
    days = _checked(HorizonDays, days, "--days", f"whole days, 1-{LIMITS.simulation.max_days}")
    if out is not None:
        _output_folder(out)
    try:
        plan = load_plan(plan_file)
    except PlanError as error:
        _fail(str(error))
    result = simulate(plan, days=days)
    if as_json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        typer.echo(score_table(result))
        typer.echo(f"\n{DISCLAIMER}")
    if out is not None:
        with atomic_output_folder(out) as staging:
            paths = _moved(write_outputs(result, staging), staging, out)
        if not as_json:
            typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("products")
def products_command() -> None:
    """List the products with potency, label reconstitution, limits and kinetic factors
    (availability: onset speed; persistence: light-chain activity; both relative to Botox)."""
    typer.echo(f"{'product':<9} {'generic':<20} {'units/ona-unit':>14} {'range':>9} {'vial':>5} "
               f"{'saline mL':>9} {'U/0.1mL':>8} {'max/session':>11} {'re-treat d':>10} {'availability':>12} "
               f"{'persistence':>11}")
    for p in load_products().values():
        typer.echo(f"{p.name:<9} {p.generic:<20} {p.units_per_ona_unit:>14g} "
                   f"{p.units_per_ona_unit_low:g}-{p.units_per_ona_unit_high:<5g} {p.vial_units:>5g} "
                   f"{p.label_saline_ml:>9g} {p.label_units_per_ml / 10:>8.2f} {p.max_session_units:>11g} "
                   f"{p.min_retreat_days:>10g} {p.availability_factor:>12g} {p.persistence_factor:>11g}")


@app.command("sites")
def sites_command(area: Optional[str] = typer.Option(None, "--area", help="only this area")) -> None:
    """List the standard injection sites of each area (label patterns)."""
    face_map = load_face_map()
    if area is not None and area not in face_map.areas_with_sites:
        _fail(f"--area: unknown area {area!r}; allowed: {', '.join(face_map.areas_with_sites)}")
    typer.echo(f"{'site':<40} {'area':<12} {'x mm':>6} {'y mm':>6} {'depth':>6} {'share':>6}  target")
    for site in face_map.sites.values():
        if area is None or site.area == area:
            typer.echo(f"{site.name:<40} {site.area:<12} {site.x_mm:>6g} {site.y_mm:>6g} "
                       f"{site.depth_mm:>6g} {site.share:>6.3f}  {site.target_muscle}")


@app.command("convert")
def convert_command(
    units: float = typer.Argument(..., help="units of the source product"),
    source: str = typer.Option(..., "--from", help="source product"),
    target: str = typer.Option(..., "--to", help="target product"),
) -> None:
    """Convert a dose between products, with the evidence range and its source."""
    _product(source, "--from")
    _product(target, "--to")
    most = load_products()[source].max_session_units
    units = _checked(AnyUnits, units, "units", f"0-{most:g} {source} units (its label maximum per session)")
    if units > most:
        _fail(f"units: must be <= {most:g}, got {units:g}; allowed: 0-{most:g} {source} units "
              "(its label maximum per session)")
    try:
        result = convert_units(units, source, target)
    except ValueError as error:
        _fail(str(error))
    typer.echo(f"{units:g} U {source} ~ {result.units:.3g} U {target} "
               f"(range {result.low:.3g}-{result.high:.3g} U)")
    typer.echo(f"source: {result.source}")
    typer.echo("Units are product-specific and not interchangeable; this is an estimate, not a prescription.")


ENDPOINT_ROWS = ("inv_none_mild", "subj_none_mild", "inv_ge1_grade", "composite_ge2_grade", "subj_onset_by_day")


def trial_table(result: dict) -> str:
    """A readable summary of a trial result: each endpoint per arm and area at each visit."""
    lines = [f"trial: {result['name']} (seed {result['seed']}, {result['subjects_per_arm']} subjects per arm)"]
    visits = [str(d) for d in result["follow_up_days"]]
    for arm, data in result["arms"].items():
        for area, endpoints in data["areas"].items():
            lines.append(f"\n{arm} ({data['product']} {data['areas_units']}) - {area}")
            lines.append(f"{'endpoint (% of subjects) / day':<32}" + "".join(f"{d:>7}" for d in visits))
            for name in ENDPOINT_ROWS:
                lines.append(f"{name:<32}" + "".join(f"{endpoints[name][d]:>7.1f}" for d in visits))
            for name, value in endpoints.items():
                if name.startswith("median"):
                    lines.append(f"{name:<40} {value if value is not None else 'not reached'}")
        lines.append(f"adverse events (%): {data['adverse_events_pct']}")
    return "\n".join(lines)


@app.command("trial")
def trial_command(
    trial_file: Path = typer.Argument(..., help="trial file (YAML)"),
    as_json: bool = typer.Option(False, "--json", help="print the documented JSON on stdout"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the endpoint PNGs (default: next to the file)"),
    subjects: Optional[int] = typer.Option(
        None, "--subjects", help=f"override subjects_per_arm, 1-{LIMITS.trial.max_subjects_per_arm:,}"),
    dask: Optional[str] = typer.Option(None, "--dask", help="Dask scheduler address (tcp://host:8786)"),
    workers: Optional[int] = typer.Option(
        None, "--workers", help=f"start a local Dask cluster of N worker processes, 1-{LIMITS.trial.max_local_workers}"),
    parameter_draws: Optional[int] = typer.Option(
        None, "--parameter-draws",
        help=f"with --json: parameter sets drawn from the calibration's posterior for each endpoint's interval, "
             f"0-{LIMITS.trial.max_parameter_draws} (default: neuromod.trials.uncertainty.DEFAULT_DRAWS, 8; "
             "0: no intervals, the plain document)"),
    draw_subjects: Optional[int] = typer.Option(
        None, "--draw-subjects",
        help=f"subjects per arm of each parameter draw, at most the trial's, 1-{LIMITS.trial.max_subjects_per_arm:,} "
             "(default: one chunk, 1,000)"),
) -> None:
    """Run a virtual trial: endpoints per arm, as a table and PNGs, or as JSON (with intervals
    from parameter uncertainty and Monte Carlo error beside every endpoint; docs/trials.md)."""
    from neuromod.trials.trial import (
        TrialError,
        check_dask_address,
        dask_runner,
        load_trial,
        run_trial,
        with_subjects,
    )
    from neuromod.trials.uncertainty import DEFAULT_DRAW_SUBJECTS, DEFAULT_DRAWS, trial_with_intervals

    parameter_draws = _checked(ParameterDraws, DEFAULT_DRAWS if parameter_draws is None else parameter_draws,
                               "--parameter-draws", f"0-{LIMITS.trial.max_parameter_draws} draws")
    draw_subjects = _checked(DrawSubjects, DEFAULT_DRAW_SUBJECTS if draw_subjects is None else draw_subjects,
                             "--draw-subjects", f"1-{LIMITS.trial.max_subjects_per_arm} subjects per arm")
    if workers is not None:
        workers = _checked(LocalWorkers, workers, "--workers", f"1-{LIMITS.trial.max_local_workers} processes")
    if dask is not None and workers is not None:
        _fail("--dask/--workers: give either a scheduler address or a number of local workers, not both")
    folder = None if as_json else (out or trial_file.parent / f"{trial_file.stem}_results")
    if folder is not None:
        _output_folder(folder)
    try:
        spec = load_trial(trial_file)
        if subjects is not None:
            spec = with_subjects(spec, subjects, "--subjects")
        if dask is not None:
            check_dask_address(dask)
        runner = dask_runner(dask, workers) if (dask or workers) else None
    except TrialError as error:
        _fail(str(error))
    try:
        if as_json:
            result = trial_with_intervals(spec, parameter_draws, draw_subjects, chunk_runner=runner)
        else:
            result = run_trial(spec, chunk_runner=runner)
    finally:
        if runner is not None:
            runner.close()
    if as_json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return
    typer.echo(trial_table(result))
    typer.echo(f"\n{DISCLAIMER}")
    from neuromod.report.plots import plot_trial

    with atomic_output_folder(folder) as staging:
        paths = _moved(plot_trial(result, staging), staging, folder)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("calibrate")
def calibrate_command(
    out: Path = typer.Option(Path("calibration"), "--out",
                             help="folder for calibrated.yaml, calibration.md and its figures"),
    install: bool = typer.Option(False, "--install",
                                 help="also replace the package's data/calibrated.yaml and the report in --docs"),
    subjects: int = typer.Option(1000, "--subjects", min=50, max=5000,
                                 help="subjects per arm while fitting (and in each cross-validation fold), 50-5000"),
    evaluations: int = typer.Option(600, "--max-evaluations", min=1, max=5000,
                                     help="objective evaluations of each start after its first evaluation and "
                                          "Jacobian, 1-5000"),
    report_subjects: int = typer.Option(2000, "--report-subjects", min=50, max=20000,
                                        help="subjects per arm for the report, 50-20000"),
    seed: int = typer.Option(2026, "--seed", min=0, max=2**32 - 1, help="seed of the virtual trials"),
    starts: int = typer.Option(1, "--starts", min=1, max=20,
                               help="descents, 1-20: the priors, then draws from the priors' spread; "
                                    "the best fit is kept (the same for every cross-validation fold from the priors)"),
    report_only: bool = typer.Option(False, "--report-only", help="skip the fit; report the current parameters"),
    no_report: bool = typer.Option(False, "--no-report", help="fit only; write calibrated.yaml without the report"),
    only: Optional[str] = typer.Option(None, "--only",
                                       help="comma-separated subset of the fitted parameters (the others keep their priors)"),
    rows_option: Optional[str] = typer.Option(None, "--rows", help="comma-separated subset of the published row ids"),
    docs: Path = typer.Option(Path("docs"), "--docs", help="with --install: folder for calibration.md and figures"),
    cross_validate: bool = typer.Option(
        False, "--cross-validate",
        help="leave-one-trial-out cross-validation from the fit (or, with --report-only, the installed fit): "
             "cross_validation.csv in --out and a table in the report; when the folds start at the priors, "
             "the fit then resumes from each fold's end that beats it, and the best is kept"),
    fold_evaluations: Optional[int] = typer.Option(
        None, "--fold-evaluations", min=1, max=5000,
        help="objective evaluations of each cross-validation fold's refit, 1-5000 (default: --max-evaluations "
             "from the priors; three iterations from the full fit)"),
    fold_start: str = typer.Option(
        "priors", "--fold-start",
        help="where each fold's refit starts: priors (the honest measure: a full fit per study), fit "
             "(the full fit, which saw the trial: quick, nearly in-sample), or a folder of an earlier "
             "cross-validation's fold records (its --out/folds): each fold starts at the end of the same "
             "study's earlier fold, which never saw that trial either (out of sample, and quick after a small "
             "change; a study without a record starts at the priors)"),
    folds_option: Optional[str] = typer.Option(
        None, "--folds",
        help="with --cross-validate: comma-separated studies (data/calibration_studies.csv) to leave out, "
             "no report and nothing installed; each finished fold is kept in --out/folds, which a later full --cross-validate "
             "with the same rows, options and code reuses (runs split by study, or an interrupted run, add up)"),
    dask: Optional[str] = typer.Option(
        None, "--dask", help="with --cross-validate from the priors: fit the folds on the Dask scheduler at this "
                             "address (tcp://host:8786), all at once"),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="with --cross-validate from the priors: fit the folds on a local Dask cluster of N "
                                f"worker processes, 1-{LIMITS.trial.max_local_workers}"),
) -> None:
    """Fit the shared population parameters to the published trials (efficacy and safety rows,
    a likelihood per row); write the fit with its Laplace uncertainty and its report.

    The fit starts from the priors of parameters.yaml (not from the installed fit), so the same
    options and seed give the same calibrated.yaml. Everything goes to --out; the package's
    parameters and the tracked docs change only with --install.
    """
    import shutil

    from neuromod.reference.parameters import (
        ParameterUncertainty,
        apply_overrides,
        default_parameters,
        prior_parameters,
    )
    from neuromod.trials import calibrate as cal

    if report_only and no_report:
        _fail("--report-only and --no-report: choose one")
    earlier_folds = None if fold_start in ("priors", "fit") else Path(fold_start)
    if earlier_folds is not None and not earlier_folds.is_dir():
        _fail(f"--fold-start: {fold_start!r}; allowed: priors, fit, or a folder of earlier fold records")
    try:
        rows = cal.select_rows(cal.load_rows(), [r.strip() for r in rows_option.split(",") if r.strip()]
                               if rows_option else None)
    except ValueError as error:
        _fail(str(error))
    studies = [s.strip() for s in folds_option.split(",") if s.strip()] if folds_option else None
    if studies is not None:
        if not cross_validate:
            _fail("--folds: only with --cross-validate")
        known = list(dict.fromkeys(row.study for row in rows))
        unknown_studies = sorted(set(studies) - set(known))
        if unknown_studies or not studies:
            _fail(f"--folds: unknown study {', '.join(unknown_studies) or '(none given)'}; allowed: {', '.join(known)}")
        no_report, install = True, False
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    unknown = sorted(set(names or []) - set(cal.FITTED))
    if unknown:
        _fail(f"--only: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(cal.FITTED)}")
    if out.exists() and not out.is_dir():
        _fail(f"--out: {out} exists and is not a folder")
    fold_starts = None
    if earlier_folds is not None:
        if not cross_validate:
            _fail("--fold-start: only with --cross-validate")
        try:
            fold_starts = cal.FoldCache(earlier_folds).ends(names or list(cal.FITTED), prior_parameters())
        except ValueError as error:
            _fail(str(error))
        if not fold_starts:
            _fail(f"--fold-start: {earlier_folds} holds no fold records (<study>.json, as --out/folds keeps them)")
    if workers is not None:
        workers = _checked(LocalWorkers, workers, "--workers", f"1-{LIMITS.trial.max_local_workers} processes")
    if dask is not None or workers is not None:
        if dask is not None and workers is not None:
            _fail("--dask/--workers: give either a scheduler address or a number of local workers, not both")
        if not cross_validate or fold_start == "fit":
            _fail("--dask/--workers: only with --cross-validate and --fold-start priors or a folder (the folds run "
                  "on the cluster)")
    from neuromod.trials.trial import TrialError, check_dask_address, dask_pool

    try:
        if dask is not None:
            check_dask_address(dask)
        pool = dask_pool(dask, workers) if (dask or workers) else None  # reached before anything is fitted
    except TrialError as error:
        _fail(str(error))
    try:
        written = []
        log = lambda line: typer.echo(line, err=True)  # noqa: E731  (progress on stderr)
        prior = prior_parameters()
        fitted, uncertainty = None, None
        if report_only:
            params = default_parameters()
        else:
            fitted = cal.fit(prior, rows, subjects_per_arm=subjects, seed=seed, max_evaluations=evaluations,
                             names=names, log=log, starts=starts)
            document = cal.calibrated_document(fitted, prior, subjects, seed, evaluations, starts, earlier_folds)
            written.append(cal.write_calibrated(document, out / "calibrated.yaml"))
            params = apply_overrides(prior, document["values"])
            uncertainty = ParameterUncertainty.from_document(document["uncertainty"])
        folds = None
        if cross_validate:
            if fitted is None:
                log("cross-validation: the installed fit's Jacobian (one evaluation per parameter)")
                fitted = cal.fit_at(params, prior, rows, names, subjects, seed, log)
                uncertainty = fitted.laplace.as_uncertainty(
                    f"Laplace at the installed fit: J from forward differences at {subjects} subjects per arm")
            from_priors = fold_start != "fit"
            budget = fold_evaluations or (evaluations if from_priors else cal.FOLD_EVALUATIONS_FROM_FIT)
            validate = lambda full: cal.cross_validate(  # noqa: E731
                full, prior, rows, subjects, seed, budget, log, studies=studies, from_priors=from_priors,
                on_fold=lambda done: cal.write_cross_validation(done, out), starts=starts if from_priors else 1,
                cache=cal.FoldCache(out / "folds"), pool=pool, fold_starts=fold_starts)
            folds = validate(fitted)
            if from_priors and studies is None and not report_only:
                refined = cal.refine_from_folds(fitted, folds, prior, rows, subjects, seed, evaluations, log)
                if refined is not fitted:
                    fitted = refined
                    document = cal.calibrated_document(fitted, prior, subjects, seed, evaluations, starts,
                                                       earlier_folds)
                    cal.write_calibrated(document, out / "calibrated.yaml")
                    params = apply_overrides(prior, document["values"])
                    uncertainty = ParameterUncertainty.from_document(document["uncertainty"])
                    log(f"cross-validation: the folds (finished, reused) against the fit from {fitted.start}")
                    folds = validate(fitted)
            written.append(cal.write_cross_validation(folds, out))
            held = [r for fold in folds for r in fold.held_out]
            log(f"cross-validation: {sum(r.passed for r in held)} of {len(held)} rows reproduced out of sample")
        if not no_report:
            from neuromod.report.calibration_report import write_calibration_report

            written.append(write_calibration_report(params, rows, out, report_subjects, notes=docs / "calibration_notes.md",
                                                    fitted=fitted, folds=folds, uncertainty=uncertainty))
        if install:
            if not report_only:
                target = Path(str(resources.files("neuromod").joinpath("data", "calibrated.yaml")))
                shutil.copyfile(out / "calibrated.yaml", target)
                written.append(target)
            if not no_report:
                (docs / "figures").mkdir(parents=True, exist_ok=True)
                for path in sorted((out / "figures").glob("calibration_*.png")):
                    shutil.copyfile(path, docs / "figures" / path.name)
                shutil.copyfile(out / "calibration.md", docs / "calibration.md")
                written.append(docs / "calibration.md")
        for path in written:
            typer.echo(f"wrote {path}")
    finally:
        if pool is not None:
            pool.close()


@app.command("project")
def project_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON); its schedule is replaced"),
    years: int = typer.Option(10, "--years", help=f"years to project, 1-{LIMITS.projection.max_years}"),
    every: float = typer.Option(120, "--every", help="days between treatments (>= the label interval)"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for projection.png and projection.csv"),
) -> None:
    """Treated every N days against never treated, per area, over years (table and PNG)."""
    from neuromod.trials.projection import project

    years = _checked(ProjectionYears, years, "--years", f"whole years, 1-{LIMITS.projection.max_years}")
    every = _checked(FiniteFloat, every, "--every", "days between treatments, >= the product's label interval")
    if out is not None:
        _output_folder(out)
    try:
        plan = load_plan(plan_file)
        projection = project(plan, years, every)
    except PlanError as error:
        _fail(str(error).replace("every_days:", "--every (every_days):"))
    table = projection.yearly()
    typer.echo(f"expected FWS grade at rest (static lines): treated every {every:g} days vs never treated")
    for area, rows in table.items():
        typer.echo(f"\n{area}\n{'year':>4} {'treated':>8} {'never':>8}")
        for row in rows:
            typer.echo(f"{row['year']:>4} {row['treated_rest']:>8.2f} {row['untreated_rest']:>8.2f}")
    typer.echo(f"\n{DISCLAIMER}")
    if out is not None:
        from neuromod.report.plots import plot_projection

        with atomic_output_folder(out) as staging:
            with (staging / "projection.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["area", "year", "treated_rest", "untreated_rest", "treated_contraction",
                                 "untreated_contraction"])
                for area, rows in table.items():
                    for row in rows:
                        writer.writerow([area] + [f"{row[k]:.4f}" if k != "year" else row[k] for k in row])
            plot_projection(projection, staging / "projection.png")
        typer.echo(f"wrote {out / 'projection.png'}, {out / 'projection.csv'}")


@app.command("plan")
def plan_command(
    patient_file: Optional[Path] = typer.Option(None, "--patient", help="YAML with the plan's patient fields"),
    areas: str = typer.Option(..., "--areas", help="comma-separated areas, e.g. glabella,forehead"),
    product: str = typer.Option(..., "--product", help="product name"),
    goal: str = typer.Option("none_mild", "--goal", help="none_mild | none (at day 30, maximum contraction)"),
    keep_expression: float = typer.Option(0.0, "--keep-expression", min=0.0, max=1.0,
                                          help="least fraction of movement to keep at day 30, 0-1"),
    max_ptosis: float = typer.Option(0.02, "--max-ptosis-risk", min=0.0, max=1.0, help="bound on ptosis risk, 0-1"),
    hold_until: Optional[int] = typer.Option(None, "--hold-until", min=31, max=365,
                                             help="also keep the goal to this day for half of similar patients, 31-365"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the plan (YAML) here"),
) -> None:
    """Find the smallest label-pattern dose that reaches the goal for patients like this one.

    Every smaller dose searched is listed with the reason it was rejected. Exit status 2 for a
    request it cannot plan (no, unknown or repeated area; unknown product; bad patient file),
    1 when no searched dose meets every requirement.
    """
    import yaml
    from pydantic import ValidationError

    from neuromod.reference.files import read_document
    from neuromod.schemas.patient import PatientDescription
    from neuromod.schemas.plan import format_validation_error
    from neuromod.trials.planner import check_request, plan_dose

    try:
        document = read_document(patient_file, "--patient") if patient_file else {}
        description = PatientDescription.model_validate(document or {})
    except DocumentError as error:
        _fail(str(error))
    except ValidationError as error:
        _fail(format_validation_error(error, PatientDescription, prefix="patient."))
    area_list = [a.strip() for a in areas.split(",") if a.strip()]
    try:
        from neuromod.reference.clinical import load_planning

        tables = load_planning()
        check_request(area_list, product, goal, hold_until, tables.default_coverage, keep_expression, max_ptosis, tables)
    except PlanError as error:
        field_name, _, rest = str(error).partition(":")
        _fail(f"--{field_name.replace('_', '-')}:{rest}" if field_name in ("areas", "product", "goal", "hold_until")
              else str(error))
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        _fail(f"--out: {out} must be a file in an existing folder")
    result = plan_dose(description, area_list, product, goal, keep_expression, max_ptosis_risk=max_ptosis,
                       hold_until=hold_until)
    if result.plan is None:
        typer.echo("no plan:\n  " + "\n  ".join(result.explanation), err=True)
        raise typer.Exit(code=1)
    chosen = result.chosen
    typer.echo(f"plan: {product} " + ", ".join(f"{a} {u:g} U" for a, u in chosen.areas.items())
               + f" (x{chosen.scale:.3g} the reference pattern)")
    for area in chosen.areas:
        held = (f"; {chosen.held_rate[area]:.0%} still on day {hold_until}" if hold_until else "")
        typer.echo(f"  {area}: {chosen.goal_rate[area]:.0%} of similar patients reach {goal} at day "
                   f"{tables.goal_day}{held}; median movement kept {chosen.expression[area]:.0%}")
    typer.echo(f"  predicted eyelid ptosis risk {chosen.eyelid_ptosis_risk:.1%}, brow ptosis risk "
               f"{chosen.brow_ptosis_risk:.1%} (bound {max_ptosis:.1%})")
    typer.echo("why this dose:\n  " + "\n  ".join(result.explanation))
    typer.echo("\npredicted course for this patient:\n" + score_table(simulate(result.plan, days=180)))
    typer.echo(f"\n{DISCLAIMER}")
    if out is not None:
        document = result.plan.model_dump(include={"patient", "product", "areas"})
        out.write_text("# neuromod plan (model estimate, not medical advice)\n" + yaml.safe_dump(document, sort_keys=False))
        typer.echo(f"wrote {out}")


@app.command("personalize")
def personalize_command(
    history_file: Path = typer.Argument(..., help="history file (YAML or JSON): patient, treatments, observations"),
    days_ahead: int = typer.Option(180, "--days-ahead", min=1, max=730,
                                   help="predict this many days after the last treatment, 1-730"),
    as_json: bool = typer.Option(False, "--json", help="print the documented JSON on stdout"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for personal.png and personal.json "
                                                           "(default without --json: ./HISTORY_personal)"),
    goal: Optional[str] = typer.Option(None, "--goal", help="none_mild | none: also suggest the next session's dose"),
    hold_until: Optional[int] = typer.Option(None, "--hold-until", min=31, max=365,
                                             help="with --goal: keep it to this day after the next session, 31-365"),
    particles: int = typer.Option(400, "--particles", min=100, max=20000, help="virtual twins, 100-20000"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the virtual twins"),
) -> None:
    """Personal prediction: the model conditioned on this patient's follow-ups (course with bands,
    wear-off, re-treatment day, personal parameters; optionally the next dose)."""
    from neuromod.schemas.history import HistoryError, load_history
    from neuromod.trials.personal import personalize, with_next_dose

    if goal is None and hold_until is not None:
        goal = "none_mild"
    if goal is not None and goal not in ("none_mild", "none"):
        _fail(f"--goal: must be none_mild or none, got {goal!r}")
    try:
        history = load_history(history_file)
    except HistoryError as error:
        _fail(str(error))
    prediction = personalize(history, days_ahead=days_ahead, particles=particles, seed=seed)
    if goal is not None:
        try:
            prediction = with_next_dose(prediction, goal, hold_until)
        except PlanError as error:
            _fail(str(error))
    document = prediction.to_json()
    if as_json:
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        from neuromod.report.personal_plot import personal_table

        typer.echo(personal_table(prediction))
        typer.echo(f"\n{DISCLAIMER}")
    folder = out if out is not None else (None if as_json else Path(f"{history_file.stem}_personal"))
    if folder is not None:
        from neuromod.report.personal_plot import plot_personal

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "personal.json").write_text(json.dumps(document, indent=1) + "\n")
        png = plot_personal(prediction, folder / "personal.png")
        if not as_json:
            typer.echo(f"wrote {png}, {folder / 'personal.json'}")


@app.command("export-sbml")
def export_sbml_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON)"),
    out: Path = typer.Option(..., "-o", "--out", help="SBML file to write"),
) -> None:
    """Write the plan's junction and muscle model (one patient) as SBML Level 3."""
    from neuromod.export.sbml import export_sbml
    from neuromod.reference.files import check_output_file

    try:
        check_output_file(out, "--out")
        plan = load_plan(plan_file)
    except (DocumentError, PlanError) as error:
        _fail(str(error))
    with atomic_output_file(out) as staging:
        muscles = export_sbml(plan, staging)
    typer.echo(f"wrote {out}: {len(muscles)} muscles, {len(plan.treatment_days)} treatment event(s)")


def example_plans() -> dict[str, Path]:
    """The shipped example plans (name -> path)."""
    folder = resources.files("neuromod").joinpath("examples")
    return {Path(str(p)).stem: Path(str(p)) for p in sorted(folder.iterdir(), key=lambda q: q.name)
            if p.name.endswith(".yaml")}


#: where ``neuromod report`` (``make run``) writes by default.
DEFAULT_REPORT = Path("reports/latest")


@app.command("report")
def report_command(
    out: Path = typer.Option(DEFAULT_REPORT, "--out", help="report folder (its parent folder must exist)"),
    days: int = typer.Option(180, "--days", help=f"days to simulate, 1-{LIMITS.simulation.max_days}"),
) -> None:
    """Simulate every shipped example plan and write a report folder (``make run``)."""
    from neuromod.report.course_report import write_report

    days = _checked(HorizonDays, days, "--days", f"whole days, 1-{LIMITS.simulation.max_days}")
    if out == DEFAULT_REPORT:
        DEFAULT_REPORT.parent.mkdir(exist_ok=True)  # the default works in a fresh checkout
    _output_folder(out)
    with atomic_output_folder(out) as staging:
        index = _moved([write_report(example_plans(), staging, days)], staging, out)[0]
    typer.echo(f"report written: {index}")


@app.command("serve")
def serve_command(
    db: Optional[str] = typer.Option(None, "--db", help="database URL (default $NEUROMOD_DATABASE_URL or "
                                                        "sqlite:///var/clinic.sqlite)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port, 1-65535"),
    demo: bool = typer.Option(False, "--demo", help="seed the demo clinic into an empty database"),
) -> None:
    """Serve the clinic app (records, accounts, audit, API at /api/, docs at /docs)."""
    from neuromod.clinic.server import serve
    from neuromod.clinic.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(**({"database_url": db} if db else {}))
    except SettingsError as error:
        _fail(str(error))
    serve(settings, host, port, demo, echo=typer.echo)


@app.command("add-account")
def add_account_command(
    username: str = typer.Option(..., "--username", help="3-64 characters: a-z 0-9 _ . -"),
    role: str = typer.Option(..., "--role", help="admin | injector | front_desk"),
    full_name: str = typer.Option(..., "--full-name", help="name shown in records"),
    db: Optional[str] = typer.Option(None, "--db", help="database URL (default $NEUROMOD_DATABASE_URL or "
                                                        "sqlite:///var/clinic.sqlite)"),
) -> None:
    """Create a clinic staff account (e.g. the first admin); the password is asked for, or read
    from $NEUROMOD_NEW_PASSWORD."""
    import os

    from pydantic import ValidationError

    from neuromod.clinic.deps import ClinicError
    from neuromod.clinic.server import create_account
    from neuromod.clinic.settings import Settings, SettingsError
    from neuromod.schemas.plan import format_validation_error

    password = os.environ.get("NEUROMOD_NEW_PASSWORD") or typer.prompt("password (12+ characters)", hide_input=True,
                                                                       confirmation_prompt=True)
    try:
        settings = Settings.from_env(**({"database_url": db} if db else {}))
        account_id = create_account(settings.database_url, username, full_name, role, password)
    except SettingsError as error:
        _fail(str(error))
    except ValidationError as error:
        _fail("--" + format_validation_error(error).replace("full_name", "full-name"))
    except ClinicError as error:
        _fail(error.message)
    typer.echo(f"account {account_id} created: {username} ({role})")


audit_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The clinic's audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify_command(
    db: Optional[str] = typer.Option(None, "--db", help="database URL (default $NEUROMOD_DATABASE_URL or "
                                                        "sqlite:///var/clinic.sqlite)"),
) -> None:
    """Recompute the audit log's hash chain; exit 1 and name each edited or missing entry."""
    from neuromod.clinic.server import verify_database
    from neuromod.clinic.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(**({"database_url": db} if db else {}))
    except SettingsError as error:
        _fail(str(error))
    result = verify_database(settings.database_url)
    for problem in result.problems:
        typer.echo(f"audit: {problem}", err=True)
    if not result.ok:
        raise typer.Exit(code=1)
    typer.echo(f"audit log verified: {result.entries} entries, chain intact")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

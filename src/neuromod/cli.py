"""The command line: ``neuromod simulate | products | sites | convert | report``.

Every prediction printed here is a model estimate for planning and education, not medical
advice. Invalid input exits with status 2 and a message naming the field; nothing is
written then.
"""

from __future__ import annotations

import csv
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from neuromod.model.simulate import DISCLAIMER, simulate
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.products import convert as convert_units
from neuromod.reference.products import load_products
from neuromod.report.tables import score_table, write_outputs
from neuromod.schemas.plan import PlanError, load_plan

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="neuromod: botulinum toxin plans to predicted wrinkle scores. " + DISCLAIMER)

def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command("simulate")
def simulate_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON)"),
    days: int = typer.Option(180, "--days", min=1, max=3650, help="days to simulate, 1-3650"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for CSV and PNG outputs"),
    as_json: bool = typer.Option(False, "--json", help="print the course as JSON on stdout"),
) -> None:
    """Predict the course of one plan: scores by area over time, muscles reached."""
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
        paths = write_outputs(result, out)
        if not as_json:
            typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("products")
def products_command() -> None:
    """List the products with potency, label reconstitution and limits."""
    typer.echo(f"{'product':<9} {'generic':<20} {'units/ona-unit':>14} {'range':>9} {'vial':>5} "
               f"{'saline mL':>9} {'U/0.1mL':>8} {'max/session':>11} {'re-treat d':>10}")
    for p in load_products().values():
        typer.echo(f"{p.name:<9} {p.generic:<20} {p.units_per_ona_unit:>14g} "
                   f"{p.units_per_ona_unit_low:g}-{p.units_per_ona_unit_high:<5g} {p.vial_units:>5g} "
                   f"{p.label_saline_ml:>9g} {p.label_units_per_ml / 10:>8.2f} {p.max_session_units:>11g} "
                   f"{p.min_retreat_days:>10g}")


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
    subjects: Optional[int] = typer.Option(None, "--subjects", min=1, help="override subjects_per_arm"),
    dask: Optional[str] = typer.Option(None, "--dask", help="Dask scheduler address (tcp://host:8786)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=256,
                                          help="start a local Dask cluster of N worker processes"),
) -> None:
    """Run a virtual trial: endpoints per arm, as a table and PNGs, or as JSON."""
    from neuromod.trials.trial import TrialError, dask_runner, load_trial, run_trial

    try:
        spec = load_trial(trial_file)
    except TrialError as error:
        _fail(str(error))
    if subjects is not None:
        spec = spec.model_copy(update={"subjects_per_arm": subjects})
    runner = dask_runner(dask, workers) if (dask or workers) else None
    try:
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

    folder = out or trial_file.parent / f"{trial_file.stem}_results"
    paths = plot_trial(result, folder)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("calibrate")
def calibrate_command(
    subjects: int = typer.Option(400, "--subjects", min=50, help="subjects per arm while fitting"),
    evaluations: int = typer.Option(150, "--max-evaluations", min=1, help="objective evaluations"),
    report_subjects: int = typer.Option(2000, "--report-subjects", min=50, help="subjects per arm for the report"),
    report_only: bool = typer.Option(False, "--report-only", help="skip the fit; report the current parameters"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated subset of the fitted parameters"),
    docs: Path = typer.Option(Path("docs"), "--docs", help="folder for calibration.md and its figure"),
) -> None:
    """Fit the shared population parameters to the published trials; write the report."""
    from neuromod import calibrate as cal
    from neuromod.reference.parameters import default_parameters, prior_parameters

    rows = cal.load_rows()
    params = default_parameters()
    if not report_only:
        names = only.split(",") if only else None
        unknown = sorted(set(names or []) - set(cal.FITTED))
        if unknown:
            _fail(f"--only: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(cal.FITTED)}")
        fitted, value = cal.fit(params, rows, subjects_per_arm=subjects, max_evaluations=evaluations, names=names,
                                log=lambda line: typer.echo(line, err=True))
        target = Path(str(resources.files("neuromod").joinpath("data", "calibrated.yaml")))
        cal.write_calibrated(cal.calibrated_document(fitted, prior_parameters(), value, subjects, 2026), target)
        typer.echo(f"wrote {target}")
        params = fitted
    from neuromod.report.calibration_report import write_calibration_report

    path = write_calibration_report(params, rows, docs, report_subjects)
    typer.echo(f"wrote {path}")


@app.command("project")
def project_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON); its schedule is replaced"),
    years: int = typer.Option(10, "--years", min=1, max=10, help="years to project, 1-10"),
    every: float = typer.Option(120, "--every", help="days between treatments (>= the label interval)"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for projection.png and projection.csv"),
) -> None:
    """Treated every N days against never treated, per area, over years (table and PNG)."""
    from neuromod.trials.projection import project

    try:
        plan = load_plan(plan_file)
        projection = project(plan, years, every)
    except PlanError as error:
        _fail(str(error))
    table = projection.yearly()
    typer.echo(f"expected FWS grade at rest (static lines): treated every {every:g} days vs never treated")
    for area, rows in table.items():
        typer.echo(f"\n{area}\n{'year':>4} {'treated':>8} {'never':>8}")
        for row in rows:
            typer.echo(f"{row['year']:>4} {row['treated_rest']:>8.2f} {row['untreated_rest']:>8.2f}")
    typer.echo(f"\n{DISCLAIMER}")
    if out is not None:
        from neuromod.report.plots import plot_projection

        out.mkdir(parents=True, exist_ok=True)
        with (out / "projection.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["area", "year", "treated_rest", "untreated_rest", "treated_contraction",
                             "untreated_contraction"])
            for area, rows in table.items():
                for row in rows:
                    writer.writerow([area] + [f"{row[k]:.4f}" if k != "year" else row[k] for k in row])
        typer.echo(f"wrote {plot_projection(projection, out / 'projection.png')}, {out / 'projection.csv'}")


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
    """Find the smallest label-pattern dose that reaches the goal for patients like this one."""
    import yaml
    from pydantic import ValidationError

    from neuromod.schemas.patient import PatientDescription
    from neuromod.schemas.plan import format_validation_error
    from neuromod.trials.planner import plan_dose

    if goal not in ("none_mild", "none"):
        _fail(f"--goal: must be none_mild or none, got {goal!r}")
    try:
        document = yaml.safe_load(patient_file.read_text()) if patient_file else {}
        description = PatientDescription.model_validate(document or {})
    except (OSError, yaml.YAMLError) as error:
        _fail(f"--patient: cannot read {patient_file}: {error}")
    except ValidationError as error:
        _fail("patient." + format_validation_error(error))
    try:
        result = plan_dose(description, [a.strip() for a in areas.split(",") if a.strip()], product, goal,
                           keep_expression, max_ptosis_risk=max_ptosis, hold_until=hold_until)
    except PlanError as error:
        _fail(str(error))
    if result.plan is None:
        typer.echo(f"no plan: {result.explanation}", err=True)
        raise typer.Exit(code=1)
    chosen = result.chosen
    typer.echo(f"plan: {product} " + ", ".join(f"{a} {u:g} U" for a, u in chosen.areas.items())
               + f" (x{chosen.scale:g} the label pattern)")
    for area in chosen.areas:
        held = (f"; {chosen.held_rate[area]:.0%} still on day {hold_until}" if hold_until else "")
        typer.echo(f"  {area}: {chosen.goal_rate[area]:.0%} of similar patients reach {goal} at day 30{held}; "
                   f"median movement kept {chosen.expression[area]:.0%}")
    typer.echo(f"  predicted eyelid ptosis risk {chosen.eyelid_ptosis_risk:.1%}, brow ptosis risk "
               f"{chosen.brow_ptosis_risk:.1%} (bound {max_ptosis:.1%})")
    typer.echo("\npredicted course for this patient:\n" + score_table(simulate(result.plan, days=180)))
    typer.echo(f"\n{DISCLAIMER}")
    if out is not None:
        document = result.plan.model_dump(include={"patient", "product", "areas"})
        out.write_text("# neuromod plan (model estimate, not medical advice)\n" + yaml.safe_dump(document, sort_keys=False))
        typer.echo(f"wrote {out}")


@app.command("export-sbml")
def export_sbml_command(
    plan_file: Path = typer.Argument(..., help="plan file (YAML or JSON)"),
    out: Path = typer.Option(..., "-o", "--out", help="SBML file to write"),
) -> None:
    """Write the plan's junction and muscle model (one patient) as SBML Level 3."""
    from neuromod.export.sbml import export_sbml

    try:
        plan = load_plan(plan_file)
    except PlanError as error:
        _fail(str(error))
    muscles = export_sbml(plan, out)
    typer.echo(f"wrote {out}: {len(muscles)} muscles, {len(plan.treatment_days)} treatment event(s)")


def example_plans() -> dict[str, Path]:
    """The shipped example plans (name -> path)."""
    folder = resources.files("neuromod").joinpath("examples")
    return {Path(str(p)).stem: Path(str(p)) for p in sorted(folder.iterdir(), key=lambda q: q.name)
            if p.name.endswith(".yaml")}


@app.command("report")
def report_command(
    out: Path = typer.Option(Path("reports/latest"), "--out", help="report folder"),
    days: int = typer.Option(180, "--days", min=1, max=3650),
) -> None:
    """Simulate every shipped example plan and write a report folder (``make run``)."""
    from neuromod.report.course_report import write_report

    index = write_report(example_plans(), out, days)
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

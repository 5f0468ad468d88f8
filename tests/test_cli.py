"""The command line end to end, through the installed console script."""

import json
import os
import subprocess
import sys

import pytest

NEUROMOD = [sys.executable, "-m", "neuromod.cli"]


def run(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([*NEUROMOD, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("product: botox\nareas: {glabella: 20}\n")
    return path


def test_simulate_prints_a_table_and_writes_csv_and_pngs(plan_file, tmp_path):
    out = tmp_path / "out"
    result = run("simulate", plan_file, "--days", 120, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "glabella (contr/rest)" in result.stdout
    assert "not medical advice" in result.stdout
    for name in ("scores.csv", "muscles.csv", "course.png", "face_map.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "course.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "scores.csv").read_text().splitlines()
    assert lines[0] == "day,area,fws_contraction,fws_rest,area_strength"
    assert len(lines) == 1 + 121 * 9  # 121 days x 9 areas


def test_simulate_json_follows_the_documented_shape(plan_file):
    result = run("simulate", plan_file, "--days", 30, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["days"] == list(range(31))
    glabella = doc["areas"]["glabella"]
    assert len(glabella["fws_contraction"]) == 31 and len(glabella["fws_rest"]) == 31
    assert all(0 <= v <= 3 for v in glabella["fws_contraction"])
    corrugator = doc["muscles"]["corrugator_supercilii_right"]
    assert corrugator["dose_units"] > 1 and max(corrugator["blocked_fraction"]) > 0.5
    assert "procerus" in doc["muscles"]


def test_invalid_plan_exits_non_zero_names_the_field_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("product: botox\nareas: {glabella: -3}\n")
    out = tmp_path / "out"
    result = run("simulate", bad, "--out", out)
    assert result.returncode == 2
    assert "areas.glabella: units must be > 0" in result.stderr
    assert not out.exists()


def test_malformed_yaml_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("product: [botox\n")
    result = run("simulate", bad)
    assert result.returncode == 2 and "malformed YAML" in result.stderr


def test_products_sites_and_convert():
    products = run("products")
    assert products.returncode == 0 and "daxibotulinumtoxinA" in products.stdout
    sites = run("sites", "--area", "glabella")
    assert sites.returncode == 0
    assert sum(line.startswith("glabella_") for line in sites.stdout.splitlines()) == 5
    convert = run("convert", 20, "--from", "botox", "--to", "dysport")
    assert convert.returncode == 0
    assert "20 U botox ~ 50 U dysport (range 50-60 U)" in convert.stdout
    assert "NIHMS710244" in convert.stdout
    unknown = run("convert", 20, "--from", "botox", "--to", "nope")
    assert unknown.returncode == 2 and "unknown product 'nope'" in unknown.stderr


def test_report_simulates_every_example(tmp_path):
    out = tmp_path / "report"
    result = run("report", "--out", out, "--days", 150)
    assert result.returncode == 0, result.stderr
    index = (out / "README.md").read_text()
    for name in ("glabella_botox", "glabella_daxxify", "forehead_glabella_botox", "crows_feet_botox", "poor_orbital_rim"):
        assert f"| {name} |" in index
        assert (out / name / "course.png").exists()
    assert (out / "comparison.png").exists()
    assert "not medical advice" in index


def test_trial_json_and_table_with_pngs(tmp_path):
    trial = tmp_path / "trial.yaml"
    trial.write_text(
        "name: cli trial\nseed: 3\nsubjects_per_arm: 300\npopulation: {sex: mixed}\n"
        "arms:\n  - {name: ona, product: botox, areas: {glabella: 20}}\n"
        "  - {name: placebo, product: placebo, areas: {glabella: 0}}\n"
        "follow_up_days: [7, 30, 90]\n"
    )
    as_json = run("trial", trial, "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["arms"]["ona"]["areas"]["glabella"]["inv_none_mild"]["30"] > doc["arms"]["placebo"]["areas"]["glabella"]["inv_none_mild"]["30"]
    table = run("trial", trial, "--out", tmp_path / "figs")
    assert table.returncode == 0, table.stderr
    assert "inv_none_mild" in table.stdout and "not medical advice" in table.stdout
    assert (tmp_path / "figs" / "glabella.png").read_bytes()[:4] == b"\x89PNG"


def test_trial_with_bad_arm_exits_2(tmp_path):
    trial = tmp_path / "trial.yaml"
    trial.write_text("arms:\n  - {name: x, product: botox, areas: {elbow: 20}}\n")
    result = run("trial", trial, "--json")
    assert result.returncode == 2 and "arms.0 (x): areas.elbow: unknown area" in result.stderr


def test_export_sbml_writes_a_file(tmp_path, plan_file):
    out = tmp_path / "model.xml"
    result = run("export-sbml", plan_file, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "<sbml" in out.read_text()[:400] and "treatment_1" in out.read_text()


def test_project_prints_a_table_and_writes_png_and_csv(tmp_path, plan_file):
    result = run("project", plan_file, "--years", 3, "--every", 120, "--out", tmp_path / "proj")
    assert result.returncode == 0, result.stderr
    assert "treated every 120 days vs never treated" in result.stdout
    assert (tmp_path / "proj" / "projection.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "proj" / "projection.csv").read_text().splitlines()) == 1 + 3
    too_soon = run("project", plan_file, "--every", 30)
    assert too_soon.returncode == 2 and "repeat no sooner than 90 days" in too_soon.stderr


def test_plan_command_writes_a_plan_simulate_accepts(tmp_path):
    patient = tmp_path / "patient.yaml"
    patient.write_text("age: 50\nsex: female\n")
    out = tmp_path / "plan.yaml"
    result = run("plan", "--patient", patient, "--areas", "glabella,forehead", "--product", "xeomin",
                 "--goal", "none_mild", "--keep-expression", "0.3", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "of similar patients reach none_mild at day 30" in result.stdout and "ptosis risk" in result.stdout
    again = run("simulate", out, "--days", 30, "--json")
    assert again.returncode == 0, again.stderr
    impossible = run("plan", "--areas", "glabella", "--product", "botox", "--goal", "none", "--keep-expression", "0.95")
    assert impossible.returncode == 1 and "no plan" in impossible.stderr

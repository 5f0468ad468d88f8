"""Every input a new user hit (issue 9, "What a new user hit") that is about validation, cost or
tracebacks, through the real command line: each is refused with exit status 2 and ONE line
``error: <field>: ...`` naming the field, no traceback, nothing written, and quickly (before
any simulation work: the trial cases would take minutes if they ran first)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromod.cli import app
from neuromod.reference.files import MAX_DOCUMENT_BYTES, atomic_output_folder

PLAN = "product: botox\nareas: {glabella: 20}\n"
#: a trial that takes minutes if it runs: any refusal that comes back in seconds came first
BIG_TRIAL = ("subjects_per_arm: 100000\narms: [{name: a, product: botox, areas: {glabella: 20}}]\n"
             "follow_up_days: [30, 90]\n")
TRIAL = "subjects_per_arm: 20\narms: [{name: a, product: botox, areas: {glabella: 20}}]\nfollow_up_days: [30]\n"


def trial_with(line: str) -> str:
    return f"{line}\narms: [{{name: a, product: botox, areas: {{glabella: 20}}}}]\n"


SIXTEEN_AT_ONE_SITE = "product: botox\ninjections:\n" + "  - {site: glabella_procerus, units: 25}\n" * 16
TINY_INJECTIONS = "product: botox\ninjections:\n" + "  - {x_mm: 1, y_mm: 5, units: 0.01}\n" * 20000

# (id, files written into the temporary folder, command line, fragment the one error line contains)
CASES = [
    ("nan-area-simulate", {"p.yaml": "product: botox\nareas: {glabella: .nan}\n"}, ["simulate", "p.yaml"],
     "areas.glabella: must be a finite number"),
    ("nan-area-trial", {"t.yaml": "arms: [{name: a, product: botox, areas: {glabella: .nan}}]\n"},
     ["trial", "t.yaml"], "arms.0.areas.glabella: must be a finite number"),
    ("nan-area-sbml", {"p.yaml": "product: botox\nareas: {glabella: .nan}\n"},
     ["export-sbml", "p.yaml", "-o", "model.xml"], "areas.glabella: must be a finite number"),
    ("nan-treatment-day", {"p.yaml": PLAN + "treatment_days: [0, .nan]\n"}, ["simulate", "p.yaml"],
     "treatment_days.1: must be a finite number"),
    ("units-true", {"p.yaml": "product: botox\ninjections: [{site: glabella_procerus, units: true}]\n"},
     ["simulate", "p.yaml"], "injections.0.units: must be a number"),
    ("units-string", {"p.yaml": "product: botox\ninjections: [{site: glabella_procerus, units: \"20\"}]\n"},
     ["simulate", "p.yaml"], "injections.0.units: must be a number"),
    ("x-string", {"p.yaml": "product: botox\ninjections: [{x_mm: abc, y_mm: 5, units: 4}]\n"},
     ["simulate", "p.yaml"], "injections.0.x_mm: must be a number"),
    ("seed-true", {"t.yaml": trial_with("seed: true")}, ["trial", "t.yaml"], "seed: must be a whole number"),
    ("subjects-true", {"t.yaml": trial_with("subjects_per_arm: true")}, ["trial", "t.yaml"],
     "subjects_per_arm: must be a whole number"),
    ("follow-up-true", {"t.yaml": trial_with("follow_up_days: [true, 30]")}, ["trial", "t.yaml"],
     "follow_up_days.0: must be a whole number"),
    ("duplicate-key", {"p.yaml": "product: botox\nareas: {glabella: 20}\nareas: {forehead: 10}\n"},
     ["simulate", "p.yaml"], "duplicate key 'areas'"),
    ("duplicate-key-json", {"p.json": '{"product": "botox", "product": "dysport", "areas": {"glabella": 20}}'},
     ["simulate", "p.json"], "duplicate key 'product'"),
    ("rest-above-contraction",
     {"p.yaml": PLAN + "patient: {baseline: {glabella: {rest: 3, contraction: 0}}}\n"}, ["simulate", "p.yaml"],
     "patient.baseline.glabella: rest: the grade at rest (3) must be <= the grade at contraction (0)"),
    ("saline-tiny", {"p.yaml": PLAN + "saline_ml: 1e-300\n"}, ["simulate", "p.yaml"],
     "saline_ml: must be greater than or equal to 0.25"),
    ("every-inf", {"p.yaml": PLAN + "every_days: .inf\n"}, ["simulate", "p.yaml"],
     "every_days: must be a finite number"),
    ("every-tiny", {"p.yaml": PLAN + "every_days: 0.001\n"}, ["simulate", "p.yaml"],
     "every_days: must be >= 90 days"),
    ("every-tiny-placebo", {"p.yaml": "product: placebo\nareas: {glabella: 0}\nevery_days: 1\n"},
     ["simulate", "p.yaml"], "every_days: 1 days until day 3650 gives 3651 treatments; allowed: at most 50"),
    ("until-huge", {"p.yaml": PLAN + "every_days: 120\nuntil_day: 1e12\n"}, ["simulate", "p.yaml"],
     "until_day: must be less than or equal to 3650"),
    ("until-list", {"p.yaml": PLAN + "every_days: 120\nuntil_day: [1]\n"}, ["simulate", "p.yaml"],
     "until_day: must be a number"),
    ("tiny-injections", {"p.yaml": TINY_INJECTIONS}, ["simulate", "p.yaml"],
     "injections: has too many entries, got a list of 20000; allowed: at most 100 injections"),
    ("sixteen-at-one-site", {"p.yaml": SIXTEEN_AT_ONE_SITE}, ["simulate", "p.yaml"],
     "16 entries at one point (0, 3) mm (injections.0, injections.1, injections.2 and 13 more) add up to 400"),
    ("non-utf8", {"p.yaml": "product: botox\nareas: {glabella: 20}\n# caf\xe9\n".encode("latin-1")},
     ["simulate", "p.yaml"], "not UTF-8 text (byte 0xe9 at line 3)"),
    ("oversized", {"p.yaml": PLAN + "#" * MAX_DOCUMENT_BYTES + "\n"}, ["simulate", "p.yaml"],
     f"larger than {MAX_DOCUMENT_BYTES} bytes"),
    ("yaml-aliases", {"p.yaml": "product: botox\nareas: &a {glabella: 20}\nx: *a\n"}, ["simulate", "p.yaml"],
     "anchors and aliases"),
    ("days-zero", {"p.yaml": PLAN}, ["simulate", "p.yaml", "--days", "0"], "--days: must be greater than or equal to 1"),
    ("days-text", {"p.yaml": PLAN}, ["simulate", "p.yaml", "--days", "abc"], "--days: must be a valid integer"),
    ("convert-nan", {}, ["convert", "--from", "botox", "--to", "dysport", "--", "nan"],
     "units: must be a finite number (not NaN or infinity), got nan; allowed: 0-400 botox units"),
    ("convert-inf", {}, ["convert", "--from", "botox", "--to", "dysport", "--", "inf"],
     "units: must be a finite number"),
    ("convert-negative", {}, ["convert", "--from", "botox", "--to", "dysport", "--", "-3"],
     "units: must be greater than or equal to 0"),
    ("convert-huge", {}, ["convert", "--from", "botox", "--to", "dysport", "--", "1e308"],
     "units: must be <= 400, got 1e+308; allowed: 0-400 botox units"),
    ("convert-unknown", {}, ["convert", "20", "--from", "nope", "--to", "dysport"], "--from: unknown product 'nope'"),
    ("project-every-tiny", {"p.yaml": PLAN}, ["project", "p.yaml", "--every", "0.0001"],
     "--every (every_days): must be >= 90 days"),
    ("project-every-nan", {"p.yaml": PLAN}, ["project", "p.yaml", "--every", "nan"], "--every: must be a finite number"),
    ("plan-unknown-product", {}, ["plan", "--areas", "glabella", "--product", "nope"], "--product: unknown product 'nope'"),
    ("subjects-huge", {"t.yaml": TRIAL}, ["trial", "t.yaml", "--subjects", "1000000000"],
     "--subjects: must be less than or equal to 10000000"),
    ("subjects-zero", {"t.yaml": TRIAL}, ["trial", "t.yaml", "--subjects", "0"],
     "--subjects: must be greater than or equal to 1"),
    # a visit at day 3650 is allowed (memory bounded by the chunk: tests/test_trial_speed.py); beyond is not
    ("follow-up-long", {"t.yaml": trial_with("follow_up_days: [30, 3651]")}, ["trial", "t.yaml"],
     "follow_up_days.1: must be less than or equal to 3650"),
    ("workers-zero", {"t.yaml": TRIAL}, ["trial", "t.yaml", "--workers", "0"], "--workers: must be greater than or equal to 1"),
    ("dask-malformed", {"t.yaml": BIG_TRIAL}, ["trial", "t.yaml", "--dask", "not an address"],
     "--dask: malformed scheduler address"),
    ("dask-unreachable", {"t.yaml": BIG_TRIAL}, ["trial", "t.yaml", "--dask", "tcp://127.0.0.1:1"],
     "--dask: cannot reach a Dask scheduler at tcp://127.0.0.1:1 within 3 s"),
    ("simulate-out-is-file", {"p.yaml": PLAN, "taken": "keep"}, ["simulate", "p.yaml", "--out", "taken"],
     "--out: taken is a file"),
    ("simulate-out-parent-missing", {"p.yaml": PLAN}, ["simulate", "p.yaml", "--out", "missing/out"],
     "--out: the parent folder"),
    ("trial-out-is-file", {"t.yaml": BIG_TRIAL, "taken": "keep"}, ["trial", "t.yaml", "--out", "taken"],
     "--out: taken is a file"),
    ("trial-out-parent-missing", {"t.yaml": BIG_TRIAL}, ["trial", "t.yaml", "--out", "missing/out"],
     "--out: the parent folder"),
    ("report-out-is-file", {"taken": "keep"}, ["report", "--out", "taken"], "--out: taken is a file"),
    ("report-out-parent-missing", {}, ["report", "--out", "missing/out"], "--out: the parent folder"),
    ("sbml-out-parent-missing", {"p.yaml": PLAN}, ["export-sbml", "p.yaml", "-o", "missing/model.xml"],
     "--out: the parent folder"),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("files, argv, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_field_exit_2_nothing_written(tmp_path, monkeypatch, files, argv, fragment):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    result = CliRunner().invoke(app, argv)
    elapsed = time.perf_counter() - start
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert len(lines[0]) < 600, "an error line is a sentence, not a dump of the input"
    assert "Traceback" not in result.output and result.stdout == ""
    assert _snapshot(tmp_path) == before, "nothing is written when the input is refused"
    # refused before any work: the big trial would take minutes; a 3 s connect timeout is the slowest case
    assert elapsed < 20, f"took {elapsed:.1f} s"


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    """simulate --out: a failure while writing (here: the face-map figure) removes the partial
    folder; the target never appears."""
    import neuromod.report.plots as plots

    (tmp_path / "p.yaml").write_text(PLAN)
    monkeypatch.chdir(tmp_path)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_face_map", broken)
    result = CliRunner().invoke(app, ["simulate", "p.yaml", "--out", "out"])
    assert result.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"], "no out/, no temporary folder left"


def test_an_existing_output_folder_keeps_its_other_files_and_gets_new_ones_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "scores.csv").write_text("old")
    with atomic_output_folder(out) as staging:
        (staging / "scores.csv").write_text("new")
        (staging / "sub").mkdir()
        (staging / "sub" / "a.txt").write_text("a")
        assert (out / "scores.csv").read_text() == "old", "nothing changes until the work is done"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "scores.csv").read_text() == "new" and (out / "sub" / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "scores.csv", "sub"], "no temporary folder left"
    with pytest.raises(RuntimeError), atomic_output_folder(out) as staging:
        (staging / "scores.csv").write_text("half")
        raise RuntimeError("failed mid-way")
    assert (out / "scores.csv").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "scores.csv", "sub"]


def test_simulate_out_still_writes_every_file(tmp_path, monkeypatch):
    """The atomic writer changes where files are staged, not what is written."""
    (tmp_path / "p.yaml").write_text(PLAN)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["simulate", "p.yaml", "--days", "30", "--out", "out"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["course.png", "face_map.png", "muscles.csv",
                                                                     "scores.csv"]
    assert f"wrote {Path('out') / 'scores.csv'}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "p.yaml"]

"""The package as a user installs it: a wheel built from pyproject.toml holds every data file
the code reads, and a trial runs from the installed wheel (not from the source tree).

Built offline with the project's own setuptools (``--no-build-isolation``; ``setuptools>=68``
is in the test extras); installed with ``--no-deps`` into a fresh virtual environment whose
dependencies come from the project environment through a ``.pth`` line (so no registry is
needed). About 20-40 s.
"""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "neuromod"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                             "-w", str(folder), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = folder.glob("neuromod-*.whl")
    return built


def test_wheel_holds_every_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p for p in (PACKAGE / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    examples = list((PACKAGE / "examples").glob("*.yaml"))
    assert len(data) >= 15 and examples
    missing = [str(p.relative_to(PACKAGE.parent)) for p in data + examples
               if str(p.relative_to(PACKAGE.parent)).replace(os.sep, "/") not in names]
    assert missing == [], f"left out of the wheel: {missing}"


def test_a_trial_runs_from_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # dependencies (numpy, scipy, numba, ...) from the project environment, after the wheel's own files
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = (
        "import neuromod, json\n"
        "from neuromod.trials.trial import parse_trial, run_trial\n"
        "spec = parse_trial({'name': 'wheel', 'seed': 1, 'subjects_per_arm': 40, 'follow_up_days': [30, 60],\n"
        "                    'arms': [{'name': 'a', 'product': 'botox', 'areas': {'glabella': 20}}]})\n"
        "result = run_trial(spec, progress=False)\n"
        "print(neuromod.__file__)\n"
        "print(json.dumps(result['arms']['a']['areas']['glabella']['inv_none_mild']))\n"
        "print(json.dumps(result['arms']['a']['adverse_events_pct']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    location, none_mild, events = run.stdout.strip().splitlines()[-3:]
    assert location.startswith(site), location  # the installed copy, not the source tree
    assert float(none_mild.split('"30": ')[1].split(",")[0]) > 50  # the label plan works from the wheel
    assert "eyelid_ptosis" in events

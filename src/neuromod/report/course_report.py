"""The ``make run`` report: every shipped example plan simulated, summarised and plotted."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuromod.model.simulate import DISCLAIMER, SimulationResult, simulate  # noqa: E402
from neuromod.report.plots import FOOTNOTE  # noqa: E402
from neuromod.report.tables import score_table, write_outputs  # noqa: E402
from neuromod.schemas.plan import load_plan  # noqa: E402

def _event_units(result: SimulationResult, event: str) -> float:
    """Units reaching the danger muscles of ``event`` (both sides), from the safety assessment."""
    return sum(m.units for m in result.safety.danger_muscles.values() if m.event == event)


def plot_comparison(results: dict[str, SimulationResult], path: Path) -> Path:
    """Expected FWS at contraction of each plan's first treated area against day."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, result in results.items():
        area = result.treated_areas[0]
        ax.plot(result.days, result.courses[area].fws_contraction, label=f"{name} ({area})")
    ax.set_xlabel("day after treatment")
    ax.set_ylabel("expected FWS grade at max contraction")
    ax.set_ylim(-0.05, 3.05)
    ax.set_title("example plans: predicted course of the first treated area")
    ax.legend(fontsize=7, ncol=2)
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(plans: dict[str, Path], out: Path, days: int = 180) -> Path:
    """Simulate each plan, write its outputs into ``out/<name>/`` and an index ``out/README.md``."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, SimulationResult] = {}
    rows = []
    for name, path in plans.items():
        result = simulate(load_plan(path), days=days)
        results[name] = result
        write_outputs(result, out / name, title=name)
        (out / name / "scores.txt").write_text(score_table(result) + "\n")
        area = result.treated_areas[0]
        course = result.courses[area]
        rows.append(
            f"| {name} | {result.plan.product} | {result.plan.total_units():g} | {area} | "
            f"{course.baseline_contraction:.2f} | {course.fws_contraction.min():.2f} | {course.onset_day} | "
            f"{course.peak_day} | {course.wear_off_day} | {_event_units(result, 'eyelid_ptosis'):.3f} | "
            f"{100 * result.safety.risk['eyelid_ptosis']:.1f} | {100 * result.safety.risk['brow_ptosis']:.1f} |"
        )
    plot_comparison(results, out / "comparison.png")
    index = out / "README.md"
    index.write_text(
        "# neuromod report\n\n"
        f"> {DISCLAIMER}\n\n"
        "Typical patient unless the plan says otherwise: woman, 45, moderate-to-severe lines.\n"
        "FWS: expected Facial Wrinkle Scale grade at maximum contraction (0 none - 3 severe).\n"
        "Days: onset = strength down 20 %; peak = 90 % of the best improvement reached; wear-off = less than half of\n"
        "the best improvement left. Levator: onabotulinumtoxinA-equivalent units reaching the levator\n"
        "palpebrae superioris (both sides); eyelid / brow ptosis: predicted risk (%) for patients like this one\n"
        "(each plan's scores.txt has the full safety block).\n\n"
        "| plan | product | units | area | FWS day 0 | best FWS | onset d | peak d | wear-off d | levator U "
        "| eyelid ptosis % | brow ptosis % |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "![comparison](comparison.png)\n\n"
        + "\n".join(f"- [{name}]({name}/scores.txt): ![course]({name}/course.png)" for name in plans)
        + "\n"
    )
    return index

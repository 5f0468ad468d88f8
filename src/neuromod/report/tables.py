"""A simulation's course as a table (terminal) and as files (CSV and PNG) for one plan."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from neuromod.model.adverse_events import SafetyAssessment
from neuromod.model.simulate import SimulationResult

#: days shown in the terminal table (days after the first treatment).
TABLE_DAYS = (0, 1, 2, 3, 4, 7, 14, 30, 60, 90, 120, 150, 180, 270, 365)


def score_table(result: SimulationResult) -> str:
    """Expected FWS grades (contraction / rest) of the treated areas at standard days."""
    areas = result.treated_areas
    days = [d for d in TABLE_DAYS if d <= result.days[-1]]
    header = f"{'day':>5} " + " ".join(f"{a + ' (contr/rest)':>26}" for a in areas)
    lines = [header]
    for day in days:
        k = int(np.searchsorted(result.days, day))
        cells = [f"{result.courses[a].fws_contraction[k]:>12.2f} / {result.courses[a].fws_rest[k]:<11.2f}"
                 for a in areas]
        lines.append(f"{day:>5} " + " ".join(f"{c:>26}" for c in cells))
    lines.append("")
    for a in areas:
        c = result.courses[a]
        lines.append(f"{a}: onset day {c.onset_day}, peak day {c.peak_day}, wear-off day {c.wear_off_day}")
    if result.safety is not None:
        lines += ["", *safety_lines(result.safety)]
    return "\n".join(lines)


def event_rule(safety: SafetyAssessment, event: str) -> str:
    """The block an event needs, in words: its threshold and, for an event with a susceptible
    group, the group's lower one and the muscles it reads (``block > 70%; > 30% of frontalis
    lower or middle in the 1% whose brow rests on frontalis tone``); the same text in
    ``simulate``'s table and the web face chart."""
    text = f"block > {safety.block_thresholds[event]:.0%}"
    group = safety.susceptible.get(event)
    if group is None:
        return text
    muscles = f" of {muscle_list(group.muscles)}" if group.muscles else ""
    return f"{text}; > {group.block_threshold:.0%}{muscles} in the {group.share:.0%} {group.who}"


def muscle_list(names: tuple[str, ...]) -> str:
    """Muscles in words, sharing their first word: ("frontalis_lower", "frontalis_middle") ->
    "frontalis lower or middle"; otherwise joined by "or"."""
    words = [name.split("_") for name in names]
    head = words[0][0]
    if len(words) > 1 and all(w[0] == head and len(w) > 1 for w in words):
        return f"{head} " + " or ".join(" ".join(w[1:]) for w in words)
    return " or ".join(" ".join(w) for w in words)


def safety_lines(safety: SafetyAssessment) -> list[str]:
    """The safety block: units and peak block reaching each danger muscle, the risk of each
    adverse event for patients like this one, and warnings."""
    lines = ["safety (model estimate for patients like this one):",
             f"  {'danger muscle':<38} {'event':<14} {'units':>8} {'peak block':>11}"]
    for key, muscle in safety.danger_muscles.items():
        lines.append(f"  {key:<38} {muscle.event:<14} {muscle.units:>8.3f} {muscle.peak_blocked_fraction:>10.1%}")
    lines.append("  " + ", ".join(f"{name.replace('_', ' ')} risk {risk:.1%} ({event_rule(safety, name)})"
                                  for name, risk in safety.risk.items()))
    lines += [f"  WARNING: {warning}" for warning in safety.warnings]
    return lines


def write_outputs(result: SimulationResult, out: Path, title: str | None = None) -> list[Path]:
    """CSV of the course, PNG of the course and PNG of the face map into ``out``."""
    from neuromod.report.plots import plot_course, plot_face_map

    out.mkdir(parents=True, exist_ok=True)
    scores_csv = out / "scores.csv"
    with scores_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "area", "fws_contraction", "fws_rest", "area_strength"])
        for area, course in result.courses.items():
            for k, day in enumerate(result.days):
                writer.writerow([f"{day:g}", area, f"{course.fws_contraction[k]:.4f}",
                                 f"{course.fws_rest[k]:.4f}", f"{course.strength[k]:.4f}"])
    muscles_csv = out / "muscles.csv"
    with muscles_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "muscle", "dose_units", "blocked_fraction", "strength"])
        doses = result.spread.dose_per_muscle
        for j, muscle in enumerate(result.muscles):
            for k, day in enumerate(result.days):
                writer.writerow([f"{day:g}", muscle, f"{doses[j]:.5f}",
                                 f"{result.output.blocked_fraction[0, j, k]:.5f}",
                                 f"{result.output.strength[0, j, k]:.5f}"])
    return [scores_csv, muscles_csv, plot_course(result, out / "course.png", title),
            plot_face_map(result, out / "face_map.png", title=title)]

"""Print the numbers of docs/course.md: the typical patient's glabella course by product and dose.

Run from the repository root: ``.venv/bin/python docs/course_shape.py`` (about a minute; each
line is one ``neuromod simulate`` of ``{product: P, areas: {glabella: U}}`` over 365 days, no
sampling noise). Columns: best improvement of the expected FWS at contraction (grades), onset
and peak days (``simulate --json`` ``areas.glabella.onset_day`` / ``peak_day``), half-way back
(``wear_off_day``), the first day back within 0.25 grade of baseline, the improvement left at
days 150, 270 and 300, the largest rise within 14 days after the plateau, and the masseter
plan's bulk loss (30 U per side) at 12 and 24 weeks. Model estimates, not medical advice.
"""

from __future__ import annotations

import numpy as np

from neuromod import parse_plan, simulate
from neuromod.reference.products import load_products


def glabella_row(product: str, units: float) -> str:
    course = simulate(parse_plan({"product": product, "areas": {"glabella": units}}), days=365).courses["glabella"]
    fws = course.fws_contraction
    improvement = fws[0] - fws
    best_day = int(np.argmax(improvement))
    within = np.flatnonzero(improvement[best_day:] <= 0.25)
    rise = (max(fws[d + 14] - fws[d] for d in range(int(course.peak_day), fws.size - 14))
            if course.peak_day is not None else float("nan"))
    return (f"| {product} | {units:g} | {improvement.max():.2f} | {course.onset_day} | {course.peak_day} | "
            f"{course.wear_off_day} | {best_day + int(within[0]) if within.size else None} | "
            f"{improvement[150]:.2f} | {improvement[270]:.2f} | {improvement[300]:.2f} | {rise:.2f} |")


def main() -> None:
    print("| product | units | best | onset | peak | half-way back | within 0.25 | left d150 | left d270 | "
          "left d300 | max 14-day rise |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, product in load_products().items():
        if not product.contains_toxin:
            continue
        label = product.label_glabella_units
        doses = sorted({1.0, 2.0, 3.0, 5.0} | {round(label * f) for f in (0.5, 1.0, 2.0)}
                       | ({10.0, 75.0, 100.0, 125.0} if name == "dysport" else set()))
        for units in doses:
            print(glabella_row(name, units))
    result = simulate(parse_plan({"product": "botox", "areas": {"masseter": 60}}), days=365)
    atrophy = result.output.atrophy[0, result.muscles.index("masseter_left")]
    print(f"\nmasseter 30 U per side: bulk loss {100 * atrophy[84]:.1f} % at day 84, {100 * atrophy[168]:.1f} % at "
          f"day 168 (ratio {atrophy[168] / atrophy[84]:.2f}; published 5.47/11.99 = 0.46), thinnest at day "
          f"{int(np.argmax(atrophy))}, {100 * atrophy[365]:.2f} % left at day 365")


if __name__ == "__main__":
    main()

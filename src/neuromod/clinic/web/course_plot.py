"""The predicted course per area as an inline SVG plot, with what was observed at follow-ups.

One plot for the plan editor (the draft's prediction, redrawn as the plan changes) and the
patient page (the latest plan's prediction with the follow-ups' grades over it). Input is the
course JSON of :func:`neuromod.model.simulate.simulate` (``to_json()``: ``days`` and, per
area, ``fws_contraction``, ``fws_rest``, ``residual_expression``) as stored with every plan.

The x axis is days after the planned treatment (the course's own axis starts at the
patient's first treatment, ``treatment_day`` days earlier); the y axis is the expected Facial
Wrinkle Scale grade (0 none ... 3 severe). Onset, peak and wear-off (the definitions of
:func:`neuromod.model.simulate.area_landmarks`, measured from the planned treatment) are
marked per area.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

import numpy as np

from neuromod.model.simulate import area_landmarks
from neuromod.reference.parameters import default_parameters

#: plot size in SVG user units (scaled by CSS to the column width).
WIDTH, HEIGHT = 640.0, 300.0
LEFT, RIGHT, TOP, BOTTOM = 46.0, 12.0, 14.0, 40.0
#: FWS grades run 0-3.
FWS_MAX = 3.0
#: one colour per area, in the order the areas are drawn (cycled).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Landmarks:
    """Days after the planned treatment (None: not reached within the horizon)."""

    onset_day: float | None
    peak_day: float | None
    wear_off_day: float | None
    residual_expression_at_peak: float | None


@dataclass(frozen=True)
class Observation:
    """FWS grades seen at a follow-up, ``day`` days after the planned treatment."""

    day: float
    area: str
    rest: float
    contraction: float
    label: str


def window(course: dict, treatment_day: float) -> tuple[np.ndarray, int]:
    """The course's days after the planned treatment, and the index where they start."""
    days = np.asarray(course["days"], dtype=float)
    start = int(np.searchsorted(days, treatment_day))
    return days[start:] - treatment_day, start


def area_course_landmarks(course: dict, area: str, treatment_day: float) -> Landmarks:
    """Onset, peak and wear-off of ``area`` after the planned treatment."""
    days, start = window(course, treatment_day)
    data = course["areas"][area]
    fws = np.asarray(data["fws_contraction"], dtype=float)[start:]
    strength = np.asarray(data["residual_expression"], dtype=float)[start:]
    onset, peak, wear_off = area_landmarks(days, fws, strength, default_parameters().scores)
    at_peak = float(strength[int(np.searchsorted(days, peak))]) if peak is not None else None
    return Landmarks(onset, peak, wear_off, at_peak)


def _x(day: float, horizon: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * day / horizon


def _y(grade: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - grade / FWS_MAX)


def _polyline(days: np.ndarray, values: np.ndarray, horizon: float, colour: str, css: str) -> str:
    step = max(1, len(days) // 240)  # ~240 vertices are plenty at this width
    coords = " ".join(f"{_x(d, horizon):.1f},{_y(v):.1f}" for d, v in zip(days[::step], values[::step]))
    return f'<polyline class="{css}" points="{coords}" stroke="{colour}" fill="none"/>'


def course_svg(course: dict, treatment_day: float, areas: Iterable[str],
               observations: Iterable[Observation] = (), element_id: str = "") -> str:
    """The plot as an inline ``<svg>``: per area FWS at contraction (solid) and at rest (dashed),
    landmarks (onset ▲, peak ●, wear-off ■ on the contraction line) and observed grades
    (filled: contraction, open: rest)."""
    days, start = window(course, treatment_day)
    horizon = float(days[-1]) if len(days) > 1 else 1.0
    areas = [a for a in areas if a in course["areas"]]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="course-plot" viewBox="0 0 {WIDTH:g} {HEIGHT:g}"'
           + (f' id="{escape(element_id)}"' if element_id else "")
           + ' role="img" aria-label="predicted Facial Wrinkle Scale grade per area over the days after treatment">']
    for grade in range(int(FWS_MAX) + 1):
        out.append(f'<line class="grid" x1="{LEFT:g}" x2="{WIDTH - RIGHT:g}" y1="{_y(grade):.1f}" y2="{_y(grade):.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6:g}" y="{_y(grade) + 4:.1f}" text-anchor="end">{grade}</text>')
    tick_step = 30 if horizon <= 400 else 90
    for day in range(0, int(horizon) + 1, tick_step):
        out.append(f'<text class="tick" x="{_x(day, horizon):.1f}" y="{HEIGHT - BOTTOM + 14:g}" '
                   f'text-anchor="middle">{day}</text>')
    out.append(f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2:g}" y="{HEIGHT - 6:g}" text-anchor="middle">'
               "days after the planned treatment</text>"
               f'<text class="axis-label" x="12" y="{(TOP + HEIGHT - BOTTOM) / 2:g}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:g})">FWS grade</text>')
    for i, area in enumerate(areas):
        colour = PALETTE[i % len(PALETTE)]
        data = course["areas"][area]
        contraction = np.asarray(data["fws_contraction"], dtype=float)[start:]
        rest = np.asarray(data["fws_rest"], dtype=float)[start:]
        out.append(f'<g class="area-course" data-area="{escape(area)}">')
        out.append(_polyline(days, contraction, horizon, colour, "fws-contraction"))
        out.append(_polyline(days, rest, horizon, colour, "fws-rest"))
        marks = area_course_landmarks(course, area, treatment_day)
        for name, day, shape in (("onset", marks.onset_day, "tri"), ("peak", marks.peak_day, "dot"),
                                 ("wear-off", marks.wear_off_day, "sq")):
            if day is None:
                continue
            grade = float(np.interp(day, days, contraction))
            x, y = _x(day, horizon), _y(grade)
            title = f"<title>{escape(area.replace('_', ' '))} {name}: day {day:g}</title>"
            if shape == "tri":
                mark = f'<path class="landmark-{name}" d="M {x:.1f} {y - 5:.1f} l 5 9 l -10 0 Z" fill="{colour}">{title}</path>'
            elif shape == "dot":
                mark = f'<circle class="landmark-{name}" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}">{title}</circle>'
            else:
                mark = (f'<rect class="landmark-{name}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" '
                        f'fill="{colour}">{title}</rect>')
            out.append(f'<line class="landmark-line" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP:g}" '
                       f'y2="{HEIGHT - BOTTOM:g}" stroke="{colour}"/>{mark}')
        out.append("</g>")
    colours = {area: PALETTE[i % len(PALETTE)] for i, area in enumerate(areas)}
    for seen in observations:
        if seen.area not in colours or not 0 <= seen.day <= horizon:
            continue
        x = _x(seen.day, horizon)
        title = (f"<title>{escape(seen.label)}: {escape(seen.area.replace('_', ' '))} contraction "
                 f"{seen.contraction:g}, rest {seen.rest:g}</title>")
        out.append(f'<g class="observed" data-area="{escape(seen.area)}" data-day="{seen.day:g}">'
                   f'<circle class="observed-contraction" cx="{x:.1f}" cy="{_y(seen.contraction):.1f}" r="5.5" '
                   f'fill="{colours[seen.area]}" stroke="#000">{title}</circle>'
                   f'<circle class="observed-rest" cx="{x:.1f}" cy="{_y(seen.rest):.1f}" r="5.5" fill="#fff" '
                   f'stroke="{colours[seen.area]}" stroke-width="2">{title}</circle></g>')
    legend_x = LEFT + 8
    for i, area in enumerate(areas):
        out.append(f'<text class="legend" x="{legend_x:g}" y="{TOP + 12 + 14 * i:g}" fill="{colours[area]}">'
                   f"{escape(area.replace('_', ' '))}</text>")
    out.append("</svg>")
    return "".join(out)


def personal_svg(prediction: dict, areas: Iterable[str], element_id: str = "") -> str:
    """The personal prediction as an inline ``<svg>``: per area the median expected FWS grade at
    maximum contraction (line) inside its 90 % band (p05-p95, shaded) from the last session to
    the horizon, the suggested re-treatment day (dashed line) and the investigator-graded
    contraction observations of that cycle (dots). Input: ``personalize(...).to_json()`` (days
    from the first session); the x axis is days after the last session."""
    areas = [a for a in areas if a in prediction["areas"]]
    if not areas:
        return ""
    first = prediction["areas"][areas[0]]
    days = np.asarray(first["days"], dtype=float)
    start = float(days[0])
    days = days - start
    horizon = float(days[-1]) if len(days) > 1 else 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="course-plot personal-plot" viewBox="0 0 {WIDTH:g} {HEIGHT:g}"'
           + (f' id="{escape(element_id)}"' if element_id else "")
           + ' role="img" aria-label="personal prediction: median and 90 % band of the FWS grade at contraction">']
    for grade in range(int(FWS_MAX) + 1):
        out.append(f'<line class="grid" x1="{LEFT:g}" x2="{WIDTH - RIGHT:g}" y1="{_y(grade):.1f}" y2="{_y(grade):.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6:g}" y="{_y(grade) + 4:.1f}" text-anchor="end">{grade}</text>')
    for day in range(0, int(horizon) + 1, 30 if horizon <= 400 else 90):
        out.append(f'<text class="tick" x="{_x(day, horizon):.1f}" y="{HEIGHT - BOTTOM + 14:g}" '
                   f'text-anchor="middle">{day}</text>')
    out.append(f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2:g}" y="{HEIGHT - 6:g}" text-anchor="middle">'
               "days after the last session</text>"
               f'<text class="axis-label" x="12" y="{(TOP + HEIGHT - BOTTOM) / 2:g}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:g})">FWS grade (contraction)</text>')
    step = max(1, len(days) // 240)
    colours = {area: PALETTE[i % len(PALETTE)] for i, area in enumerate(areas)}
    for area in areas:
        bands = prediction["areas"][area]["fws_contraction"]
        low, median, high = (np.asarray(bands[k], dtype=float) for k in ("p05", "median", "p95"))
        upper = " ".join(f"{_x(d, horizon):.1f},{_y(v):.1f}" for d, v in zip(days[::step], high[::step]))
        lower = " ".join(f"{_x(d, horizon):.1f},{_y(v):.1f}" for d, v in zip(days[::-1][::step], low[::-1][::step]))
        out.append(f'<g class="area-course" data-area="{escape(area)}">'
                   f'<polygon class="personal-band" points="{upper} {lower}" fill="{colours[area]}" '
                   f'fill-opacity="0.18" stroke="none"/>'
                   + _polyline(days, median, horizon, colours[area], "personal-median") + "</g>")
    retreat = prediction.get("retreat_day")
    if retreat is not None and 0 <= retreat - start <= horizon:
        x = _x(retreat - start, horizon)
        out.append(f'<line class="retreat-day" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP:g}" y2="{HEIGHT - BOTTOM:g}" '
                   f'stroke="#333" stroke-dasharray="4 3"><title>suggested re-treatment: day {retreat - start:g} '
                   "after the last session</title></line>")
    for seen in prediction.get("observations", []):
        area, grade = seen.get("area"), seen.get("fws_contraction")
        if area not in colours or grade is None or not 0 <= seen["day"] - start <= horizon:
            continue
        x = _x(seen["day"] - start, horizon)
        out.append(f'<circle class="observed-contraction" cx="{x:.1f}" cy="{_y(grade):.1f}" r="5.5" '
                   f'fill="{colours[area]}" stroke="#000"><title>{escape(seen.get("rater", "investigator"))}: '
                   f'{escape(area.replace("_", " "))} contraction {grade} on day {seen["day"] - start:g}</title></circle>')
    for i, area in enumerate(areas):
        out.append(f'<text class="legend" x="{LEFT + 8:g}" y="{TOP + 12 + 14 * i:g}" fill="{colours[area]}">'
                   f"{escape(area.replace('_', ' '))}</text>")
    out.append("</svg>")
    return "".join(out)

"""The face chart: the model's face map drawn as SVG, so what the injector clicks is what the
model computes.

Drawn from :func:`neuromod.reference.anatomy.load_face_map` only (no geometry of its own):
the outline ellipse, every muscle region (ellipse or elliptical ring, at its angle), every
standard site as a clickable point, and the muscles whose ``danger`` column names an adverse
event (levator palpebrae superioris: eyelid ptosis; lower frontalis: brow ptosis; ...) hatched
as danger zones.

Coordinates: the SVG user unit is one millimetre of the face map. The face map has x towards
the patient's left (the viewer's right) and y up; SVG has y down, so ``svg_y = -y_mm`` and an
ellipse at ``angle_deg`` (counter-clockwise, y up) is rotated by ``-angle_deg`` in SVG. The
chart's scripts invert the same mapping (``x_mm = svg_x``, ``y_mm = -svg_y``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from neuromod.reference.anatomy import FaceMap, MuscleRegion, load_face_map

#: margin around the outline (mm) so points at the edge stay clickable.
MARGIN_MM = 6.0


@dataclass(frozen=True)
class ChartPoint:
    """A point to draw on a chart (an injection of a plan or session): where and how much."""

    x_mm: float
    y_mm: float
    units: float
    label: str


def view_box(face_map: FaceMap) -> str:
    """The SVG ``viewBox`` covering the outline (mm, y flipped)."""
    x0, x1, y0, y1 = face_map.bounds_mm
    return (f"{x0 - MARGIN_MM:g} {-(y1 + MARGIN_MM):g} {x1 - x0 + 2 * MARGIN_MM:g} "
            f"{y1 - y0 + 2 * MARGIN_MM:g}")


def _region_shape(region: MuscleRegion) -> str:
    """One region as an SVG element (a ring is an even-odd path of two ellipses)."""
    cx, cy = region.cx_mm, -region.cy_mm
    a, b = region.semi_major_mm, region.semi_minor_mm
    rotate = f'transform="rotate({-region.angle_deg:g} {cx:g} {cy:g})"'
    classes = f"muscle area-{escape(region.area)}" + (f" danger danger-{escape(region.danger)}" if region.danger else "")
    data = (f'data-muscle="{escape(region.key)}" data-area="{escape(region.area)}" '
            f'data-danger="{escape(region.danger)}"')
    title = f"<title>{escape(region.key.replace('_', ' '))}" + (
        f" — danger zone: {escape(region.danger.replace('_', ' '))}" if region.danger else "") + "</title>"
    if region.shape == "ring":
        ia, ib = a * region.inner_scale, b * region.inner_scale
        path = (f"M {cx - a:g} {cy:g} a {a:g} {b:g} 0 1 0 {2 * a:g} 0 a {a:g} {b:g} 0 1 0 {-2 * a:g} 0 Z "
                f"M {cx - ia:g} {cy:g} a {ia:g} {ib:g} 0 1 0 {2 * ia:g} 0 a {ia:g} {ib:g} 0 1 0 {-2 * ia:g} 0 Z")
        return f'<path class="{classes}" {data} d="{path}" fill-rule="evenodd" {rotate}>{title}</path>'
    return (f'<ellipse class="{classes}" {data} cx="{cx:g}" cy="{cy:g}" rx="{a:g}" ry="{b:g}" {rotate}>'
            f"{title}</ellipse>")


def face_chart_svg(points: Iterable[ChartPoint] = (), *, interactive: bool = False, element_id: str = "",
                   face_map: FaceMap | None = None, css_class: str = "face-chart") -> str:
    """The face chart as an inline ``<svg>`` element.

    interactive: draw the standard sites as clickable points (the plan editor); otherwise only
    the ``points`` given (a session's injections on the patient page), each a dot whose area
    grows with its units.
    """
    face_map = face_map or load_face_map()
    (cx, cy), (ax, ay) = face_map.layout["outline"]["center_mm"], face_map.layout["outline"]["semi_axes_mm"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" viewBox="{view_box(face_map)}"'
             + (f' id="{escape(element_id)}"' if element_id else "")
             + ' role="img" aria-label="face chart: frontal view, the patient\'s left on the viewer\'s right">',
             ('<defs><pattern id="hatch" width="3" height="3" patternUnits="userSpaceOnUse" '
              'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="3" class="hatch-line"/></pattern></defs>'),
             f'<ellipse class="outline" cx="{cx:g}" cy="{-cy:g}" rx="{ax:g}" ry="{ay:g}"/>',
             '<g class="muscles">']
    parts += [_region_shape(region) for region in face_map.regions if not region.danger]
    parts += [_region_shape(region) for region in face_map.regions if region.danger]
    parts.append("</g>")
    landmarks = face_map.layout.get("landmarks", {})
    parts.append('<g class="landmarks">')
    for name, (lx, ly) in landmarks.items():
        parts.append(f'<circle class="landmark" cx="{lx:g}" cy="{-ly:g}" r="0.9"><title>{escape(name.replace("_", " "))}'
                     f"</title></circle>")
    parts.append("</g>")
    parts.append(f'<text class="side-label" x="{cx - ax:g}" y="{-(cy + ay) + 4:g}">patient right</text>')
    parts.append(f'<text class="side-label" x="{cx + ax:g}" y="{-(cy + ay) + 4:g}" text-anchor="end">patient left</text>')
    if interactive:
        parts.append('<g class="sites">')
        for site in face_map.sites.values():
            parts.append(
                f'<circle class="site" data-site="{escape(site.name)}" data-area="{escape(site.area)}" '
                f'data-x="{site.x_mm:g}" data-y="{site.y_mm:g}" data-depth="{site.depth_mm:g}" '
                f'cx="{site.x_mm:g}" cy="{-site.y_mm:g}" r="2.6"><title>{escape(site.name.replace("_", " "))} '
                f"({escape(site.area.replace('_', ' '))}, {site.depth_mm:g} mm deep)</title></circle>")
        parts.append("</g>")
        parts.append('<g class="injections"></g>')
    else:
        parts.append('<g class="given">')
        for point in points:
            radius = 1.5 + 0.6 * max(point.units, 0.0) ** 0.5
            parts.append(f'<circle class="given-point" cx="{point.x_mm:g}" cy="{-point.y_mm:g}" r="{radius:.2f}">'
                         f"<title>{escape(point.label)}: {point.units:g} U</title></circle>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)

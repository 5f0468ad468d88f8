"""Figures: course of strength and FWS per area, and the face map with the spread field.

Uses matplotlib's Agg backend (files only, no screen). Every figure carries the disclaimer.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from neuromod.model.simulate import DISCLAIMER, SimulationResult, plan_injections  # noqa: E402
from neuromod.model.spread import field_density, field_sigma_mm  # noqa: E402
from neuromod.reference.anatomy import FaceMap, load_face_map  # noqa: E402
from neuromod.reference.parameters import default_parameters  # noqa: E402

FOOTNOTE = "neuromod model estimate for planning and education - not medical advice"


def plot_course(result: SimulationResult, path: Path, title: str | None = None) -> Path:
    """Muscle strength (top) and expected FWS per treated area (bottom) against day."""
    areas = result.treated_areas
    fig, (ax_s, ax_f) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, area in enumerate(areas):
        course = result.courses[area]
        color = colors[i % len(colors)]
        ax_s.plot(result.days, course.strength * 100, color=color, label=area)
        ax_f.plot(result.days, course.fws_contraction, color=color, label=f"{area} (max contraction)")
        ax_f.plot(result.days, course.fws_rest, color=color, ls=":", label=f"{area} (rest)")
        for day, marker, name in ((course.onset_day, "o", "onset"), (course.peak_day, "v", "peak"),
                                  (course.wear_off_day, "s", "wear-off")):
            if day is not None:
                k = int(np.searchsorted(result.days, day))
                ax_f.plot(day, course.fws_contraction[k], marker, color=color, ms=7)
                ax_f.annotate(f"{name} d{day:g}", (day, course.fws_contraction[k]),
                              textcoords="offset points", xytext=(4, 6), fontsize=8, color=color)
    for day in result.plan.treatment_days:
        for ax in (ax_s, ax_f):
            ax.axvline(day, color="grey", lw=0.8, ls="--")
    ax_s.set_ylabel("area strength at max contraction (%)")
    ax_s.set_ylim(0, 105)
    ax_s.legend(fontsize=8, loc="lower right")
    ax_f.set_ylabel("expected FWS grade (0 none - 3 severe)")
    ax_f.set_ylim(-0.05, 3.05)
    ax_f.set_xlabel("day after first treatment")
    ax_f.legend(fontsize=7, loc="lower right")
    ax_s.set_title(title or f"{result.plan.product}: predicted course")
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_face_map(result: SimulationResult, path: Path, face_map: FaceMap | None = None,
                  title: str | None = None) -> Path:
    """Face map: muscles (shaded by dose received), spread field contours, injection points."""
    face_map = face_map or load_face_map()
    params = result.params or default_parameters()
    grid = face_map.grid
    injections = plan_injections(result.points, result.plan)
    sigma = field_sigma_mm(injections.ona_units, injections.volume_ml,
                           result.plan.product_info.spread_factor, params.spread)
    field = (field_density(injections, sigma, grid.x, grid.y) * injections.ona_units[:, None]).sum(axis=0)
    field = np.where(face_map.on_face(grid.x, grid.y), field, np.nan).reshape(grid.shape)
    doses = result.spread.dose_per_muscle
    fig, ax = plt.subplots(figsize=(6.5, 8))
    x0, x1, y0, y1 = face_map.bounds_mm
    outline = face_map.layout["outline"]
    ax.add_patch(Ellipse(outline["center_mm"], 2 * outline["semi_axes_mm"][0], 2 * outline["semi_axes_mm"][1],
                         fill=False, color="black", lw=1.2))
    cmap = plt.get_cmap("Reds")
    top = max(float(doses.max()), 1e-9)
    for j, region in enumerate(face_map.regions):
        shade = cmap(0.15 + 0.85 * min(doses[j] / top, 1.0)) if doses[j] > 0.01 else (0.9, 0.9, 0.9, 1)
        edge = "purple" if region.danger else "grey"
        kw = dict(angle=region.angle_deg, lw=1.5 if region.danger else 0.6)
        ax.add_patch(Ellipse((region.cx_mm, region.cy_mm), 2 * region.semi_major_mm, 2 * region.semi_minor_mm,
                             facecolor=shade, edgecolor=edge, alpha=0.55, **kw))
        if region.shape == "ring":
            s = region.inner_scale
            ax.add_patch(Ellipse((region.cx_mm, region.cy_mm), 2 * s * region.semi_major_mm,
                                 2 * s * region.semi_minor_mm, facecolor="white", edgecolor=edge, **kw))
        if doses[j] >= 0.05:
            ax.annotate(f"{doses[j]:.2g}", (region.cx_mm, region.cy_mm), fontsize=6, ha="center")
    xs = np.unique(grid.x)
    ys = np.unique(grid.y)
    positive = field[np.isfinite(field) & (field > 0)]
    if positive.size:
        levels = np.geomspace(max(positive.max() * 1e-3, 1e-6), positive.max(), 6)
        ax.contour(xs, ys, field, levels=levels, cmap="viridis", linewidths=0.8)
    ax.scatter(injections.x_mm, injections.y_mm, s=12 + 6 * injections.ona_units, c="blue",
               edgecolor="white", zorder=5, label="injection (size ~ units)")
    for name, (lx, ly) in face_map.layout.get("landmarks", {}).items():
        if name.startswith("pupil"):
            ax.plot(lx, ly, "k+", ms=8)
    ax.set_xlim(x0 - 2, x1 + 2)  # as the injector sees the face: patient's left on the right
    ax.set_ylim(y0 - 2, y1 + 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm; + = patient's left, seen on the right)")
    ax.set_ylabel("y (mm from nasion)")
    ax.set_title(title or "injections, spread field and units per muscle\n(purple outline: danger muscle)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["plot_course", "plot_face_map", "DISCLAIMER"]


TRIAL_ENDPOINTS = ("inv_none_mild", "subj_none_mild", "inv_ge1_grade", "composite_ge2_grade")


def plot_trial(result: dict, folder: Path) -> list[Path]:
    """One PNG per scored area: each endpoint (panel) against day, one line per arm."""
    folder.mkdir(parents=True, exist_ok=True)
    areas = sorted({area for arm in result["arms"].values() for area in arm["areas"]})
    paths = []
    for area in areas:
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, sharey=True)
        for ax, endpoint in zip(axes.ravel(), TRIAL_ENDPOINTS):
            for name, arm in result["arms"].items():
                if area in arm["areas"]:
                    series = arm["areas"][area][endpoint]
                    ax.plot([int(d) for d in series], list(series.values()), marker=".", label=name)
            ax.set_title(endpoint, fontsize=9)
            ax.set_ylim(-2, 102)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8)
        for ax in axes[1]:
            ax.set_xlabel("day")
        for ax in axes[:, 0]:
            ax.set_ylabel("% of subjects")
        fig.suptitle(f"{result['name']}: {area}")
        fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        path = folder / f"{area}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_projection(projection, path: Path) -> Path:
    """Expected FWS at rest (static lines) per treated area over the years, treated vs untreated."""
    areas = projection.treated.treated_areas
    fig, axes = plt.subplots(len(areas), 1, figsize=(8, 3.2 * len(areas)), squeeze=False)
    years = projection.treated.days / 365.0
    for ax, area in zip(axes[:, 0], areas):
        ax.plot(years, projection.untreated.courses[area].fws_rest, color="tab:red", label="never treated (rest)")
        ax.plot(years, projection.treated.courses[area].fws_rest, color="tab:blue",
                label=f"treated every {projection.every_days:g} days (rest)")
        ax.plot(years, projection.treated.courses[area].fws_contraction, color="tab:blue", alpha=0.3, lw=0.8,
                label="treated (max contraction)")
        ax.set_title(area, fontsize=9)
        ax.set_ylabel("expected FWS grade")
        ax.set_ylim(-0.05, 3.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("years")
    fig.text(0.01, 0.005, FOOTNOTE, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

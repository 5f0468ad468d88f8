"""The face map: muscles as left/right regions with depth, and the standard injection sites.

Coordinates are millimetres in a frontal view, origin at the soft-tissue nasion, x positive
towards the patient's left, y up (``data/face_map.yaml``). Muscles come from
``data/muscles.csv`` (paired muscles given once, for the left side, and mirrored here) and
sites from ``data/sites.csv``. Muscle keys are ``<muscle>_left`` / ``<muscle>_right`` for
paired muscles and the bare name for midline ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from neuromod.reference.files import read_csv, read_data_yaml

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MuscleRegion:
    """One muscle on one side: an ellipse (or elliptical ring) at a depth."""

    key: str
    muscle: str
    side: str
    shape: str
    cx_mm: float
    cy_mm: float
    semi_major_mm: float
    semi_minor_mm: float
    angle_deg: float
    inner_scale: float
    depth_mm: float
    thickness_mm: float
    typical_units: float
    area: str
    area_weight: float
    danger: str

    def contains(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Whether points (mm) lie inside this region."""
        theta = np.deg2rad(self.angle_deg)
        dx, dy = np.asarray(x) - self.cx_mm, np.asarray(y) - self.cy_mm
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        r2 = (u / self.semi_major_mm) ** 2 + (v / self.semi_minor_mm) ** 2
        inside = r2 <= 1.0
        if self.shape == "ring":
            inside &= r2 >= self.inner_scale**2
        return inside

    @property
    def area_mm2(self) -> float:
        """Surface area of the region (mm^2)."""
        full = np.pi * self.semi_major_mm * self.semi_minor_mm
        return full * (1.0 - self.inner_scale**2) if self.shape == "ring" else full


@dataclass(frozen=True)
class Site:
    """A named standard injection site of a treatment area."""

    name: str
    area: str
    side: str
    x_mm: float
    y_mm: float
    depth_mm: float
    share: float
    target_muscle: str


@dataclass(frozen=True)
class Grid:
    """Cell centres covering the face map (flattened), for integrating fields over regions."""

    x: FloatArray
    y: FloatArray
    spacing_mm: float
    shape: tuple[int, int]

    @property
    def cell_area_mm2(self) -> float:
        return self.spacing_mm**2


class FaceMap:
    """Muscles, sites and outline of the schematic face; see the module docstring."""

    def __init__(self, regions: list[MuscleRegion], sites: list[Site], layout: dict) -> None:
        self.regions = regions
        self.sites = {site.name: site for site in sites}
        self.layout = layout
        self.muscle_keys = [region.key for region in regions]
        self.areas = sorted({site.area for site in sites} | {r.area for r in regions} - {"none"})

    # -- outline -----------------------------------------------------------------------
    def on_face(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Whether points (mm) lie on the face map (inside its outline)."""
        (cx, cy), (ax, ay) = self.layout["outline"]["center_mm"], self.layout["outline"]["semi_axes_mm"]
        return ((np.asarray(x) - cx) / ax) ** 2 + ((np.asarray(y) - cy) / ay) ** 2 <= 1.0

    @property
    def bounds_mm(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the outline."""
        (cx, cy), (ax, ay) = self.layout["outline"]["center_mm"], self.layout["outline"]["semi_axes_mm"]
        return cx - ax, cx + ax, cy - ay, cy + ay

    # -- regions -----------------------------------------------------------------------
    def region(self, key: str) -> MuscleRegion:
        for region in self.regions:
            if region.key == key:
                return region
        raise KeyError(key)

    def area_muscles(self, area: str) -> list[int]:
        """Indices of the muscles whose contraction produces ``area``'s lines."""
        return [i for i, r in enumerate(self.regions) if r.area == area]

    def area_weights(self, shares: Mapping[str, float] | None = None) -> FloatArray:
        """(n_areas, n_muscles) weights: a muscle's share in its area's lines, per side.

        ``shares`` (muscle name -> share of its area, 0-1; ``params.skin.area_share``) replaces
        ``muscles.csv``'s ``area_weight`` for those muscles, and the area's other muscles are
        rescaled to the rest in their published proportions. A paired muscle's weight is split
        evenly between its two sides, so each row sums to 1. ValueError for a muscle not on the
        map, outside every area, or a share outside [0, 1] (or 1 where the area has others).
        """
        per_muscle = {r.muscle: (r.area, r.area_weight) for r in self.regions}
        area_of_share: dict[str, float] = {}
        for muscle, share in (shares or {}).items():
            if muscle not in per_muscle or per_muscle[muscle][0] not in self.areas:
                raise ValueError(f"area share: {muscle!r} is not a muscle in a face-map area")
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"area share {muscle!r}: {share} outside 0-1")
            area_of_share[muscle] = share
        weight = {}
        for area in self.areas:
            members = {m: w for m, (a, w) in per_muscle.items() if a == area}
            fixed = {m: area_of_share[m] for m in members if m in area_of_share}
            rest = {m: w for m, w in members.items() if m not in fixed}
            left, rest_total = 1.0 - sum(fixed.values()), sum(rest.values())
            if fixed and (left < -1e-12 or (rest and rest_total <= 0.0) or (not rest and abs(left) > 1e-9)):
                raise ValueError(f"area shares of {area!r} {fixed} leave {left:.3g} for {sorted(rest)}")
            weight.update(fixed)
            weight.update({m: w * left / rest_total if fixed else w for m, w in rest.items()})
        weights = np.zeros((len(self.areas), len(self.regions)))
        for j, region in enumerate(self.regions):
            if region.area in self.areas:
                per_side = 0.5 if region.side in ("left", "right") else 1.0
                weights[self.areas.index(region.area), j] = weight[region.muscle] * per_side
        return weights

    def typical_units(self) -> FloatArray:
        """(n_muscles,) typical onabotulinumtoxinA units per muscle side (the dose scale)."""
        return np.array([r.typical_units for r in self.regions])

    @cached_property
    def grid(self) -> Grid:
        spacing = float(self.layout["grid"]["spacing_mm"])
        x0, x1, y0, y1 = self.bounds_mm
        xs = np.arange(np.floor(x0), np.ceil(x1) + spacing / 2, spacing)
        ys = np.arange(np.floor(y0), np.ceil(y1) + spacing / 2, spacing)
        gx, gy = np.meshgrid(xs, ys)
        return Grid(gx.ravel(), gy.ravel(), spacing, gx.shape)

    @cached_property
    def region_masks(self) -> BoolArray:
        """(n_muscles, n_cells) membership of each grid cell in each muscle region.

        Each region is tested only on the cells of the square that holds it (half-side its
        larger semi-axis, with a rounding margin): outside it ``r2 > 1``, so the masks are those
        of testing every cell (tested), for a fraction of the work at a command's start."""
        grid = self.grid
        rows, columns = grid.shape
        xs, ys = grid.x[:columns], grid.y[::columns]  # the meshgrid's axes, ascending
        masks = np.zeros((len(self.regions), rows, columns), dtype=bool)
        for mask, region in zip(masks, self.regions):
            half_side = max(region.semi_major_mm, region.semi_minor_mm) * (1.0 + 1e-9) + 1e-9
            near_x = np.flatnonzero(np.abs(xs - region.cx_mm) <= half_side)
            near_y = np.flatnonzero(np.abs(ys - region.cy_mm) <= half_side)
            if near_x.size and near_y.size:
                block = np.s_[near_y[0]:near_y[-1] + 1, near_x[0]:near_x[-1] + 1]
                mask[block] = region.contains(*np.meshgrid(xs[block[1]], ys[block[0]]))
        return masks.reshape(len(self.regions), -1)

    def site(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            raise ValueError(
                f"site: unknown site {name!r}; see `neuromod sites` for the {len(self.sites)} named sites"
            ) from None

    def area_sites(self, area: str) -> list[Site]:
        """The label pattern of ``area``: its standard sites with their shares of the units."""
        sites = [s for s in self.sites.values() if s.area == area]
        if not sites:
            raise ValueError(f"areas: unknown area {area!r}; allowed: {', '.join(self.areas_with_sites)}")
        return sites

    @property
    def areas_with_sites(self) -> list[str]:
        return sorted({s.area for s in self.sites.values()})


def _float(text: str, default: float = 0.0) -> float:
    return float(text) if text.strip() else default


def _regions_from_rows(rows: list[dict[str, str]]) -> list[MuscleRegion]:
    regions = []
    for row in rows:
        sides = ["left", "right"] if row["paired"].strip() == "yes" else ["midline"]
        for side in sides:
            mirror = -1.0 if side == "right" else 1.0
            regions.append(
                MuscleRegion(
                    key=row["muscle"] if side == "midline" else f"{row['muscle']}_{side}",
                    muscle=row["muscle"],
                    side=side,
                    shape=row["shape"].strip(),
                    cx_mm=mirror * float(row["cx_mm"]),
                    cy_mm=float(row["cy_mm"]),
                    semi_major_mm=float(row["semi_major_mm"]),
                    semi_minor_mm=float(row["semi_minor_mm"]),
                    # mirroring x reflects the orientation of the major axis
                    angle_deg=mirror * float(row["angle_deg"] or 0.0),
                    inner_scale=_float(row.get("inner_scale", "")),
                    depth_mm=float(row["depth_mm"]),
                    thickness_mm=float(row["thickness_mm"]),
                    typical_units=float(row["typical_units_per_side"]),
                    area=row["area"].strip(),
                    area_weight=_float(row["area_weight"]),
                    danger=row.get("danger", "").strip(),
                )
            )
    return regions


def _sites_from_rows(rows: list[dict[str, str]]) -> list[Site]:
    return [
        Site(
            name=row["site"],
            area=row["area"],
            side=row["side"],
            x_mm=float(row["x_mm"]),
            y_mm=float(row["y_mm"]),
            depth_mm=float(row["depth_mm"]),
            share=float(row["share"]),
            target_muscle=row["target_muscle"],
        )
        for row in rows
    ]


@lru_cache(maxsize=1)
def load_face_map() -> FaceMap:
    """The packaged face map."""
    layout = read_data_yaml("face_map.yaml")
    return FaceMap(
        _regions_from_rows(read_csv("muscles.csv")), _sites_from_rows(read_csv("sites.csv")), layout
    )

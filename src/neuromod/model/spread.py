"""Stage 1 — toxin spread: from injections on the face map to units in each muscle.

Each injection lays down a 2-D Gaussian field centred on its point. The field's width grows
with dose and volume (``sigma = sigma_ref * (U/U_ref)^a * (V/V_ref)^b * product factor``):
spread is mainly dose-driven, a larger volume gives a larger halo, and some products spread
further. In every grid cell the toxin is shared between the muscles present there (weighted
by how close each muscle's depth is to the injection depth, and by barriers such as the
orbital septum) and non-muscle tissue. Whatever lands outside every muscle is *lost*
(taken up by fat, dermis, vessels), so for every injection

    sum over muscles of dose + lost == injected units      (conservation, tested).

A large sheet muscle that receives toxin only at one corner is blocked only there. Because
the junction's kinetics are linear and the same in every cell, a muscle's block is the mean
over its cells of the block at the local dose. The spread stage therefore also returns, per
muscle, the *dose profile*: the local dose relative to the muscle's mean, summarised as the
means of ``PROFILE_BINS`` equal-area groups of its cells (sorted by dose). An even spread has
a flat profile of ones; toxin on a tenth of the muscle has one or two groups near 10 and the
rest near 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from neuromod.reference.anatomy import FaceMap
from neuromod.reference.parameters import SpreadParameters

FloatArray = npt.NDArray[np.float64]

#: equal-area groups of a muscle's cells in its dose profile (resolution: 1/8 of the area).
PROFILE_BINS = 8


@dataclass(frozen=True)
class Injections:
    """Injections as plain arrays, one entry per injection point.

    x_mm, y_mm: position on the face map; depth_mm: below the skin surface;
    ona_units: onabotulinumtoxinA-equivalent units; volume_ml: injected volume.
    """

    x_mm: FloatArray
    y_mm: FloatArray
    depth_mm: FloatArray
    ona_units: FloatArray
    volume_ml: FloatArray


@dataclass(frozen=True)
class SpreadResult:
    """Units each injection delivers to each muscle (``doses``, shape (n_injections,
    n_muscles)), the units that reach no muscle (``lost``, shape (n_injections,)) and each
    muscle's dose profile (``profile``, (n_muscles, PROFILE_BINS), local dose / mean dose)."""

    @property
    def coverage(self) -> FloatArray:
        """(n_muscles,) share of each muscle's area that gets at least a tenth of its mean dose."""
        return (self.profile >= 0.1).mean(axis=1)

    doses: FloatArray
    lost: FloatArray
    sigma_mm: FloatArray
    profile: FloatArray

    @property
    def dose_per_muscle(self) -> FloatArray:
        """(n_muscles,) onabotulinumtoxinA-equivalent units received by each muscle."""
        return self.doses.sum(axis=0)


def field_sigma_mm(
    ona_units: FloatArray, volume_ml: FloatArray, spread_factor: float, params: SpreadParameters
) -> FloatArray:
    """Standard deviation (mm) of the Gaussian field of each injection."""
    units = np.maximum(np.asarray(ona_units, dtype=float), 1e-3)
    volume = np.maximum(np.asarray(volume_ml, dtype=float), 1e-4)
    return (
        params.sigma_ref_mm
        * (units / params.reference_units) ** params.dose_exponent
        * (volume / params.reference_volume_ml) ** params.volume_exponent
        * spread_factor
    )


def field_density(
    injections: Injections, sigma_mm: FloatArray, x: FloatArray, y: FloatArray
) -> FloatArray:
    """(n_injections, n_points) fraction of each injection's units per mm^2 at the points."""
    dx = x[None, :] - injections.x_mm[:, None]
    dy = y[None, :] - injections.y_mm[:, None]
    var = (sigma_mm**2)[:, None]
    return np.exp(-(dx**2 + dy**2) / (2.0 * var)) / (2.0 * np.pi * var)


_SHARES: dict[tuple, tuple[FaceMap, FloatArray]] = {}


def muscle_share(
    face_map: FaceMap, injection_depth_mm: float, params: SpreadParameters
) -> FloatArray:
    """(n_muscles, n_cells) share of the toxin in each grid cell taken by each muscle.

    The rest of each cell's toxin (``1 - column sum``) goes to non-muscle tissue. Memoised per
    face map, depth and parameters (a few label depths recur; the table is read-only): most of
    a warm ``simulate`` was spent recomputing it.
    """
    key = (id(face_map), float(injection_depth_mm), repr(params))
    if key not in _SHARES:
        if len(_SHARES) >= 32:
            _SHARES.clear()
        share = _muscle_share(face_map, injection_depth_mm, params)
        share.flags.writeable = False
        _SHARES[key] = (face_map, share)  # the face map is held so its id stays unique
    return _SHARES[key][1]


def _muscle_weights(face_map: FaceMap, injection_depth_mm: float, params: SpreadParameters) -> FloatArray:
    """(n_muscles,) each muscle's pull on the toxin where it is present: affinity for the
    injection depth (falling by ``e`` per ``depth_length_mm``) times the fascial barrier."""
    depths = np.array([r.depth_mm for r in face_map.regions])
    affinity = np.exp(-np.abs(depths - injection_depth_mm) / params.depth_length_mm)
    barrier = np.array(
        [params.barrier_transmission.get(r.muscle, 1.0) for r in face_map.regions]
    )
    return affinity * barrier


def _muscle_share(face_map: FaceMap, injection_depth_mm: float, params: SpreadParameters) -> FloatArray:
    weights = face_map.region_masks * _muscle_weights(face_map, injection_depth_mm, params)[:, None]
    return weights / (params.tissue_sink_weight + weights.sum(axis=0, keepdims=True))


@dataclass(frozen=True)
class MuscleCells:
    """The face map's (muscle, cell) pairs where a muscle is present, grouped by muscle.

    The masks are sparse (19,562 pairs of 31 muscles x 35,325 cells on the shipped map), so the
    spread works on these pairs rather than on dense (muscles x cells) tables: the same sums,
    a fiftieth of the products. ``cells``: (n_used,) the cells any muscle covers; ``entry_cell``:
    (n_pairs,) position in ``cells`` of each pair's cell, ascending within each muscle (the
    masks' order); ``entry_muscle``: (n_pairs,) its muscle; ``starts``: (n_muscles + 1,) where
    each muscle's pairs begin (and the end)."""

    cells: npt.NDArray[np.int64]
    entry_cell: npt.NDArray[np.int64]
    entry_muscle: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]

    def per_muscle_sum(self, values: FloatArray) -> FloatArray:
        """(..., n_muscles) sums over each muscle's pairs of ``values`` (..., n_pairs)."""
        sizes = np.diff(self.starts)
        sums = np.add.reduceat(values, np.minimum(self.starts[:-1], max(values.shape[-1] - 1, 0)), axis=-1) \
            if values.shape[-1] else np.zeros(values.shape[:-1] + (sizes.size,))
        return np.where(sizes > 0, sums, 0.0)


_CELLS: dict[int, tuple[FaceMap, MuscleCells]] = {}
_PAIR_SHARES: dict[tuple, tuple[FaceMap, FloatArray]] = {}


def muscle_cells(face_map: FaceMap) -> MuscleCells:
    """:class:`MuscleCells` of ``face_map``, memoised per face map (read-only; at most 8 kept)."""
    key = id(face_map)
    if key not in _CELLS:
        if len(_CELLS) >= 8:
            _CELLS.clear()
        muscle, cell = np.nonzero(face_map.region_masks)  # row-major: grouped by muscle, cells ascending
        cells, entry_cell = np.unique(cell, return_inverse=True)
        starts = np.searchsorted(muscle, np.arange(len(face_map.regions) + 1))
        layout = MuscleCells(cells, entry_cell.ravel(), muscle, starts)
        for array in (layout.cells, layout.entry_cell, layout.entry_muscle, layout.starts):
            array.flags.writeable = False
        _CELLS[key] = (face_map, layout)  # the face map is held so its id stays unique
    return _CELLS[key][1]


def pair_shares(face_map: FaceMap, injection_depth_mm: float, params: SpreadParameters) -> FloatArray:
    """(n_pairs,) :func:`muscle_share` at each :class:`MuscleCells` pair (memoised like it).

    Computed on the pairs alone: each cell's total pull is the sum of its muscles' weights in
    muscle order, as the dense table sums its rows, so the values are the dense table's to the
    last bit (tested) for a fiftieth of the work (a first ``simulate`` built one dense table per
    injection depth)."""
    key = (id(face_map), float(injection_depth_mm), repr(params))
    if key not in _PAIR_SHARES:
        if len(_PAIR_SHARES) >= 32:
            _PAIR_SHARES.clear()
        layout = muscle_cells(face_map)
        pair_weight = _muscle_weights(face_map, injection_depth_mm, params)[layout.entry_muscle]
        cell_pull = np.bincount(layout.entry_cell, weights=pair_weight, minlength=layout.cells.size)
        values = pair_weight / (params.tissue_sink_weight + cell_pull[layout.entry_cell])
        values.flags.writeable = False
        _PAIR_SHARES[key] = (face_map, values)
    return _PAIR_SHARES[key][1]


def spread(
    face_map: FaceMap,
    injections: Injections,
    spread_factor: float,
    params: SpreadParameters,
) -> SpreadResult:
    """Distribute each injection's units over the muscles of ``face_map``.

    Computed on the (muscle, cell) pairs where muscles are (:class:`MuscleCells`): a cell no
    muscle covers sends all its toxin to tissue, so it enters only ``lost``."""
    grid = face_map.grid
    layout = muscle_cells(face_map)
    sigma = field_sigma_mm(injections.ona_units, injections.volume_ml, spread_factor, params)
    n_inj, n_muscles = len(injections.x_mm), len(face_map.regions)
    doses = np.zeros((n_inj, n_muscles))
    pair_units = np.zeros(layout.entry_cell.size)
    density = field_density(injections, sigma, grid.x[layout.cells], grid.y[layout.cells]) * grid.cell_area_mm2
    at_pair = density[:, layout.entry_cell]  # (n_injections, n_pairs)
    for depth in sorted(set(injections.depth_mm.tolist())):  # np.unique would import numpy.ma
        rows = np.flatnonzero(injections.depth_mm == depth)
        share = pair_shares(face_map, float(depth), params)
        doses[rows] = layout.per_muscle_sum(at_pair[rows] * share) * injections.ona_units[rows, None]
        pair_units += share * (injections.ona_units[rows] @ at_pair[rows])
    lost = injections.ona_units - doses.sum(axis=1)
    profile = np.stack([muscle_profile(pair_units[layout.starts[m]:layout.starts[m + 1]]) for m in range(n_muscles)]) \
        if n_muscles else np.ones((0, PROFILE_BINS))
    return SpreadResult(doses=doses, lost=lost, sigma_mm=sigma, profile=profile)


def dose_profile(cell_units: FloatArray, masks: npt.NDArray[np.bool_], bins: int = PROFILE_BINS) -> FloatArray:
    """(n_muscles, bins) local dose relative to the muscle's mean, per equal-area group of cells.

    Groups are formed after sorting the muscle's cells by dose; the groups' means average 1
    (a muscle that gets nothing has a flat profile of ones, harmless at zero dose).
    """
    return np.stack([muscle_profile(cell_units[m, masks[m]], bins) for m in range(cell_units.shape[0])]) \
        if cell_units.shape[0] else np.ones((0, bins))


def muscle_profile(local_units: FloatArray, bins: int = PROFILE_BINS) -> FloatArray:
    """(bins,) one muscle's dose profile (:func:`dose_profile`) from the units in each of its cells."""
    local = np.sort(local_units)
    total = local.sum()
    if local.size == 0 or total <= 0:
        return np.ones(bins)
    relative = local * local.size / total
    edges, positions, widths = _profile_grid(local.size, bins)
    cumulative = np.concatenate([[0.0], np.cumsum(relative)])
    # mean over each group of cells, with fractional cells at the group edges
    at = np.interp(edges, positions, cumulative)
    return np.diff(at) / widths


@lru_cache(maxsize=256)
def _profile_grid(n_cells: int, bins: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Group edges (in cells), cell positions and group widths of a muscle's profile: they depend
    only on its number of cells (a few dozen muscles per face map), so they are tabulated once."""
    edges = np.linspace(0, n_cells, bins + 1)
    tables = (edges, np.arange(n_cells + 1), np.diff(edges))
    for table in tables:
        table.flags.writeable = False
    return tables

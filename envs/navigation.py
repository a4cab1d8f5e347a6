"""Navigable area of a triangle mesh for a cylindrical agent, and navigation queries on it.

This module rebuilds, in numpy and plain Python, the navigation mesh that habitat-sim 0.3.3
builds with Recast and queries with Detour, restricted to the floor reachable from the start
(one span per cell), so that the embedded simulator answers ``is_navigable``, island areas
and geodesic distances the way habitat-sim does (on ``habitat-golden``: every probe, the
island area to 1e-5 and every geodesic to 1e-5). The stages follow Recast's solo-mesh
build with habitat-sim's settings:

0. **Frame.** habitat-sim turns a Z-up asset Y-up with a float32 matrix whose entries are
   1.0000001 and -1.2e-7 rather than 1 and 0; the vertices are re-derived the same way
   (:attr:`NavSpec.asset_up`), because Recast's cell choice for a face lying exactly on a
   cell edge depends on that rounding.
1. **Rasterisation.** Every triangle near the level is clipped against the 5 cm grid
   exactly as Recast clips it (float32 arithmetic; a face lying on a cell edge goes to the
   cell above it) into vertical spans of ``cell_height_m`` (0.2 m); overlapping spans of a
   column merge. Upward faces no steeper than ``max_slope_deg`` are walkable.
2. **Filters.** Low hanging obstacles, ledges and spans with less than the agent's height
   of clearance, as Recast's three filters do. Per column, the walkable span whose top is
   closest to the level forms a single-level *layer* (one span per cell), with 4-neighbour
   connections where the step is at most ``max_climb_m`` and the clearances overlap. Given a
   start, the spans connected to the start's span by those same links are flooded at any
   height: where the flood climbs stairs or a ramp to another level, the columns it reaches
   take the reached span (a split-level floor plan, levels side by side in plan).
3. **Erosion** by the agent radius with Recast's chamfer distance (orthogonal step 2,
   diagonal 3, in half cells) from border cells.
4. **Regions.** Recast's watershed partition over the blurred distance field, its removal of
   isolated groups under ``region_min_size`` squared cells and its merging of small regions.
5. **Contours** of each region along cell edges, simplified to within ``edge_max_error``
   cells, with mandatory vertices where the neighbouring region changes; holes are joined
   to their outline.
6. **Polygons.** Each contour is ear-clipped and the triangles are merged greedily into
   convex polygons of at most ``verts_per_poly`` vertices; polygons sharing an edge link.

Queries then follow Detour: a point is navigable when its projection onto the nearest
polygon lies within 1 cm horizontally and ``max_y_delta_m`` vertically; a path is an A*
search over polygons with costs between portal-edge midpoints (so not always the shortest
path), pulled straight through the polygon corridor by the funnel algorithm. The grids
:attr:`NavGrid.navigable` and :attr:`NavGrid.island` are the polygons rasterised back onto
the cells (cell centre inside a polygon) for code that plans on a grid.

Coordinates: world frame Y up, metres. Grid cell ``(row, col)`` covers world
``x in [origin_x + col * cell_m, + cell_m)`` and ``z in [origin_z + row * cell_m, + cell_m)``;
the origin is the mesh's bounding-box minimum, as Recast's. Heights are those of the navmesh
surface (the top of the floor's voxel, up to one ``cell_height_m`` above the mesh), as
habitat-sim reports them.

Limits: one span per cell. The levels reachable from the start are navigable where they lie
side by side in plan; where the reachable floor lies above itself (a storey above another,
stairs over a hallway), a warning is logged and only the start's level (``level_y``) is
navigable, up to the stairs. Tops of furniture and levels the start does not reach, which
habitat-sim's navmesh also covers, are not navigable here; Recast's detail mesh is not built
(polygon heights come from the voxel tops); where spans of one column merge, the merged span
is walkable when a walkable face reaches within ``max_climb_m`` of its top, which can differ
from Recast's triangle-order-dependent rule for faces overlapping below a walkable top.
"""

from __future__ import annotations

import logging
import math
from array import array
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from aeqa.envs.errors import AeqaError

logger = logging.getLogger(__name__)

_F32 = np.float32
_SQRT2 = math.sqrt(2.0)
_NEIGHBOURS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, _SQRT2), (1, -1, _SQRT2))

#: Recast's direction order: 0 = -x, 1 = +z, 2 = +x, 3 = -z (x = column, z = row).
_DIR_DX = (-1, 0, 1, 0)
_DIR_DZ = (0, 1, 0, -1)

_SPAN_MAX_HEIGHT = (1 << 13) - 1
_MAX_SPAN_GAP = 0xFFFF
_MAX_POLY_CLIP_VERTS = 12
_TRIANGLE_CHUNK = 50_000
_REG_MASK = 0xFFFF
_AREA_BORDER = 0x20000
_CONTOUR_ITER_LIMIT = 40_000
_HEURISTIC_SCALE = 0.999
_ZERO_AREA_M2 = 1e-5
_ON_MESH_M = 1e-2
_BIG = 1 << 40


@dataclass(frozen=True)
class NavSpec:
    """Agent and navmesh build parameters (habitat-sim's ``NavMeshSettings`` defaults)."""

    agent_radius_m: float = 0.1
    agent_height_m: float = 1.5
    max_climb_m: float = 0.2
    max_slope_deg: float = 45.0
    cell_m: float = 0.05
    #: how far below the level a floor is still searched for
    max_drop_m: float = 0.5
    #: how far from the navigable area :meth:`NavGrid.is_navigable` still looks vertically
    max_y_delta_m: float = 0.5
    #: Recast's voxel height
    cell_height_m: float = 0.2
    #: longest contour edge along walls before it is split
    edge_max_len_m: float = 12.0
    #: largest distance (cells) of a simplified contour from the cell-edge outline
    edge_max_error: float = 1.3
    #: connected groups of regions with fewer than this squared cells are dropped
    region_min_size: int = 20
    #: regions of at most this squared cells (or touching no wall) merge into a neighbour
    region_merge_size: int = 20
    verts_per_poly: int = 6
    #: how far (horizontally) a given start may lie from the navigable area
    start_tolerance_m: float = 0.05
    #: up axis of the file the (Y-up) world vertices were converted from. With ``"z"`` (GLB,
    #: HM3D, ScanNet) the vertices are re-derived with the float32 rounding of habitat-sim's
    #: Z-up to Y-up rotation, so faces lying exactly on cell edges land in the same cells as
    #: in habitat-sim; ``"y"`` uses them as given (habitat-sim's rotation is then exact).
    asset_up: Literal["y", "z"] = "z"


# --- build parameters -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Recast's heightfield frame: float32 bounds and cell sizes, ``width`` x ``height`` cells."""

    bmin: np.ndarray  # (3,) float32, world
    bmax: np.ndarray  # (3,) float32, world
    cs: np.float32  # cell size (m)
    ch: np.float32  # cell height (m)
    width: int  # cells along x (columns)
    height: int  # cells along z (rows)

    @property
    def ics(self) -> np.float32:
        return _F32(1.0) / self.cs

    @property
    def ich(self) -> np.float32:
        return _F32(1.0) / self.ch


@dataclass(frozen=True)
class _Config:
    """Recast's integer build parameters, derived in float32 as habitat-sim derives them."""

    walkable_height: int  # voxels
    walkable_climb: int  # voxels
    walkable_radius: int  # cells
    walkable_slope_cos: np.float32
    max_edge_len: int  # cells
    max_error: np.float32  # cells
    min_region_area: int  # cells
    merge_region_area: int  # cells
    verts_per_poly: int

    @classmethod
    def from_spec(cls, spec: NavSpec) -> _Config:
        cs = _F32(spec.cell_m)
        ch = _F32(spec.cell_height_m)
        slope = _F32(spec.max_slope_deg) / _F32(180.0) * _F32(math.pi)
        return cls(
            walkable_height=int(np.ceil(_F32(spec.agent_height_m) / ch)),
            walkable_climb=int(np.floor(_F32(spec.max_climb_m) / ch)),
            walkable_radius=int(np.ceil(_F32(spec.agent_radius_m) / cs)),
            walkable_slope_cos=_F32(np.cos(slope)),
            max_edge_len=int(_F32(spec.edge_max_len_m) / cs),
            max_error=_F32(spec.edge_max_error),
            min_region_area=int(spec.region_min_size) ** 2,
            merge_region_area=int(spec.region_merge_size) ** 2,
            verts_per_poly=int(spec.verts_per_poly),
        )


def _habitat_z_up_matrix() -> np.ndarray:
    """(3, 3) float32 rows: the world images of a Z-up file's x, y and z axes in habitat-sim.

    Magnum builds the rotation from the quaternion between +Y and the asset's up (+Z): axis
    (1, 0, 0) / sqrt(2) and scalar sqrt(2) / 2, normalised in float32 to 0.7071068 each, so
    the matrix has 1.0000001 and -1.1920929e-07 where the exact rotation has 1 and 0.
    """
    one, two = _F32(1.0), _F32(2.0)
    w = np.sqrt(two)
    v, s = one / w, w * _F32(0.5)
    norm = np.sqrt(v * v + s * s)
    v, s = -(v / norm), s / norm  # normalised, then inverted (frame to world)
    return np.array(
        [[one, 0, 0], [0, one - two * v * v, two * v * s], [0, -two * v * s, one - two * v * v]],
        dtype=_F32,
    )


def _habitat_frame(vertices: np.ndarray, asset_up: str) -> np.ndarray:
    """World vertices (V, 3) as habitat-sim computes them from the asset file, float32.

    The loaders map a Z-up file exactly, ``(x, y, z) -> (x, z, -y)``; habitat-sim multiplies
    by its float32 matrix instead, which moves vertices by up to ~1e-6 m. Recast puts a face
    lying on a cell edge into one cell or its neighbour by that rounding.
    """
    world = np.asarray(vertices, dtype=_F32)
    if asset_up != "z":
        return world
    file_xyz = np.stack([world[:, 0], -world[:, 2], world[:, 1]], axis=1)
    m = _habitat_z_up_matrix()
    out = file_xyz[:, 0:1] * m[0] + file_xyz[:, 1:2] * m[1]
    return np.asarray(out + file_xyz[:, 2:3] * m[2], dtype=_F32)


def _make_grid(vertices: np.ndarray, spec: NavSpec) -> _Grid:
    v = np.asarray(vertices, dtype=_F32)
    bmin = v.min(axis=0)
    bmax = v.max(axis=0)
    cs = _F32(spec.cell_m)
    width = int((bmax[0] - bmin[0]) / cs + _F32(0.5))
    height = int((bmax[2] - bmin[2]) / cs + _F32(0.5))
    return _Grid(bmin, bmax, cs, _F32(spec.cell_height_m), max(width, 1), max(height, 1))


# --- 1. rasterisation -------------------------------------------------------------------------


@dataclass
class _SpanRecords:
    """One record per (triangle, cell) overlap: the voxel range the triangle covers there."""

    cell: np.ndarray  # (S,) int64, row * width + col
    smin: np.ndarray  # (S,) int64, voxels above bmin.y
    smax: np.ndarray  # (S,) int64
    walkable: np.ndarray  # (S,) bool


def _walkable_triangles(tris: np.ndarray, slope_cos: np.float32) -> np.ndarray:
    """(T,) bool: triangles (T, 3, 3) float32 whose unit normal has y above ``slope_cos``."""
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    length = np.sqrt((normal * normal).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ny = np.where(length > 0, normal[:, 1] / length, _F32(0.0))
    return np.asarray(ny > slope_cos)


def _emit(
    inter: np.ndarray, poly: np.ndarray, cross: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compact the per-edge outputs of a polygon split: per edge, the intersection (where the
    edge crosses) and then the edge's end vertex (where kept). Returns (N, W, 3), (N,)."""
    emitted = cross.astype(np.int64) + keep
    end = np.cumsum(emitted, axis=1)
    start = end - emitted
    count = np.minimum(end[:, -1], _MAX_POLY_CLIP_VERTS)
    width = max(int(count.max(initial=0)), 1)
    out = np.zeros((len(poly), width, 3), dtype=_F32)
    rows, slots = np.nonzero(cross & (start < width))
    out[rows, start[rows, slots]] = inter[rows, slots]
    at = start + cross
    rows, slots = np.nonzero(keep & (at < width))
    out[rows, at[rows, slots]] = poly[rows, slots]
    return out, count


def _divide_poly(
    poly: np.ndarray, count: np.ndarray, line: np.ndarray, axis: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split polygons (N, M, 3) at ``coord[axis] == line`` (N,) as Recast's dividePoly does.

    Returns the part at or below the line, its vertex count, the part at or above it and its
    count. Vertices on the line go to both parts, so a face lying on a cell edge survives in
    the next cell as a zero-area polygon.
    """
    n_poly, m = poly.shape[:2]
    slots = np.arange(m)
    valid = slots[None, :] < count[:, None]
    d = line[:, None] - poly[:, :, axis]
    prev = np.where(slots[None, :] == 0, count[:, None] - 1, slots[None, :] - 1)
    prev = np.clip(prev, 0, m - 1)
    rows = np.arange(n_poly)[:, None]
    d_prev = d[rows, prev]
    p_prev = poly[rows, prev]
    cross = ((d_prev >= 0) != (d >= 0)) & valid
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(cross, d_prev / (d_prev - d), _F32(0.0)).astype(_F32)
    inter = p_prev + (poly - p_prev) * s[..., None]
    keep_low = valid & np.where(cross, d > 0, d >= 0)
    keep_high = valid & np.where(cross, d < 0, d <= 0)
    low, n_low = _emit(inter, poly, cross, keep_low)
    high, n_high = _emit(inter, poly, cross, keep_high)
    return low, n_low, high, n_high


def _trunc_index(value: np.ndarray, upper: int) -> np.ndarray:
    """C's ``(int)`` of float32 values (toward zero), clamped to ``0 .. upper``."""
    return np.clip(np.trunc(value).astype(np.int64), 0, upper)


def _clip_rows(
    tris: np.ndarray, grid: _Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slices of triangles (T, 3, 3) per grid row: (polygons, counts, triangle index, row)."""
    n_tri = len(tris)
    tmin = tris[:, :, 2].min(axis=1)
    tmax = tris[:, :, 2].max(axis=1)
    z0 = _trunc_index((tmin - grid.bmin[2]) * grid.ics, grid.height - 1)
    z1 = _trunc_index((tmax - grid.bmin[2]) * grid.ics, grid.height - 1)
    poly = np.zeros((n_tri, _MAX_POLY_CLIP_VERTS, 3), dtype=_F32)
    poly[:, :3] = tris
    count = np.full(n_tri, 3, dtype=np.int64)
    n_rows = z1 - z0 + 1
    active = np.arange(n_tri)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(int(n_rows.max(initial=0))):
        active = active[n_rows[active] > k]
        row = z0[active] + k
        line = (grid.bmin[2] + row.astype(_F32) * grid.cs) + grid.cs
        width = max(int(count[active].max()), 1)
        low, n_low, high, n_high = _divide_poly(poly[active, :width], count[active], line, 2)
        poly[active, : high.shape[1]] = high
        count[active] = n_high
        ok = n_low >= 3
        out.append((low[ok], n_low[ok], active[ok], row[ok]))
    return _concat4(out)


def _concat4(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    polys, counts, sources, cells = zip(*parts, strict=True)
    width = max(p.shape[1] for p in polys)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in polys]
    return (
        np.concatenate(padded),
        np.concatenate(counts),
        np.concatenate(sources),
        np.concatenate(cells),
    )


def _clip_columns(
    poly: np.ndarray, count: np.ndarray, grid: _Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slices of row polygons (R, M, 3) per column: (polygons, counts, row-poly index, col)."""
    slots = np.arange(poly.shape[1])
    valid = slots[None, :] < count[:, None]
    xs = poly[:, :, 0]
    min_x = np.where(valid, xs, np.inf).min(axis=1).astype(_F32)
    max_x = np.where(valid, xs, -np.inf).max(axis=1).astype(_F32)
    x0 = _trunc_index((min_x - grid.bmin[0]) * grid.ics, grid.width - 1)
    x1 = _trunc_index((max_x - grid.bmin[0]) * grid.ics, grid.width - 1)
    stored = np.zeros((len(poly), _MAX_POLY_CLIP_VERTS, 3), dtype=_F32)
    stored[:, : poly.shape[1]] = poly
    poly = stored
    count = count.copy()
    n_cols = x1 - x0 + 1
    active = np.arange(len(poly))
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(int(n_cols.max(initial=0))):
        active = active[n_cols[active] > k]
        col = x0[active] + k
        line = (grid.bmin[0] + col.astype(_F32) * grid.cs) + grid.cs
        width = max(int(count[active].max()), 1)
        low, n_low, high, n_high = _divide_poly(poly[active, :width], count[active], line, 0)
        poly[active, : high.shape[1]] = high
        count[active] = n_high
        ok = n_low >= 3
        out.append((low[ok], n_low[ok], active[ok], col[ok]))
    return _concat4(out)


def _rasterise_chunk(tris: np.ndarray, walkable: np.ndarray, grid: _Grid) -> _SpanRecords:
    rows_poly, rows_count, rows_tri, rows_row = _clip_rows(tris, grid)
    empty = np.zeros(0, dtype=np.int64)
    if len(rows_poly) == 0:
        return _SpanRecords(empty, empty, empty, np.zeros(0, dtype=bool))
    cell_poly, cell_count, cell_src, cell_col = _clip_columns(rows_poly, rows_count, grid)
    valid = np.arange(cell_poly.shape[1])[None, :] < cell_count[:, None]
    ys = cell_poly[:, :, 1]
    smin = np.where(valid, ys, np.inf).min(axis=1).astype(_F32) - grid.bmin[1]
    smax = np.where(valid, ys, -np.inf).max(axis=1).astype(_F32) - grid.bmin[1]
    by = grid.bmax[1] - grid.bmin[1]
    keep = (smax >= 0) & (smin <= by)
    smin = np.maximum(smin[keep], _F32(0.0))
    smax = np.minimum(smax[keep], by)
    ismin = np.clip(np.floor(smin * grid.ich).astype(np.int64), 0, _SPAN_MAX_HEIGHT)
    ismax = np.clip(np.ceil(smax * grid.ich).astype(np.int64), ismin + 1, _SPAN_MAX_HEIGHT)
    tri = rows_tri[cell_src[keep]]
    cell = rows_row[cell_src[keep]] * grid.width + cell_col[keep]
    return _SpanRecords(cell, ismin, ismax, walkable[tri])


def _rasterise(tris: np.ndarray, walkable: np.ndarray, grid: _Grid) -> _SpanRecords:
    """Recast's rcRasterizeTriangles for triangles (T, 3, 3) float32, in chunks."""
    parts = [
        _rasterise_chunk(tris[i : i + _TRIANGLE_CHUNK], walkable[i : i + _TRIANGLE_CHUNK], grid)
        for i in range(0, len(tris), _TRIANGLE_CHUNK)
    ]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return _SpanRecords(empty, empty, empty, np.zeros(0, dtype=bool))
    return _SpanRecords(
        np.concatenate([p.cell for p in parts]),
        np.concatenate([p.smin for p in parts]),
        np.concatenate([p.smax for p in parts]),
        np.concatenate([p.walkable for p in parts]),
    )


# --- 2. spans, filters and the single-level layer ---------------------------------------------


@dataclass
class _Columns:
    """Merged spans as dense per-column stacks, bottom-up: arrays (K, N) over N grid cells."""

    smin: np.ndarray  # (K + 1, N) int64, _MAX_SPAN_GAP past the last span
    smax: np.ndarray  # (K, N) int64
    walkable: np.ndarray  # (K, N) bool
    count: np.ndarray  # (N,) int64


def _merge_spans(records: _SpanRecords, n_cells: int, climb: int) -> _Columns:
    """Merge overlapping or touching spans per cell, as rcAddSpan does.

    A merged span is walkable when a walkable record reaches within ``climb`` of its top.
    """
    order = np.lexsort((records.smin, records.cell))
    cell = records.cell[order]
    smin = records.smin[order]
    smax = records.smax[order]
    walk = records.walkable[order]
    if len(cell) == 0:
        zeros = np.zeros((1, n_cells), dtype=np.int64)
        return _Columns(
            np.full((1, n_cells), _MAX_SPAN_GAP, dtype=np.int64),
            zeros[:0],
            np.zeros((0, n_cells), dtype=bool),
            np.zeros(n_cells, dtype=np.int64),
        )
    key = cell * (1 << 20) + smax
    run_top = np.maximum.accumulate(key) - cell * (1 << 20)
    new_group = np.ones(len(cell), dtype=bool)
    new_group[1:] = (cell[1:] != cell[:-1]) | (smin[1:] > run_top[:-1])
    group = np.cumsum(new_group) - 1
    starts = np.nonzero(new_group)[0]
    g_cell = cell[starts]
    g_smin = smin[starts]
    g_smax = np.maximum.reduceat(smax, starts)
    reach = walk & (smax >= g_smax[group] - climb)
    g_walk = np.logical_or.reduceat(reach, starts)
    # rank of each group within its cell
    cell_start = np.ones(len(g_cell), dtype=bool)
    cell_start[1:] = g_cell[1:] != g_cell[:-1]
    first = np.maximum.accumulate(np.where(cell_start, np.arange(len(g_cell)), 0))
    rank = np.arange(len(g_cell)) - first
    k = int(rank.max()) + 1
    cols = _Columns(
        np.full((k + 1, n_cells), _MAX_SPAN_GAP, dtype=np.int64),
        np.zeros((k, n_cells), dtype=np.int64),
        np.zeros((k, n_cells), dtype=bool),
        np.bincount(g_cell, minlength=n_cells).astype(np.int64),
    )
    cols.smin[rank, g_cell] = g_smin
    cols.smax[rank, g_cell] = g_smax
    cols.walkable[rank, g_cell] = g_walk
    return cols


def _filter_low_hanging(cols: _Columns, climb: int) -> None:
    """rcFilterLowHangingWalkableObstacles: a low obstacle on walkable ground is walkable."""
    original = cols.walkable.copy()
    for k in range(1, len(original)):
        valid = k < cols.count
        step = np.abs(cols.smax[k] - cols.smax[k - 1]) <= climb
        cols.walkable[k] |= valid & ~original[k] & original[k - 1] & step


def _neighbour_cells(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """(4, N) neighbour cell index per Recast direction, and (4, N) whether it is in the grid."""
    rows, cols = np.divmod(np.arange(grid.width * grid.height), grid.width)
    index = np.zeros((4, len(rows)), dtype=np.int64)
    inside = np.zeros((4, len(rows)), dtype=bool)
    for d in range(4):
        c = cols + _DIR_DX[d]
        r = rows + _DIR_DZ[d]
        inside[d] = (c >= 0) & (c < grid.width) & (r >= 0) & (r < grid.height)
        index[d] = np.where(inside[d], r * grid.width + c, 0)
    return index, inside


def _ledge_or_low(
    cols: _Columns, k: np.ndarray, cell: np.ndarray, grid: _Grid, cfg: _Config
) -> np.ndarray:
    """(M,) bool: rcFilterLedgeSpans / rcFilterWalkableLowHeightSpans reject span ``k`` of
    ``cell`` (both (M,))."""
    climb, height = cfg.walkable_climb, cfg.walkable_height
    bot = cols.smax[k, cell]
    top = cols.smin[k + 1, cell]
    low = (top - bot) <= height
    nb_index, nb_inside = _neighbour_cells(grid)
    minh = np.full(len(cell), _MAX_SPAN_GAP, dtype=np.int64)
    asmin = bot.copy()
    asmax = bot.copy()
    for d in range(4):
        inside = nb_inside[d, cell]
        nb = nb_index[d, cell]
        minh = np.where(inside, minh, np.minimum(minh, -climb - bot))
        ntop = cols.smin[0, nb]
        gap = np.minimum(top, ntop) - np.maximum(bot, -climb) > height
        minh = np.where(inside & gap, np.minimum(minh, -climb - bot), minh)
        for k2 in range(cols.smax.shape[0]):
            valid = inside & (k2 < cols.count[nb])
            nbot = cols.smax[k2, nb]
            ntop = cols.smin[k2 + 1, nb]
            ok = valid & (np.minimum(top, ntop) - np.maximum(bot, nbot) > height)
            minh = np.where(ok, np.minimum(minh, nbot - bot), minh)
            near = ok & (np.abs(nbot - bot) <= climb)
            asmin = np.where(near, np.minimum(asmin, nbot), asmin)
            asmax = np.where(near, np.maximum(asmax, nbot), asmax)
    ledge = (minh < -climb) | ((asmax - asmin) > climb)
    return low | ledge


@dataclass
class _Layer:
    """One walkable span per cell at the level: Recast's compact heightfield, single-layer.

    Arrays are over the N = rows * cols grid cells, index ``row * cols + col``.
    """

    present: np.ndarray  # (N,) bool, the cell has a walkable span at the level
    top: np.ndarray  # (N,) int64, span top (voxels above bmin.y)
    clearance: np.ndarray  # (N,) int64, free voxels above the top, at most 255
    nbr: np.ndarray  # (4, N) int64, connected neighbour per direction, -1 where none


def _select_layer(
    cols: _Columns, grid: _Grid, cfg: _Config, spec: NavSpec, level_y: float
) -> _Layer:
    """Per column, the walkable span whose top is closest to ``level_y`` within reach."""
    n = grid.width * grid.height
    k_all, cell_all = np.nonzero(cols.walkable & (np.arange(len(cols.smax))[:, None] < cols.count))
    top_y = grid.bmin[1] + cols.smax[k_all, cell_all].astype(_F32) * grid.ch
    lo = level_y - spec.max_drop_m
    hi = level_y + spec.max_climb_m + spec.cell_height_m
    window = (top_y >= lo) & (top_y <= hi)
    k_c, cell_c = k_all[window], cell_all[window]
    ok = ~_ledge_or_low(cols, k_c, cell_c, grid, cfg)
    k_c, cell_c = k_c[ok], cell_c[ok]
    score = np.abs(grid.bmin[1] + cols.smax[k_c, cell_c].astype(_F32) * grid.ch - level_y)
    order = np.lexsort((k_c, score, cell_c))
    first = np.ones(len(order), dtype=bool)
    first[1:] = cell_c[order][1:] != cell_c[order][:-1]
    chosen = order[first]
    present = np.zeros(n, dtype=bool)
    top = np.zeros(n, dtype=np.int64)
    clearance = np.zeros(n, dtype=np.int64)
    present[cell_c[chosen]] = True
    top[cell_c[chosen]] = cols.smax[k_c[chosen], cell_c[chosen]]
    gap = cols.smin[k_c[chosen] + 1, cell_c[chosen]] - top[cell_c[chosen]]
    clearance[cell_c[chosen]] = np.clip(gap, 0, 255)
    return _link_layer(present, top, clearance, grid, cfg)


def _link_layer(
    present: np.ndarray, top: np.ndarray, clearance: np.ndarray, grid: _Grid, cfg: _Config
) -> _Layer:
    """The layer's 4-neighbour connections: a step of at most the climb, and clearances that
    overlap by the agent's height (rcBuildCompactHeightfield)."""
    n = grid.width * grid.height
    nb_index, nb_inside = _neighbour_cells(grid)
    nbr = np.full((4, n), -1, dtype=np.int64)
    for d in range(4):
        nb = nb_index[d]
        both = present & nb_inside[d] & present[nb]
        bot = np.maximum(top, top[nb])
        ceil = np.minimum(top + clearance, top[nb] + clearance[nb])
        con = both & (ceil - bot >= cfg.walkable_height)
        con &= np.abs(top[nb] - top) <= cfg.walkable_climb
        nbr[d] = np.where(con, nb, -1)
    return _Layer(present, top, clearance, nbr)


@dataclass
class _Reached:
    """The walkable spans connected to the start's span over all levels."""

    k: np.ndarray  # (R,) int64 span index in its column
    cell: np.ndarray  # (R,) int64 grid cell
    stacked: int  # cells holding more than one reached span (a storey above another)


def _reach_from_start(
    cols: _Columns,
    grid: _Grid,
    cfg: _Config,
    spec: NavSpec,
    start_xz: tuple[float, float],
    level_y: float,
) -> _Reached | None:
    """Flood from the walkable span under ``start_xz`` nearest ``level_y`` over every
    neighbouring walkable span Recast would connect to it (a step of at most the climb,
    clearances overlapping by the agent's height), at any height. None when the start's
    column has no walkable span within reach of the level."""
    k_all, cell_all = np.nonzero(cols.walkable & (np.arange(len(cols.smax))[:, None] < cols.count))
    ok = ~_ledge_or_low(cols, k_all, cell_all, grid, cfg)
    k_all, cell_all = k_all[ok], cell_all[ok]
    col = int(math.floor((start_xz[0] - float(grid.bmin[0])) / float(grid.cs)))
    row = int(math.floor((start_xz[1] - float(grid.bmin[2])) / float(grid.cs)))
    if not (0 <= col < grid.width and 0 <= row < grid.height):
        return None
    top_y = grid.bmin[1] + cols.smax[k_all, cell_all].astype(_F32) * grid.ch
    at_start = np.nonzero(cell_all == row * grid.width + col)[0]
    near = np.abs(top_y[at_start] - level_y)
    reach = spec.max_drop_m + spec.max_climb_m + spec.cell_height_m
    at_start = at_start[near <= reach]
    if len(at_start) == 0:
        return None
    start = int(at_start[np.argmin(np.abs(top_y[at_start] - level_y))])
    n_span = len(k_all)
    k_max = cols.smax.shape[0]
    span_id = np.full((k_max, grid.width * grid.height), -1, dtype=np.int64)
    span_id[k_all, cell_all] = np.arange(n_span)
    bot = cols.smax[k_all, cell_all]
    ceil = bot + np.clip(cols.smin[k_all + 1, cell_all] - bot, 0, 255)
    nb_index, nb_inside = _neighbour_cells(grid)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    for d in (1, 2):  # +z and +x: each undirected link once
        inside = nb_inside[d, cell_all]
        nb = nb_index[d, cell_all]
        for k2 in range(k_max):
            other = np.where(inside, span_id[k2, nb], -1)
            has = other >= 0
            o = np.maximum(other, 0)
            link = has & (np.abs(bot[o] - bot) <= cfg.walkable_climb)
            link &= np.minimum(ceil, ceil[o]) - np.maximum(bot, bot[o]) >= cfg.walkable_height
            src.append(np.nonzero(link)[0])
            dst.append(other[link])
    a, b = np.concatenate(src), np.concatenate(dst)
    graph = csr_matrix((np.ones(len(a)), (a, b)), shape=(n_span, n_span))
    _, labels = connected_components(graph, directed=False)
    mine = np.nonzero(labels == labels[start])[0]
    _, counts = np.unique(cell_all[mine], return_counts=True)
    return _Reached(k_all[mine], cell_all[mine], int(np.count_nonzero(counts > 1)))


def _override_layer(
    base: _Layer, cols: _Columns, reached: _Reached, grid: _Grid, cfg: _Config
) -> _Layer:
    """``base`` with the reached span in every column the flood reached."""
    present = base.present.copy()
    top = base.top.copy()
    clearance = base.clearance.copy()
    present[reached.cell] = True
    top[reached.cell] = cols.smax[reached.k, reached.cell]
    gap = cols.smin[reached.k + 1, reached.cell] - top[reached.cell]
    clearance[reached.cell] = np.clip(gap, 0, 255)
    return _link_layer(present, top, clearance, grid, cfg)


# --- 3. erosion and distance field ------------------------------------------------------------


def _row_min_scan(c: np.ndarray, link: np.ndarray, step: int) -> np.ndarray:
    """``d[x] = min(c[x], d[x - 1] + step)`` where ``link[x]`` joins x to x - 1, else ``c[x]``."""
    segment = np.cumsum(~link)
    x = np.arange(len(c))
    key = c - step * x - segment * _BIG
    return np.minimum.accumulate(key) + segment * _BIG + step * x


def _shift(a: np.ndarray, dz: int, dx: int, fill: int | bool) -> np.ndarray:
    """``out[z, x] = a[z + dz, x + dx]`` with ``fill`` outside."""
    out = np.full_like(a, fill)
    rows, cols = a.shape
    zs = slice(max(0, -dz), rows - max(0, dz))
    xs = slice(max(0, -dx), cols - max(0, dx))
    zt = slice(max(0, dz), rows - max(0, -dz))
    xt = slice(max(0, dx), cols - max(0, -dx))
    out[zs, xs] = a[zt, xt]
    return out


def _chamfer(dist: np.ndarray, con: np.ndarray) -> np.ndarray:
    """Recast's two-pass chamfer distance (steps 2 and 3) over connections.

    ``dist`` (rows, cols) int64 seeds (0 at borders, large elsewhere); ``con`` (4, rows, cols)
    bool per direction. Diagonals are reached through an orthogonal neighbour, as in Recast.
    """
    d = dist.copy()
    rows = d.shape[0]
    big = np.int64(_BIG)
    # forward: (x - 1, z - 1) via -x then -z; (x + 1, z - 1) via -z then +x
    diag_a = con[0] & _shift(con[3], 0, -1, False)
    diag_b = con[3] & _shift(con[2], -1, 0, False)
    for z in range(rows):
        c = d[z].copy()
        if z > 0:
            p = d[z - 1]
            c = np.where(con[3][z], np.minimum(c, p + 2), c)
            left = np.concatenate(([big], p[:-1]))
            right = np.concatenate((p[1:], [big]))
            c = np.where(diag_a[z], np.minimum(c, left + 3), c)
            c = np.where(diag_b[z], np.minimum(c, right + 3), c)
        d[z] = _row_min_scan(c, con[0][z], 2)
    # backward: (x + 1, z + 1) via +x then +z; (x - 1, z + 1) via +z then -x
    diag_c = con[2] & _shift(con[1], 0, 1, False)
    diag_d = con[1] & _shift(con[0], 1, 0, False)
    for z in range(rows - 1, -1, -1):
        c = d[z].copy()
        if z < rows - 1:
            p = d[z + 1]
            c = np.where(con[1][z], np.minimum(c, p + 2), c)
            right = np.concatenate((p[1:], [big]))
            left = np.concatenate(([big], p[:-1]))
            c = np.where(diag_c[z], np.minimum(c, right + 3), c)
            c = np.where(diag_d[z], np.minimum(c, left + 3), c)
        d[z] = _row_min_scan(c[::-1], con[2][z][::-1], 2)[::-1]
    return d


def _erode(layer: _Layer, grid: _Grid, radius: int) -> np.ndarray:
    """rcErodeWalkableArea: (N,) bool, cells at chamfer distance >= 2 * radius from a border."""
    con = (layer.nbr >= 0).reshape(4, grid.height, grid.width)
    border = layer.present & (con.reshape(4, -1).sum(axis=0) != 4)
    seed = np.where(border | ~layer.present, 0, 255).reshape(grid.height, grid.width)
    dist = _chamfer(seed.astype(np.int64), con).reshape(-1)
    return layer.present & (dist >= 2 * radius)


def _distance_field(layer: _Layer, walkable: np.ndarray, grid: _Grid) -> tuple[np.ndarray, int]:
    """rcBuildDistanceField: (N,) int64 blurred distance to the nearest area border, and the
    largest distance before blurring (where the watershed starts)."""
    con = layer.nbr >= 0
    same = np.zeros(layer.present.shape, dtype=np.int64)
    for d in range(4):
        nb = np.maximum(layer.nbr[d], 0)
        same += con[d] & (walkable[nb] == walkable)
    seed = np.where(layer.present & (same == 4), _MAX_SPAN_GAP, 0)
    shape = (grid.height, grid.width)
    src = _chamfer(seed.reshape(shape), con.reshape(4, *shape)).reshape(-1)
    src = np.where(layer.present, src, 0)
    return _box_blur(src, layer), int(src.max(initial=0))


def _box_blur(src: np.ndarray, layer: _Layer) -> np.ndarray:
    """Recast's 3x3 blur of the distance field (threshold 2), through connections."""
    total = src.copy()
    for d in range(4):
        nb = layer.nbr[d]
        con = nb >= 0
        nb_safe = np.maximum(nb, 0)
        nb2 = layer.nbr[(d + 1) & 3][nb_safe]
        con2 = con & (nb2 >= 0)
        diag = np.where(con2, src[np.maximum(nb2, 0)], src)
        total += np.where(con, src[nb_safe] + diag, src * 2)
    blurred = (total + 5) // 9
    return np.where(src <= 2, src, blurred)


# --- 4. watershed regions ---------------------------------------------------------------------


@dataclass
class _Region:
    """Recast's rcRegion bookkeeping for merging and filtering."""

    id: int
    span_count: int = 0
    connections: list[int] = field(default_factory=list)


def _remove_adjacent_duplicates(items: list[int]) -> None:
    i = 0
    while i < len(items) and len(items) > 1:
        if items[i] == items[(i + 1) % len(items)]:
            del items[i]
        else:
            i += 1


class _Watershed:
    """Recast's rcBuildRegions (watershed, no tile border) on a single-level layer."""

    _N_STACKS = 8
    _EXPAND_ITERS = 8

    def __init__(
        self, layer: _Layer, walkable: np.ndarray, dist: np.ndarray, max_dist: int, grid: _Grid
    ) -> None:
        self.max_dist = max_dist
        self.layer = layer
        self.walkable = walkable
        self.dist = dist
        n = len(walkable)
        self._reg_buf = array("q", bytes(8 * n))
        self._rdist_buf = array("q", bytes(8 * n))
        self.reg = np.frombuffer(self._reg_buf, dtype=np.int64)
        self.rdist = np.frombuffer(self._rdist_buf, dtype=np.int64)
        self._nbr_lists = [layer.nbr[d].tolist() for d in range(4)]
        self._dist_list = dist.tolist()
        self._walk_list = walkable.tolist()
        self._cells = np.nonzero(walkable)[0]

    def run(self, min_area: int, merge_area: int) -> np.ndarray:
        """Region id per cell (N,), 0 where none."""
        n_regions = self._flood_levels()
        self._expand(self._cells[self.reg[self._cells] == 0].copy(), 0, 0)
        return _merge_and_filter(self, n_regions, min_area, merge_area)

    def _flood_levels(self) -> int:
        stacks = [np.zeros(0, dtype=np.int64) for _ in range(self._N_STACKS)]
        region_id = 1
        level = (self.max_dist + 1) & ~1
        sid = -1
        while level > 0:
            level = level - 2 if level >= 2 else 0
            sid = (sid + 1) & (self._N_STACKS - 1)
            if sid == 0:
                stacks = self._sort_by_level(level)
            else:
                prev = stacks[sid - 1]
                prev = prev[prev >= 0]
                stacks[sid] = np.concatenate((stacks[sid], prev[self.reg[prev] == 0]))
            self._expand(stacks[sid], level, self._EXPAND_ITERS)
            for i in stacks[sid][stacks[sid] >= 0].tolist():
                if self._reg_buf[i] == 0 and self._flood(i, level, region_id):
                    region_id += 1
        return region_id

    def _sort_by_level(self, level: int) -> list[np.ndarray]:
        cells = self._cells[self.reg[self._cells] == 0]
        sid = (level >> 1) - (self.dist[cells] >> 1)
        sid = np.maximum(sid, 0)
        return [cells[sid == s] for s in range(self._N_STACKS)]

    def _expand(self, stack: np.ndarray, level: int, max_iter: int) -> None:
        """expandRegions: grow regions into the stack's cells, one ring per iteration."""
        live = stack >= 0
        stack[live & (self.reg[np.maximum(stack, 0)] != 0)] = -1
        iteration = 0
        while len(stack):
            act = np.nonzero(stack >= 0)[0]
            idx = stack[act]
            best_r = np.zeros(len(idx), dtype=np.int64)
            best_d = np.full(len(idx), 0xFFFF, dtype=np.int64)
            for d in range(4):
                nb = self.layer.nbr[d][idx]
                nb_safe = np.maximum(nb, 0)
                ok = (nb >= 0) & (self.walkable[nb_safe] == self.walkable[idx])
                r = self.reg[nb_safe]
                ok &= r > 0
                nd = self.rdist[nb_safe] + 2
                better = ok & (nd < best_d)
                best_r = np.where(better, r, best_r)
                best_d = np.where(better, nd, best_d)
            got = best_r > 0
            failed = (len(stack) - len(act)) + int(np.count_nonzero(~got))
            self.reg[idx[got]] = best_r[got]
            self.rdist[idx[got]] = best_d[got]
            stack[act[got]] = -1
            if failed == len(stack):
                break
            if level > 0:
                iteration += 1
                if iteration >= max_iter:
                    break

    def _flood(self, seed: int, level: int, r: int) -> bool:
        """floodRegion: claim the cells reachable at this level that touch no other region."""
        reg = self._reg_buf
        rdist = self._rdist_buf
        nbr = self._nbr_lists
        dist = self._dist_list
        walk = self._walk_list
        area = walk[seed]
        lev = level - 2 if level >= 2 else 0
        stack = [seed]
        reg[seed] = r
        rdist[seed] = 0
        count = 0
        while stack:
            ci = stack.pop()
            blocked = False
            for d in range(4):
                ai = nbr[d][ci]
                if ai < 0 or walk[ai] != area:
                    continue
                nr = reg[ai]
                if nr != 0 and nr != r:
                    blocked = True
                    break
                a2 = nbr[(d + 1) & 3][ai]
                if a2 >= 0:
                    if walk[a2] != area:
                        continue
                    nr2 = reg[a2]
                    if nr2 != 0 and nr2 != r:
                        blocked = True
                        break
            if blocked:
                reg[ci] = 0
                continue
            count += 1
            for d in range(4):
                ai = nbr[d][ci]
                if ai < 0 or walk[ai] != area:
                    continue
                if dist[ai] >= lev and reg[ai] == 0:
                    reg[ai] = r
                    rdist[ai] = 0
                    stack.append(ai)
        return count > 0

    def neighbour_regions(self, start: int) -> list[int]:
        """Regions met walking the outline of ``start``'s region (walkContour, region form)."""
        reg = self._reg_buf
        nbr = self._nbr_lists
        own = reg[start]
        start_dir = -1
        for d in range(4):
            ai = nbr[d][start]
            if (reg[ai] if ai >= 0 else 0) != own:
                start_dir = d
                break
        if start_dir < 0:
            return []
        i, d = start, start_dir
        ai = nbr[d][i]
        current = reg[ai] if ai >= 0 else 0
        out = [current]
        for _ in range(_CONTOUR_ITER_LIMIT - 1):
            ai = nbr[d][i]
            r = reg[ai] if ai >= 0 else 0
            if r != own:
                if r != current:
                    current = r
                    out.append(r)
                d = (d + 1) & 3
            else:
                i = ai
                d = (d + 3) & 3
            if i == start and d == start_dir:
                break
        if len(out) > 1:
            j = 0
            while j < len(out):
                if out[j] == out[(j + 1) % len(out)]:
                    del out[j]
                else:
                    j += 1
        return out


def _can_merge(a: _Region, b: _Region) -> bool:
    return a.connections.count(b.id) <= 1


def _merge_regions(target: _Region, source: _Region) -> bool:
    """Splice ``source``'s neighbour ring into ``target``'s (mergeRegions)."""
    a_con = list(target.connections)
    b_con = source.connections
    if source.id not in a_con or target.id not in b_con:
        return False
    ia = a_con.index(source.id)
    ib = b_con.index(target.id)
    na, nb = len(a_con), len(b_con)
    target.connections = [a_con[(ia + 1 + i) % na] for i in range(na - 1)]
    target.connections += [b_con[(ib + 1 + i) % nb] for i in range(nb - 1)]
    _remove_adjacent_duplicates(target.connections)
    target.span_count += source.span_count
    source.span_count = 0
    source.connections = []
    return True


def _replace_neighbour(region: _Region, old: int, new: int) -> None:
    if old in region.connections:
        region.connections = [new if c == old else c for c in region.connections]
        _remove_adjacent_duplicates(region.connections)


def _merge_and_filter(
    ws: _Watershed, max_region: int, min_area: int, merge_area: int
) -> np.ndarray:
    """mergeAndFilterRegions: drop small isolated groups, merge small regions, renumber."""
    n_reg = max_region + 1
    regions = [_Region(i) for i in range(n_reg)]
    reg = ws.reg
    in_range = (reg > 0) & (reg < n_reg)
    counts = np.bincount(reg[in_range], minlength=n_reg)
    cells = np.nonzero(in_range)[0]
    ids, first = np.unique(reg[cells], return_index=True)
    for rid, cell in zip(ids.tolist(), cells[first].tolist(), strict=True):
        regions[rid].span_count = int(counts[rid])
        regions[rid].connections = ws.neighbour_regions(cell)
    _drop_small_groups(regions, min_area)
    _merge_small_regions(regions, merge_area)
    remap = _renumber(regions)
    return remap[reg]


def _drop_small_groups(regions: list[_Region], min_area: int) -> None:
    visited = [False] * len(regions)
    for i, region in enumerate(regions):
        if region.id == 0 or region.span_count == 0 or visited[i]:
            continue
        visited[i] = True
        stack = [i]
        trace: list[int] = []
        total = 0
        while stack:
            ri = stack.pop()
            total += regions[ri].span_count
            trace.append(ri)
            for c in regions[ri].connections:
                if visited[c] or regions[c].id == 0:
                    continue
                visited[c] = True
                stack.append(c)
        if total < min_area:
            for ri in trace:
                regions[ri].span_count = 0
                regions[ri].id = 0


def _merge_small_regions(regions: list[_Region], merge_area: int) -> None:
    while True:
        merges = 0
        for region in regions:
            if region.id == 0 or region.span_count == 0:
                continue
            if region.span_count > merge_area and 0 in region.connections:
                continue
            smallest = 0xFFFFFFF
            merge_id = region.id
            for c in region.connections:
                other = regions[c]
                if other.id == 0:
                    continue
                mergeable = _can_merge(region, other) and _can_merge(other, region)
                if other.span_count < smallest and mergeable:
                    smallest = other.span_count
                    merge_id = other.id
            if merge_id == region.id:
                continue
            old = region.id
            if _merge_regions(regions[merge_id], region):
                for other in regions:
                    if other.id == 0:
                        continue
                    if other.id == old:
                        other.id = merge_id
                    _replace_neighbour(other, old, merge_id)
                merges += 1
        if merges == 0:
            return


def _renumber(regions: list[_Region]) -> np.ndarray:
    """(n_reg,) final id per original region id, compacted to 1..n in first-seen order."""
    remap = [r.id != 0 for r in regions]
    ids = [r.id for r in regions]
    new_id = 0
    for i in range(len(regions)):
        if not remap[i]:
            continue
        old = ids[i]
        new_id += 1
        for j in range(i, len(regions)):
            if ids[j] == old:
                ids[j] = new_id
                remap[j] = False
    out = np.array(ids, dtype=np.int64)
    out[0] = 0
    return out


# --- 5. contours ------------------------------------------------------------------------------


@dataclass
class _Contour:
    """A simplified region outline: (V, 4) int64 rows of x, y, z (cell corners, voxels), flags."""

    verts: np.ndarray
    reg: int


def _corner_height(i: int, d: int, top: list[int], nbr: list[list[int]]) -> int:
    """getCornerHeight: the highest span top around the corner after edge ``d`` of cell ``i``."""
    h = top[i]
    dp = (d + 1) & 3
    a = nbr[d][i]
    if a >= 0:
        h = max(h, top[a])
        a2 = nbr[dp][a]
        if a2 >= 0:
            h = max(h, top[a2])
    a = nbr[dp][i]
    if a >= 0:
        h = max(h, top[a])
        a2 = nbr[d][a]
        if a2 >= 0:
            h = max(h, top[a2])
    return h


def _walk_contour(
    start: int,
    width: int,
    flags: list[int],
    reg: list[int],
    walk: list[bool],
    top: list[int],
    nbr: list[list[int]],
) -> np.ndarray:
    """walkContour: (P, 4) raw outline vertices of the region edges marked in ``flags``."""
    d = 0
    while not flags[start] & (1 << d):
        d += 1
    start_dir = d
    i = start
    z, x = divmod(start, width)
    area = walk[start]
    points: list[tuple[int, int, int, int]] = []
    for _ in range(_CONTOUR_ITER_LIMIT - 1):
        if flags[i] & (1 << d):
            px, pz = x, z
            if d == 0:
                pz += 1
            elif d == 1:
                px += 1
                pz += 1
            elif d == 2:
                px += 1
            r = 0
            a = nbr[d][i]
            if a >= 0:
                r = reg[a]
                if walk[a] != area:
                    r |= _AREA_BORDER
            points.append((px, _corner_height(i, d, top, nbr), pz, r))
            flags[i] &= ~(1 << d)
            d = (d + 1) & 3
        else:
            a = nbr[d][i]
            if a < 0:
                break
            x += _DIR_DX[d]
            z += _DIR_DZ[d]
            i = a
            d = (d + 3) & 3
        if i == start and d == start_dir:
            break
    return np.array(points, dtype=np.int64).reshape(-1, 4)


def _seg_dist_sq(px: np.ndarray, pz: np.ndarray, ax: int, az: int, bx: int, bz: int) -> np.ndarray:
    """Recast's distancePtSeg in float32: squared distance of points to segment a-b."""
    pqx = _F32(bx - ax)
    pqz = _F32(bz - az)
    dx = (px - ax).astype(_F32)
    dz = (pz - az).astype(_F32)
    d = pqx * pqx + pqz * pqz
    t = pqx * dx + pqz * dz
    if d > 0:
        t = t / d
    t = np.clip(t, _F32(0.0), _F32(1.0))
    ex = _F32(ax) + t * pqx - px.astype(_F32)
    ez = _F32(az) + t * pqz - pz.astype(_F32)
    return np.asarray(ex * ex + ez * ez, dtype=_F32)


def _initial_simplified(points: np.ndarray) -> list[list[int]]:
    """Mandatory vertices (region or area-border changes), else the two extreme corners."""
    regs = points[:, 3] & _REG_MASK
    border = points[:, 3] & _AREA_BORDER
    out: list[list[int]] = []
    if np.any(regs != 0):
        nxt = np.roll(np.arange(len(points)), -1)
        change = (regs != regs[nxt]) | (border != border[nxt])
        for i in np.nonzero(change)[0].tolist():
            out.append([*points[i, :3].tolist(), i])
    if not out:
        ll = int(np.lexsort((points[:, 2], points[:, 0]))[0])
        ur = int(np.lexsort((-points[:, 2], -points[:, 0]))[0])
        out = [[*points[ll, :3].tolist(), ll], [*points[ur, :3].tolist(), ur]]
    return out


def _simplify_contour(
    points: np.ndarray, max_error: np.float32, max_edge_len: int
) -> list[list[int]]:
    """simplifyContour: (x, y, z, flags) vertices of the simplified outline."""
    pn = len(points)
    simplified = _initial_simplified(points)
    regs = points[:, 3] & _REG_MASK
    border = points[:, 3] & _AREA_BORDER
    limit = max_error * max_error
    i = 0
    while i < len(simplified):
        ax, _, az, ai = simplified[i]
        bx, _, bz, bi = simplified[(i + 1) % len(simplified)]
        if bx > ax or (bx == ax and bz > az):
            step, ci, endi = 1, (ai + 1) % pn, bi
        else:
            step, ci, endi = pn - 1, (bi + pn - 1) % pn, ai
            ax, bx, az, bz = bx, ax, bz, az
        maxi = -1
        maxd = _F32(0.0)
        if regs[ci] == 0 or border[ci]:
            n = (endi - ci) % pn if step == 1 else (ci - endi) % pn
            idx = (ci + step * np.arange(n)) % pn if step == 1 else (ci - np.arange(n)) % pn
            if n:
                d = _seg_dist_sq(points[idx, 0], points[idx, 2], ax, az, bx, bz)
                k = int(np.argmax(d))
                if d[k] > maxd:
                    maxd, maxi = d[k], int(idx[k])
        if maxi != -1 and maxd > limit:
            simplified.insert(i + 1, [*points[maxi, :3].tolist(), maxi])
        else:
            i += 1
    if max_edge_len > 0:
        _split_long_edges(simplified, points, regs, max_edge_len)
    for v in simplified:
        v[3] = int(points[(v[3] + 1) % pn, 3]) & (_REG_MASK | _AREA_BORDER)
    return simplified


def _split_long_edges(
    simplified: list[list[int]], points: np.ndarray, regs: np.ndarray, max_len: int
) -> None:
    """Split wall edges longer than ``max_len`` cells at their middle raw vertex."""
    pn = len(points)
    i = 0
    while i < len(simplified):
        ax, _, az, ai = simplified[i]
        bx, _, bz, bi = simplified[(i + 1) % len(simplified)]
        maxi = -1
        if regs[(ai + 1) % pn] == 0 and (bx - ax) ** 2 + (bz - az) ** 2 > max_len * max_len:
            n = bi + pn - ai if bi < ai else bi - ai
            if n > 1:
                if bx > ax or (bx == ax and bz > az):
                    maxi = (ai + n // 2) % pn
                else:
                    maxi = (ai + (n + 1) // 2) % pn
        if maxi != -1:
            simplified.insert(i + 1, [*points[maxi, :3].tolist(), maxi])
        else:
            i += 1


def _remove_degenerate(simplified: list[list[int]]) -> None:
    """removeDegenerateSegments: drop a vertex equal (x, z) to its successor."""
    n = len(simplified)
    i = 0
    while i < n:
        ni = (i + 1) % n
        if simplified[i][0] == simplified[ni][0] and simplified[i][2] == simplified[ni][2]:
            del simplified[i]
            n -= 1
        i += 1


def _build_contours(
    layer: _Layer, walkable: np.ndarray, reg: np.ndarray, grid: _Grid, cfg: _Config
) -> list[_Contour]:
    """rcBuildContours: simplified outlines of every region, holes merged into outlines."""
    nbr = layer.nbr
    same = np.zeros(len(reg), dtype=np.int64)
    for d in range(4):
        nb = nbr[d]
        same |= np.where((nb >= 0) & (reg[np.maximum(nb, 0)] == reg), 1 << d, 0)
    flag_arr = np.where(reg > 0, same ^ 0xF, 0)
    flags = flag_arr.tolist()
    reg_list = reg.tolist()
    walk_list = walkable.tolist()
    top_list = layer.top.tolist()
    nbr_lists = [nbr[d].tolist() for d in range(4)]
    contours: list[_Contour] = []
    for i in np.nonzero((flag_arr > 0) & (flag_arr < 0xF))[0].tolist():
        if flags[i] == 0 or flags[i] == 0xF:
            flags[i] = 0
            continue
        raw = _walk_contour(i, grid.width, flags, reg_list, walk_list, top_list, nbr_lists)
        if len(raw) == 0:
            continue
        simplified = _simplify_contour(raw, cfg.max_error, cfg.max_edge_len)
        _remove_degenerate(simplified)
        if len(simplified) >= 3:
            contours.append(_Contour(np.array(simplified, dtype=np.int64), reg_list[i]))
    _merge_holes(contours)
    return contours


# --- contour holes ----------------------------------------------------------------------------


def _area2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> int:
    return int((b[0] - a[0]) * (c[2] - a[2]) - (c[0] - a[0]) * (b[2] - a[2]))


def _left(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    return _area2(a, b, c) < 0


def _left_on(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    return _area2(a, b, c) <= 0


def _collinear(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    return _area2(a, b, c) == 0


def _intersect_prop(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    if _collinear(a, b, c) or _collinear(a, b, d) or _collinear(c, d, a) or _collinear(c, d, b):
        return False
    return (_left(a, b, c) != _left(a, b, d)) and (_left(c, d, a) != _left(c, d, b))


def _between(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    if not _collinear(a, b, c):
        return False
    k = 0 if a[0] != b[0] else 2
    return bool((a[k] <= c[k] <= b[k]) or (a[k] >= c[k] >= b[k]))


def _intersect(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    if _intersect_prop(a, b, c, d):
        return True
    return _between(a, b, c) or _between(a, b, d) or _between(c, d, a) or _between(c, d, b)


def _same_xz(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] == b[0] and a[2] == b[2])


def _signed_area2(verts: np.ndarray) -> int:
    """calcAreaOfPolygon2D: (twice) the signed area, rounded as Recast rounds it."""
    area = 0
    n = len(verts)
    for i in range(n):
        j = i - 1
        area += int(verts[i, 0] * verts[j, 2] - verts[j, 0] * verts[i, 2])
    return int((area + 1) / 2)


def _in_cone_contour(i: int, verts: np.ndarray, pj: np.ndarray) -> bool:
    n = len(verts)
    pi, pi1, pin1 = verts[i], verts[(i + 1) % n], verts[i - 1]
    if _left_on(pin1, pi, pi1):
        return _left(pi, pj, pin1) and _left(pj, pi, pi1)
    return not (_left_on(pi, pj, pi1) and _left_on(pj, pi, pin1))


def _seg_crosses_contour(d0: np.ndarray, d1: np.ndarray, skip: int, verts: np.ndarray) -> bool:
    n = len(verts)
    for k in range(n):
        k1 = (k + 1) % n
        if skip in (k, k1):
            continue
        p0, p1 = verts[k], verts[k1]
        if _same_xz(d0, p0) or _same_xz(d1, p0) or _same_xz(d0, p1) or _same_xz(d1, p1):
            continue
        if _intersect(d0, d1, p0, p1):
            return True
    return False


def _merge_holes(contours: list[_Contour]) -> None:
    """mergeRegionHoles: join each hole (clockwise contour) to its region's outline."""
    winding = [_signed_area2(c.verts) < 0 for c in contours]
    if not any(winding):
        return
    outlines: dict[int, _Contour] = {}
    holes: dict[int, list[_Contour]] = {}
    for c, is_hole in zip(contours, winding, strict=True):
        if is_hole:
            holes.setdefault(c.reg, []).append(c)
        else:
            outlines[c.reg] = c
    for reg, region_holes in holes.items():
        if reg not in outlines:
            logger.warning("navmesh: region %d has holes but no outline", reg)
            continue
        _merge_region_holes(outlines[reg], region_holes)


def _leftmost(verts: np.ndarray) -> tuple[int, int, int]:
    best = 0
    for i in range(1, len(verts)):
        if verts[i, 0] < verts[best, 0] or (
            verts[i, 0] == verts[best, 0] and verts[i, 2] < verts[best, 2]
        ):
            best = i
    return int(verts[best, 0]), int(verts[best, 2]), best


def _merge_region_holes(outline: _Contour, holes: list[_Contour]) -> None:
    keyed = sorted(((*_leftmost(h.verts), k) for k, h in enumerate(holes)), key=lambda t: t[:2])
    ordered = [(holes[k], lm) for _, _, lm, k in keyed]
    diags: list[tuple[int, int]] = []
    for i, (hole, leftmost) in enumerate(ordered):
        index = -1
        best = leftmost
        for _ in range(len(hole.verts)):
            corner = hole.verts[best]
            diags = []
            for j in range(len(outline.verts)):
                if _in_cone_contour(j, outline.verts, corner):
                    dx = int(outline.verts[j, 0] - corner[0])
                    dz = int(outline.verts[j, 2] - corner[2])
                    diags.append((dx * dx + dz * dz, j))
            diags.sort(key=lambda t: t[0])
            index = -1
            # Recast skips the edges next to diags[i] (the hole's index), not diags[j].
            skip = diags[i][1] if i < len(diags) else -1
            for _, vert in diags:
                pt = outline.verts[vert]
                crossing = _seg_crosses_contour(pt, corner, skip, outline.verts)
                for other, _ in ordered[i:]:
                    if crossing:
                        break
                    crossing = _seg_crosses_contour(pt, corner, -1, other.verts)
                if not crossing:
                    index = vert
                    break
            if index != -1:
                break
            best = (best + 1) % len(hole.verts)
        if index == -1:
            logger.warning("navmesh: could not merge a hole of region %d", outline.reg)
            continue
        na, nb = len(outline.verts), len(hole.verts)
        a_part = outline.verts[[(index + k) % na for k in range(na + 1)]]
        b_part = hole.verts[[(best + k) % nb for k in range(nb + 1)]]
        outline.verts = np.concatenate((a_part, b_part))
        hole.verts = hole.verts[:0]


# --- 6. polygon mesh --------------------------------------------------------------------------


def _diagonal_ok(i: int, j: int, idx: list[int], xz: list[tuple[int, int]], loose: bool) -> bool:
    """Recast's diagonal / diagonalLoose test for the diagonal between positions i and j."""
    n = len(idx)
    pi, pj = xz[idx[i]], xz[idx[j]]
    pi1, pin1 = xz[idx[(i + 1) % n]], xz[idx[i - 1]]
    if _left_on2(pin1, pi, pi1):
        cone = (
            (_left_on2(pi, pj, pin1) and _left_on2(pj, pi, pi1))
            if loose
            else (_left2(pi, pj, pin1) and _left2(pj, pi, pi1))
        )
    else:
        cone = not (_left_on2(pi, pj, pi1) and _left_on2(pj, pi, pin1))
    if not cone:
        return False
    for k in range(n):
        k1 = (k + 1) % n
        if k in (i, j) or k1 in (i, j):
            continue
        p0, p1 = xz[idx[k]], xz[idx[k1]]
        if pi in (p0, p1) or pj in (p0, p1):
            continue
        hit = _intersect_prop2(pi, pj, p0, p1) if loose else _intersect2(pi, pj, p0, p1)
        if hit:
            return False
    return True


def _area2_xz(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> int:
    return (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])


def _left2(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    return _area2_xz(a, b, c) < 0


def _left_on2(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    return _area2_xz(a, b, c) <= 0


def _intersect_prop2(
    a: tuple[int, int], b: tuple[int, int], c: tuple[int, int], d: tuple[int, int]
) -> bool:
    abc, abd = _area2_xz(a, b, c), _area2_xz(a, b, d)
    cda, cdb = _area2_xz(c, d, a), _area2_xz(c, d, b)
    if abc == 0 or abd == 0 or cda == 0 or cdb == 0:
        return False
    return ((abc < 0) != (abd < 0)) and ((cda < 0) != (cdb < 0))


def _between2(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    if _area2_xz(a, b, c) != 0:
        return False
    k = 0 if a[0] != b[0] else 1
    return (a[k] <= c[k] <= b[k]) or (a[k] >= c[k] >= b[k])


def _intersect2(
    a: tuple[int, int], b: tuple[int, int], c: tuple[int, int], d: tuple[int, int]
) -> bool:
    if _intersect_prop2(a, b, c, d):
        return True
    return _between2(a, b, c) or _between2(a, b, d) or _between2(c, d, a) or _between2(c, d, b)


def _triangulate(xz: list[tuple[int, int]]) -> tuple[list[tuple[int, int, int]], bool]:
    """Recast's ear clipping (shortest diagonal first); returns contour-index triangles."""
    idx = list(range(len(xz)))
    ear = [False] * len(idx)
    n = len(idx)
    for i in range(n):
        i2 = (i + 2) % n
        if _diagonal_ok(i, i2, idx, xz, loose=False):
            ear[(i + 1) % n] = True
    tris: list[tuple[int, int, int]] = []
    while len(idx) > 3:
        n = len(idx)
        best_len, mini = -1, -1
        for i in range(n):
            i1 = (i + 1) % n
            if ear[i1]:
                p0, p2 = xz[idx[i]], xz[idx[(i1 + 1) % n]]
                length = (p2[0] - p0[0]) ** 2 + (p2[1] - p0[1]) ** 2
                if best_len < 0 or length < best_len:
                    best_len, mini = length, i
        if mini == -1:
            for i in range(n):
                i2 = (i + 2) % n
                if _diagonal_ok(i, i2, idx, xz, loose=True):
                    p0, p2 = xz[idx[i]], xz[idx[(i2 + 1) % n]]
                    length = (p2[0] - p0[0]) ** 2 + (p2[1] - p0[1]) ** 2
                    if best_len < 0 or length < best_len:
                        best_len, mini = length, i
            if mini == -1:
                return tris, False
        i = mini
        i1 = (i + 1) % n
        tris.append((idx[i], idx[i1], idx[(i1 + 1) % n]))
        del idx[i1]
        del ear[i1]
        n -= 1
        if i1 >= n:
            i1 = 0
        i = (i1 - 1) % n
        ear[i] = _diagonal_ok((i - 1) % n, i1, idx, xz, loose=False)
        ear[i1] = _diagonal_ok(i, (i1 + 1) % n, idx, xz, loose=False)
    tris.append((idx[0], idx[1], idx[2]))
    return tris, True


def _merge_value(
    pa: list[int], pb: list[int], xz: list[tuple[int, int]], nvp: int
) -> tuple[int, int, int]:
    """getPolyMergeValue: (squared shared-edge length or -1, edge in pa, edge in pb)."""
    na, nb = len(pa), len(pb)
    if na + nb - 2 > nvp:
        return -1, -1, -1
    ea = eb = -1
    for i in range(na):
        a0, a1 = pa[i], pa[(i + 1) % na]
        if a0 > a1:
            a0, a1 = a1, a0
        for j in range(nb):
            b0, b1 = pb[j], pb[(j + 1) % nb]
            if b0 > b1:
                b0, b1 = b1, b0
            if a0 == b0 and a1 == b1:
                ea, eb = i, j
                break
    if ea == -1 or eb == -1:
        return -1, -1, -1
    if not _left2(xz[pa[(ea + na - 1) % na]], xz[pa[ea]], xz[pb[(eb + 2) % nb]]):
        return -1, -1, -1
    if not _left2(xz[pb[(eb + nb - 1) % nb]], xz[pb[eb]], xz[pa[(ea + 2) % na]]):
        return -1, -1, -1
    a, b = xz[pa[ea]], xz[pa[(ea + 1) % na]]
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2, ea, eb


def _merge_polys(polys: list[list[int]], xz: list[tuple[int, int]], nvp: int) -> list[list[int]]:
    """Recast's greedy merge of a contour's triangles into convex polygons (<= nvp verts).

    Each step merges the pair with the longest shared edge, the first pair in (j, k) order on
    ties; values are cached and recomputed only for the polygons a merge changes.
    """
    values: dict[tuple[int, int], tuple[int, int, int]] = {}

    def edges_of(p: list[int]) -> set[tuple[int, int]]:
        return {
            (min(p[i], p[(i + 1) % len(p)]), max(p[i], p[(i + 1) % len(p)])) for i in range(len(p))
        }

    def refresh(j: int) -> None:
        mine = edges_of(polys[j])
        for k in range(len(polys)):
            if k == j:
                continue
            a, b = (j, k) if j < k else (k, j)
            if mine & edges_of(polys[k]):
                values[(a, b)] = _merge_value(polys[a], polys[b], xz, nvp)
            else:
                values.pop((a, b), None)

    for j in range(len(polys)):
        refresh(j)
    while True:
        best = max(((v[0], -a, -b) for (a, b), v in values.items()), default=(0, 0, 0))
        if best[0] <= 0:
            return polys
        pa, pb = -best[1], -best[2]
        _, ea, eb = values[(pa, pb)]
        na, nb = len(polys[pa]), len(polys[pb])
        merged = [polys[pa][(ea + 1 + i) % na] for i in range(na - 1)]
        merged += [polys[pb][(eb + 1 + i) % nb] for i in range(nb - 1)]
        polys[pa] = merged
        last = len(polys) - 1
        polys[pb] = polys[last]
        polys.pop()
        values = {k: v for k, v in values.items() if last not in k and pb not in k and pa not in k}
        refresh(pa)
        if pb < len(polys):
            refresh(pb)


@dataclass
class _PolyMesh:
    """Recast's polygon mesh: integer vertices and convex polygons with edge neighbours."""

    verts: np.ndarray  # (V, 3) int64: x (cells), y (voxels), z (cells)
    polys: list[list[int]]  # vertex indices per polygon, Recast's winding
    neighbours: list[list[int]]  # per polygon edge i (verts i -> i + 1): polygon or -1
    regs: list[int]


class _VertexTable:
    """addVertex: vertices deduplicated on (x, z) with heights within 2 voxels."""

    def __init__(self) -> None:
        self.verts: list[tuple[int, int, int]] = []
        self._by_xz: dict[tuple[int, int], list[int]] = {}

    def add(self, x: int, y: int, z: int) -> int:
        bucket = self._by_xz.setdefault((x, z), [])
        for i in reversed(bucket):
            if abs(self.verts[i][1] - y) <= 2:
                return i
        self.verts.append((x, y, z))
        bucket.append(len(self.verts) - 1)
        return len(self.verts) - 1


def _build_poly_mesh(contours: list[_Contour], nvp: int) -> _PolyMesh:
    """rcBuildPolyMesh: triangulate each contour, merge into convex polygons, link edges."""
    table = _VertexTable()
    polys: list[list[int]] = []
    regs: list[int] = []
    for cont in contours:
        if len(cont.verts) < 3:
            continue
        local_xz = [(int(v[0]), int(v[2])) for v in cont.verts]
        tris, ok = _triangulate(local_xz)
        if not ok:
            logger.warning("navmesh: bad triangulation of a region %d contour", cont.reg)
        index = [table.add(int(v[0]), int(v[1]), int(v[2])) for v in cont.verts]
        cont_polys = [
            [index[a], index[b], index[c]] for a, b, c in tris if a != b and a != c and b != c
        ]
        if not cont_polys:
            continue
        xz = [(v[0], v[2]) for v in table.verts]
        if nvp > 3:
            cont_polys = _merge_polys(cont_polys, xz, nvp)
        polys += cont_polys
        regs += [cont.reg] * len(cont_polys)
    verts = np.array(table.verts, dtype=np.int64).reshape(-1, 3)
    return _PolyMesh(verts, polys, _mesh_adjacency(polys), regs)


def _mesh_adjacency(polys: list[list[int]]) -> list[list[int]]:
    """buildMeshAdjacency: the polygon across each edge (same two vertices), -1 for walls."""
    open_edges: dict[tuple[int, int], list[list[int]]] = {}
    for pi, p in enumerate(polys):
        for j in range(len(p)):
            v0, v1 = p[j], p[(j + 1) % len(p)]
            if v0 < v1:
                open_edges.setdefault((v0, v1), []).append([pi, j, pi, 0])
    for pi, p in enumerate(polys):
        for j in range(len(p)):
            v0, v1 = p[j], p[(j + 1) % len(p)]
            if v0 > v1:
                for edge in reversed(open_edges.get((v1, v0), [])):
                    if edge[0] == edge[2]:
                        edge[2], edge[3] = pi, j
                        break
    neighbours = [[-1] * len(p) for p in polys]
    for records in open_edges.values():
        for p0, e0, p1, e1 in records:
            if p0 != p1:
                neighbours[p0][e0] = p1
                neighbours[p1][e1] = p0
    return neighbours


# --- 7. Detour-style queries ------------------------------------------------------------------


@dataclass
class _Node:
    """An A* search node (dtNode)."""

    poly: int
    pos: np.ndarray  # (3,) world
    cost: float = 0.0
    total: float = 0.0
    parent: int = -1
    is_open: bool = False
    is_closed: bool = False


class _NodeQueue:
    """dtNodeQueue: Detour's binary heap on ``total``, so ties break as Detour's do."""

    def __init__(self) -> None:
        self.heap: list[_Node] = []

    def _bubble_up(self, i: int, node: _Node) -> None:
        heap = self.heap
        parent = (i - 1) // 2
        while i > 0 and heap[parent].total > node.total:
            heap[i] = heap[parent]
            i = parent
            parent = (i - 1) // 2
        heap[i] = node

    def _trickle_down(self, i: int, node: _Node) -> None:
        heap = self.heap
        size = len(heap)
        child = 2 * i + 1
        while child < size:
            if child + 1 < size and heap[child].total > heap[child + 1].total:
                child += 1
            heap[i] = heap[child]
            i = child
            child = 2 * i + 1
        self._bubble_up(i, node)

    def push(self, node: _Node) -> None:
        self.heap.append(node)
        self._bubble_up(len(self.heap) - 1, node)

    def pop(self) -> _Node:
        result = self.heap[0]
        last = self.heap.pop()
        if self.heap:
            self._trickle_down(0, last)
        return result

    def modify(self, node: _Node) -> None:
        for i, other in enumerate(self.heap):
            if other is node:
                self._bubble_up(i, node)
                return

    def __len__(self) -> int:
        return len(self.heap)


def _tri_area2d(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """dtTriArea2D (x, z)."""
    return float((c[0] - a[0]) * (b[2] - a[2]) - (b[0] - a[0]) * (c[2] - a[2]))


def _dist_pt_seg_2d(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """dtDistancePtSegSqr2D: squared (x, z) distance and the segment parameter."""
    pqx, pqz = b[0] - a[0], b[2] - a[2]
    dx, dz = p[0] - a[0], p[2] - a[2]
    d = pqx * pqx + pqz * pqz
    t = pqx * dx + pqz * dz
    if d > 0:
        t /= d
    t = min(max(t, 0.0), 1.0)
    ex, ez = a[0] + t * pqx - p[0], a[2] + t * pqz - p[2]
    return float(ex * ex + ez * ez), float(t)


class _NavMeshQuery:
    """The navmesh as Detour holds it, with the queries habitat-sim makes of it."""

    def __init__(self, mesh: _PolyMesh, grid: _Grid, climb_m: float) -> None:
        self.mesh = mesh
        self.climb_m = climb_m
        v = mesh.verts
        self.verts = np.stack(
            [
                grid.bmin[0] + v[:, 0].astype(_F32) * grid.cs,
                grid.bmin[1] + v[:, 1].astype(_F32) * grid.ch,
                grid.bmin[2] + v[:, 2].astype(_F32) * grid.cs,
            ],
            axis=1,
        ).astype(np.float64)
        n_poly = len(mesh.polys)
        self.n_poly = n_poly
        nvp = max((len(p) for p in mesh.polys), default=3)
        self.count = np.array([len(p) for p in mesh.polys], dtype=np.int64)
        idx = np.zeros((n_poly, nvp), dtype=np.int64)
        for i, p in enumerate(mesh.polys):
            idx[i, : len(p)] = p
            idx[i, len(p) :] = p[0]
        self.poly_idx = idx
        self.pv = self.verts[idx] if n_poly else np.zeros((0, nvp, 3))  # (P, nvp, 3)
        self.area = self._poly_areas()
        self.enabled = self.area >= _ZERO_AREA_M2
        self.links = [
            [(nb, e) for e, nb in enumerate(mesh.neighbours[i]) if nb >= 0] for i in range(n_poly)
        ]
        self.island = self._islands()

    def _poly_areas(self) -> np.ndarray:
        x = self.pv[:, :, 0]
        z = self.pv[:, :, 2]
        cross = x * np.roll(z, -1, axis=1) - np.roll(x, -1, axis=1) * z
        return np.abs(cross.sum(axis=1)) * 0.5

    def _islands(self) -> np.ndarray:
        if self.n_poly == 0:
            return np.zeros(0, dtype=np.int64)
        rows = [i for i, links in enumerate(self.links) for _ in links]
        cols = [nb for links in self.links for nb, _ in links]
        graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.n_poly, self.n_poly))
        _, labels = connected_components(graph, directed=False)
        return np.asarray(labels, dtype=np.int64)

    # geometry ---------------------------------------------------------------------------------

    def inside(self, x: float, z: float) -> np.ndarray:
        """(P,) bool: dtPointInPolygon of (x, z) for every polygon."""
        vi = self.pv
        vj = np.roll(self.pv, 1, axis=1)
        valid = np.arange(vi.shape[1])[None, :] < self.count[:, None]
        # the roll wraps the padded slot; point the first vertex's predecessor at the last
        last = self.pv[np.arange(self.n_poly), self.count - 1]
        vj = vj.copy()
        vj[:, 0] = last
        straddle = (vi[:, :, 2] > z) != (vj[:, :, 2] > z)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = (vj[:, :, 0] - vi[:, :, 0]) * (z - vi[:, :, 2]) / (vj[:, :, 2] - vi[:, :, 2])
        hits = valid & straddle & (x < xc + vi[:, :, 0])
        return np.asarray(hits.sum(axis=1) % 2 == 1)

    def closest_on_boundary(self, x: float, z: float) -> tuple[np.ndarray, np.ndarray]:
        """Per polygon: squared (x, z) distance to its boundary (P,) and that point (P, 3)."""
        a = self.pv
        b = np.roll(self.pv, -1, axis=1).copy()
        b[np.arange(self.n_poly), self.count - 1] = self.pv[:, 0]
        valid = np.arange(a.shape[1])[None, :] < self.count[:, None]
        ab = b - a
        denom = ab[:, :, 0] ** 2 + ab[:, :, 2] ** 2
        t = ab[:, :, 0] * (x - a[:, :, 0]) + ab[:, :, 2] * (z - a[:, :, 2])
        t = np.clip(np.where(denom > 0, t / np.where(denom > 0, denom, 1.0), 0.0), 0.0, 1.0)
        pts = a + t[..., None] * ab
        d2 = (pts[:, :, 0] - x) ** 2 + (pts[:, :, 2] - z) ** 2
        d2 = np.where(valid, d2, np.inf)
        k = np.argmin(d2, axis=1)
        rows = np.arange(self.n_poly)
        return d2[rows, k], pts[rows, k]

    def height_at(self, poly: int, x: float, z: float) -> float:
        """Height (m) of a polygon at (x, z), from its vertices (a fan of triangles)."""
        p = self.pv[poly, : self.count[poly]]
        for i in range(1, len(p) - 1):
            a, b, c = p[0], p[i], p[i + 1]
            det = (b[0] - a[0]) * (c[2] - a[2]) - (c[0] - a[0]) * (b[2] - a[2])
            if det == 0:
                continue
            u = ((x - a[0]) * (c[2] - a[2]) - (c[0] - a[0]) * (z - a[2])) / det
            v = ((b[0] - a[0]) * (z - a[2]) - (x - a[0]) * (b[2] - a[2])) / det
            if u >= -1e-9 and v >= -1e-9 and u + v <= 1 + 1e-9:
                return float(a[1] + u * (b[1] - a[1]) + v * (c[1] - a[1]))
        return float(p[:, 1].mean())

    def nearest_poly(
        self,
        point: np.ndarray,
        mask: np.ndarray | None = None,
        extent: tuple[float, float] | None = (2.0, 4.0),
    ) -> tuple[int, np.ndarray]:
        """findNearestPoly: (polygon or -1, the nearest point on it (3,)).

        Polygons whose (x, z) contain the point rank by their height difference beyond the
        climb; others by 3D distance to their boundary. ``extent`` is the half size of the
        search box (horizontal, vertical); ``mask`` (P,) limits the candidates.
        """
        x, y, z = float(point[0]), float(point[1]), float(point[2])
        if self.n_poly == 0:
            return -1, np.full(3, np.nan)
        cand = self.enabled.copy() if mask is None else (self.enabled & mask)
        if extent is not None:
            lo = self.pv.min(axis=1)
            hi = self.pv.max(axis=1)
            ex, ey = extent
            cand &= (lo[:, 0] <= x + ex) & (hi[:, 0] >= x - ex)
            cand &= (lo[:, 2] <= z + ex) & (hi[:, 2] >= z - ex)
            cand &= (lo[:, 1] <= y + ey) & (hi[:, 1] >= y - ey)
        if not cand.any():
            return -1, np.full(3, np.nan)
        over = self.inside(x, z) & cand
        d2_xz, closest = self.closest_on_boundary(x, z)
        score = np.full(self.n_poly, np.inf)
        for p in np.nonzero(over)[0]:
            h = self.height_at(int(p), x, z)
            score[p] = max(abs(y - h) - self.climb_m, 0.0) ** 2
        off = cand & ~over
        score[off] = d2_xz[off] + (closest[off, 1] - y) ** 2
        best = int(np.argmin(score))
        if not np.isfinite(score[best]):
            return -1, np.full(3, np.nan)
        if over[best]:
            return best, np.array([x, self.height_at(best, x, z), z])
        return best, closest[best].copy()

    def portal(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """getPortalPoints: (left, right) of the edge of ``a`` leading to ``b``."""
        for nb, e in self.links[a]:
            if nb == b:
                n = self.count[a]
                return self.pv[a, e], self.pv[a, (e + 1) % n]
        raise KeyError((a, b))

    # path search ------------------------------------------------------------------------------

    def find_path(
        self, start: int, end: int, start_pos: np.ndarray, end_pos: np.ndarray
    ) -> list[int]:
        """dtNavMeshQuery::findPath: polygon corridor by A* over portal-edge midpoints."""
        if start == end:
            return [start]
        nodes: dict[int, _Node] = {}
        first = _Node(
            start,
            start_pos.copy(),
            0.0,
            float(np.linalg.norm(start_pos - end_pos)) * _HEURISTIC_SCALE,
        )
        first.is_open = True
        nodes[start] = first
        queue = _NodeQueue()
        queue.push(first)
        last_best = first
        last_best_cost = first.total
        while len(queue):
            best = queue.pop()
            best.is_open = False
            best.is_closed = True
            if best.poly == end:
                last_best = best
                break
            for nb, e in self.links[best.poly]:
                if nb == best.parent or not self.enabled[nb]:
                    continue
                node = nodes.get(nb)
                if node is None:
                    n = self.count[best.poly]
                    mid = (self.pv[best.poly, e] + self.pv[best.poly, (e + 1) % n]) * 0.5
                    node = _Node(nb, mid)
                    nodes[nb] = node
                step = float(np.linalg.norm(node.pos - best.pos))
                if nb == end:
                    cost = best.cost + step + float(np.linalg.norm(end_pos - node.pos))
                    heuristic = 0.0
                else:
                    cost = best.cost + step
                    heuristic = float(np.linalg.norm(node.pos - end_pos)) * _HEURISTIC_SCALE
                total = cost + heuristic
                if node.is_open and total >= node.total:
                    continue
                if node.is_closed and total >= node.total:
                    continue
                node.parent = best.poly
                node.is_closed = False
                node.cost = cost
                node.total = total
                if node.is_open:
                    queue.modify(node)
                else:
                    node.is_open = True
                    queue.push(node)
                if heuristic < last_best_cost:
                    last_best_cost = heuristic
                    last_best = node
        path = [last_best.poly]
        while nodes[path[-1]].parent >= 0:
            path.append(nodes[path[-1]].parent)
        return path[::-1]

    def closest_on_poly_boundary(self, poly: int, point: np.ndarray) -> np.ndarray:
        """closestPointOnPolyBoundary: the point itself when inside, else its edge projection."""
        n = self.count[poly]
        verts = self.pv[poly, :n]
        inside = False
        best_d, best = math.inf, np.zeros(3)
        for i in range(n):
            vi, vj = verts[i], verts[i - 1]
            if ((vi[2] > point[2]) != (vj[2] > point[2])) and (
                point[0] < (vj[0] - vi[0]) * (point[2] - vi[2]) / (vj[2] - vi[2]) + vi[0]
            ):
                inside = not inside
            d, t = _dist_pt_seg_2d(point, vj, vi)
            if d < best_d:
                best_d, best = d, vj + (vi - vj) * t
        return point.copy() if inside else best

    def straight_path(
        self, start_pos: np.ndarray, end_pos: np.ndarray, path: list[int]
    ) -> list[np.ndarray]:
        """dtNavMeshQuery::findStraightPath: the funnel algorithm through the corridor."""
        start = self.closest_on_poly_boundary(path[0], start_pos)
        end = self.closest_on_poly_boundary(path[-1], end_pos)
        out = [start]

        def append(p: np.ndarray) -> None:
            if float(np.sum((out[-1] - p) ** 2)) >= (1.0 / 16384.0) ** 2:
                out.append(p.copy())

        if len(path) > 1:
            apex, left_pt, right_pt = start.copy(), start.copy(), start.copy()
            apex_i = left_i = right_i = 0
            i = 0
            while i < len(path):
                if i + 1 < len(path):
                    left, right = self.portal(path[i], path[i + 1])
                    if i == 0 and _dist_pt_seg_2d(apex, left, right)[0] < 0.001**2:
                        i += 1
                        continue
                else:
                    left, right = end, end
                if _tri_area2d(apex, right_pt, right) <= 0.0:
                    if _same(apex, right_pt) or _tri_area2d(apex, left_pt, right) > 0.0:
                        right_pt, right_i = right.copy(), i
                    else:
                        apex, apex_i = left_pt.copy(), left_i
                        append(apex)
                        left_pt, right_pt = apex.copy(), apex.copy()
                        left_i = right_i = i = apex_i
                        i += 1
                        continue
                if _tri_area2d(apex, left_pt, left) >= 0.0:
                    if _same(apex, left_pt) or _tri_area2d(apex, right_pt, left) < 0.0:
                        left_pt, left_i = left.copy(), i
                    else:
                        apex, apex_i = right_pt.copy(), right_i
                        append(apex)
                        left_pt, right_pt = apex.copy(), apex.copy()
                        left_i = right_i = i = apex_i
                        i += 1
                        continue
                i += 1
        append(end)
        return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """dtVequal: within 1/16384 m."""
    return float(np.sum((a - b) ** 2)) < (1.0 / 16384.0) ** 2


# --- the public grid --------------------------------------------------------------------------


@dataclass(frozen=True)
class NavMeshStats:
    """Sizes of the built navmesh, for logs and tests."""

    cells_walkable: int
    regions: int
    contours: int
    polygons: int
    islands: int


class NavGrid:
    """The navigable floor of a mesh, with habitat-style navigation queries.

    Built from world vertices (V, 3) (Y up, metres) and faces (F, 3) at ``level_y``; the
    island holding ``start_xz`` (within ``spec.start_tolerance_m``), or the largest one,
    is the start island. With a start, other levels that stairs connect to the start's
    floor are part of it where they do not lie above it in plan (:attr:`multi_level`).
    Grid cell ``(row, col)`` covers world ``x`` in ``origin_x + col * cell_m`` .. + cell_m
    and ``z`` in ``origin_z + row * cell_m`` .. + cell_m.

    Raises:
        AeqaError: no triangles, no navigable floor at the level, or a start off it.

    Attributes:
        floor_y: (rows, cols) float32 navmesh surface height per cell, world metres (the top
            of the floor's voxel, as habitat-sim reports heights); NaN where no floor.
        navigable: (rows, cols) bool, cells whose centre lies in a navmesh polygon (any
            island).
        island: (rows, cols) bool, the cells of the island that holds the start.
        polygons: list of (V, 3) float64 world vertices of every navmesh polygon.
        multi_level: whether the floor reachable from the start spans more than one level
            (its cells' ``floor_y`` then differ by more than a step).
    """

    def __init__(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        level_y: float,
        spec: NavSpec,
        start_xz: tuple[float, float] | None = None,
        source: str = "scene",
    ) -> None:
        self.spec = spec
        self.level_y = float(level_y)
        self.cell_m = spec.cell_m
        self._cfg = _Config.from_spec(spec)
        vertices = _habitat_frame(vertices, spec.asset_up)
        faces = np.asarray(faces, dtype=np.int64)
        if len(vertices) == 0 or len(faces) == 0:
            raise AeqaError(f"{source}: the mesh has no triangles; check the scene file")
        self._grid = _make_grid(vertices, spec)
        grid = self._grid
        self.origin_x = float(grid.bmin[0])
        self.origin_z = float(grid.bmin[2])
        self.cols = grid.width
        self.rows = grid.height
        self.multi_level = False
        self._query = self._build_navmesh(vertices, faces, start_xz, source)
        self._check_not_empty(source)
        self._start_island = self._pick_island(start_xz, source)
        self._finish_grids()
        logger.info(
            "navmesh: %d polygons in %d islands, start island %.2f m2 at level %.2f m",
            self._query.n_poly,
            self.stats.islands,
            self.island_area_m2,
            self.level_y,
        )

    # --- construction ------------------------------------------------------------------------

    def _build_navmesh(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        start_xz: tuple[float, float] | None,
        source: str,
    ) -> _NavMeshQuery:
        spec, cfg, grid = self.spec, self._cfg, self._grid
        tris = vertices[faces]
        walkable = _walkable_triangles(tris, cfg.walkable_slope_cos)
        band_lo = self.level_y - spec.max_drop_m - 2 * spec.cell_height_m
        band_hi = self.level_y + spec.max_climb_m + spec.agent_height_m + 3 * spec.cell_height_m
        near = (tris[:, :, 1].max(axis=1) >= band_lo) & (tris[:, :, 1].min(axis=1) <= band_hi)
        records = _rasterise(tris[near], walkable[near], grid)
        cols = _merge_spans(records, grid.width * grid.height, cfg.walkable_climb)
        _filter_low_hanging(cols, cfg.walkable_climb)
        layer = _select_layer(cols, grid, cfg, spec, self.level_y)
        if start_xz is not None:
            layer = self._other_levels(
                layer, cols, records, tris[~near], walkable[~near], start_xz, source
            )
        eroded = _erode(layer, grid, cfg.walkable_radius)
        dist, max_dist = _distance_field(layer, eroded, grid)
        reg = _Watershed(layer, eroded, dist, max_dist, grid).run(
            cfg.min_region_area, cfg.merge_region_area
        )
        contours = _build_contours(layer, eroded, reg, grid, cfg)
        mesh = _build_poly_mesh(contours, cfg.verts_per_poly)
        self._layer = layer
        self._stats_parts = (int(eroded.sum()), int(reg.max(initial=0)), len(contours))
        top_y = grid.bmin[1] + layer.top.astype(_F32) * grid.ch
        self.floor_y = (
            np.where(layer.present, top_y, np.nan)
            .astype(np.float32)
            .reshape(grid.height, grid.width)
        )
        return _NavMeshQuery(mesh, grid, spec.max_climb_m)

    def _other_levels(
        self,
        layer: _Layer,
        near_cols: _Columns,
        near: _SpanRecords,
        far_tris: np.ndarray,
        far_walkable: np.ndarray,
        start_xz: tuple[float, float],
        source: str,
    ) -> _Layer:
        """The layer, with the floor of other levels that stairs or ramps connect to the
        start's floor (over all triangles, as Recast's connectivity joins spans). Where the
        start's floor reaches no other level, ``layer`` itself, unchanged; where what it
        reaches overlaps itself in plan (a storey above another), also ``layer``: one span per
        cell cannot hold both, and the navigable area stays the start's level."""
        spec, cfg, grid = self.spec, self._cfg, self._grid
        # First over the level's band: spans there link only to spans within the climb, so
        # while the flood stays on the level's own spans, triangles outside the band (which
        # lie more than a storey away) cannot change it.
        reached = _reach_from_start(near_cols, grid, cfg, spec, start_xz, self.level_y)
        if (
            reached is None
            or (
                layer.present[reached.cell]
                & (layer.top[reached.cell] == near_cols.smax[reached.k, reached.cell])
            ).all()
        ):
            return layer
        far = _rasterise(far_tris, far_walkable, grid)
        records = _SpanRecords(
            np.concatenate([near.cell, far.cell]),
            np.concatenate([near.smin, far.smin]),
            np.concatenate([near.smax, far.smax]),
            np.concatenate([near.walkable, far.walkable]),
        )
        cols = _merge_spans(records, grid.width * grid.height, cfg.walkable_climb)
        _filter_low_hanging(cols, cfg.walkable_climb)
        reached = _reach_from_start(cols, grid, cfg, spec, start_xz, self.level_y)
        if reached is None:
            return layer
        same = layer.present[reached.cell] & (
            layer.top[reached.cell] == cols.smax[reached.k, reached.cell]
        )
        if same.all():
            return layer
        if reached.stacked:
            logger.warning(
                "%s: the floor reachable from the start lies above itself over %.1f m2 (a "
                "storey above another); only the level at %.2f m is navigable",
                source,
                reached.stacked * spec.cell_m**2,
                self.level_y,
            )
            return layer
        self.multi_level = True
        base = _select_layer(cols, grid, cfg, spec, self.level_y)
        return _override_layer(base, cols, reached, grid, cfg)

    def _check_not_empty(self, source: str) -> None:
        if not self._query.enabled.any():
            raise AeqaError(
                f"{source}: no navigable floor at height {self.level_y:.2f} m for an agent of "
                f"radius {self.spec.agent_radius_m} m; check the scene has a floor and its up axis"
            )

    def _pick_island(self, start_xz: tuple[float, float] | None, source: str) -> int:
        q = self._query
        if start_xz is None:
            areas = np.bincount(q.island[q.enabled], weights=q.area[q.enabled])
            return int(np.argmax(areas))
        x, z = float(start_xz[0]), float(start_xz[1])
        y = self._height_near(x, z)
        poly, nearest = q.nearest_poly(np.array([x, y, z]), extent=None)
        if poly < 0 or math.hypot(nearest[0] - x, nearest[2] - z) > self.spec.start_tolerance_m:
            raise AeqaError(
                f"{source}: start position ({x:.2f}, {self.level_y:.2f}, {z:.2f}) is not on the "
                "navigable area; give a start on free floor"
            )
        return int(q.island[poly])

    def _height_near(self, x: float, z: float) -> float:
        row, col = self.cell_of(np.array([x, 0.0, z]))
        if self._in_grid(row, col) and np.isfinite(self.floor_y[row, col]):
            return float(self.floor_y[row, col])
        return self.level_y

    def _finish_grids(self) -> None:
        q = self._query
        self._island_polys = q.enabled & (q.island == self._start_island)
        poly_of_cell = self._rasterise_polys()
        self._poly_of_cell = poly_of_cell
        self.navigable = poly_of_cell >= 0
        self.island = self.navigable & self._island_polys[np.maximum(poly_of_cell, 0)]
        self._boundary = self._island_boundary()
        self._graph = self._build_graph()
        self._poly_cdf = np.cumsum(np.where(self._island_polys, q.area, 0.0))

    def _rasterise_polys(self) -> np.ndarray:
        """(rows, cols) int: the enabled polygon holding each cell centre, -1 where none."""
        q = self._query
        out = np.full((self.rows, self.cols), -1, dtype=np.int64)
        xs = self.origin_x + (np.arange(self.cols) + 0.5) * self.cell_m
        zs = self.origin_z + (np.arange(self.rows) + 0.5) * self.cell_m
        for p in np.nonzero(q.enabled)[0]:
            verts = q.pv[p, : q.count[p]]
            c0, c1 = np.searchsorted(xs, [verts[:, 0].min(), verts[:, 0].max()])
            r0, r1 = np.searchsorted(zs, [verts[:, 2].min(), verts[:, 2].max()])
            if c1 <= c0 or r1 <= r0:
                continue
            gx, gz = np.meshgrid(xs[c0:c1], zs[r0:r1])
            inside = np.ones(gx.shape, dtype=bool)
            sign = 1.0 if q.area[p] == 0 else np.sign(_polygon_signed_area(verts))
            for i in range(len(verts)):
                a, b = verts[i], verts[(i + 1) % len(verts)]
                cross = (b[0] - a[0]) * (gz - a[2]) - (b[2] - a[2]) * (gx - a[0])
                inside &= cross * sign >= -1e-9
            block = out[r0:r1, c0:c1]
            block[inside & (block < 0)] = p
        return out

    def _island_boundary(self) -> np.ndarray:
        """(E, 2, 3) world segments bounding the start island (edges with no island neighbour)."""
        q = self._query
        segments = []
        for p in np.nonzero(self._island_polys)[0]:
            n = q.count[p]
            for e, nb in enumerate(q.mesh.neighbours[p]):
                if nb >= 0 and self._island_polys[nb]:
                    continue
                segments.append((q.pv[p, e], q.pv[p, (e + 1) % n]))
        return np.array(segments, dtype=np.float64).reshape(-1, 2, 3)

    def _build_graph(self) -> csr_matrix:
        index = -np.ones((self.rows, self.cols), dtype=np.int64)
        cells = np.argwhere(self.island)
        index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
        self._cells = cells
        self._index = index
        sources: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for dr, dc, w in _NEIGHBOURS:
            r2 = cells[:, 0] + dr
            c2 = cells[:, 1] + dc
            ok = (r2 >= 0) & (r2 < self.rows) & (c2 >= 0) & (c2 < self.cols)
            ok[ok] = self.island[r2[ok], c2[ok]]
            if dr != 0 and dc != 0:
                # no corner cutting: both orthogonal neighbours must be free too
                ok[ok] &= (
                    self.island[cells[ok, 0] + dr, cells[ok, 1]]
                    & self.island[cells[ok, 0], cells[ok, 1] + dc]
                )
            if self.multi_level:
                # Cells of two levels can touch in plan at a drop: no edge between them.
                step = np.abs(
                    self.floor_y[cells[ok, 0], cells[ok, 1]] - self.floor_y[r2[ok], c2[ok]]
                )
                ok[ok] = step <= self.spec.max_climb_m + 0.5 * self.spec.cell_height_m
            a = index[cells[ok, 0], cells[ok, 1]]
            b = index[r2[ok], c2[ok]]
            sources += [a, b]
            targets += [b, a]
            weights += [np.full(len(a), w * self.cell_m)] * 2
        n = len(cells)
        return csr_matrix(
            (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
            shape=(n, n),
        )

    # --- coordinates -------------------------------------------------------------------------

    def cell_of(self, point: np.ndarray) -> tuple[int, int]:
        """(row, col) of a world point; may lie outside the grid."""
        col = int(math.floor((float(point[0]) - self.origin_x) / self.cell_m))
        row = int(math.floor((float(point[2]) - self.origin_z) / self.cell_m))
        return row, col

    def cell_centre(self, row: int, col: int) -> np.ndarray:
        """World point (3,) at the centre of a cell, on its floor."""
        y = self.floor_y[row, col]
        return np.array(
            [
                self.origin_x + (col + 0.5) * self.cell_m,
                float(y) if np.isfinite(y) else self.level_y,
                self.origin_z + (row + 0.5) * self.cell_m,
            ]
        )

    def _in_grid(self, row: int, col: int) -> bool:
        return 0 <= row < self.rows and 0 <= col < self.cols

    # --- queries -----------------------------------------------------------------------------

    @property
    def stats(self) -> NavMeshStats:
        q = self._query
        walkable, regions, contours = self._stats_parts
        islands = len(np.unique(q.island[q.enabled])) if q.n_poly else 0
        return NavMeshStats(walkable, regions, contours, q.n_poly, islands)

    @property
    def polygons(self) -> list[np.ndarray]:
        q = self._query
        return [q.pv[p, : q.count[p]].copy() for p in range(q.n_poly)]

    @property
    def island_area_m2(self) -> float:
        """Area (m^2) of the start island's polygons, as habitat-sim's ``island_area``: their
        surface area, which on stairs and ramps exceeds the area in plan (habitat-sim's
        detail mesh follows the steps more closely, so there it is up to ~0.5% larger)."""
        q = self._query
        polys = q.island == self._start_island
        if not self.multi_level:
            return float(q.area[polys].sum())
        total = 0.0
        for p in np.nonzero(polys)[0]:
            v = q.pv[p, : q.count[p]]
            cross = np.cross(v[1:-1] - v[0], v[2:] - v[0])
            total += 0.5 * float(np.linalg.norm(cross, axis=1).sum())
        return total

    def is_navigable(self, point: np.ndarray) -> bool:
        """habitat-sim's ``is_navigable``: the point projects onto a polygon within 1 cm
        horizontally and ``max_y_delta`` vertically (any island of this level)."""
        poly, nearest = self._query.nearest_poly(np.asarray(point, dtype=np.float64))
        if poly < 0:
            return False
        if abs(float(nearest[1]) - float(point[1])) > self.spec.max_y_delta_m:
            return False
        return math.hypot(nearest[0] - point[0], nearest[2] - point[2]) <= _ON_MESH_M

    def on_island(self, point: np.ndarray) -> bool:
        """True when the point lies on the start island, within ``start_tolerance_m``
        horizontally (the tolerance a start is accepted with) and ``max_y_delta`` vertically."""
        q = self._query
        p = np.asarray(point, dtype=np.float64)
        poly, nearest = q.nearest_poly(p, self._island_polys)
        if poly < 0 or abs(float(nearest[1]) - float(p[1])) > self.spec.max_y_delta_m:
            return False
        return math.hypot(nearest[0] - p[0], nearest[2] - p[2]) <= self.spec.start_tolerance_m

    def snap(self, point: np.ndarray) -> np.ndarray:
        """The nearest point (3,) of the start island, at the navmesh height."""
        p = np.asarray(point, dtype=np.float64)
        poly, nearest = self._query.nearest_poly(p, self._island_polys, extent=None)
        if poly < 0:
            return self.cell_centre(*map(int, self._cells[0]))
        return nearest

    def clearance_m(self, point: np.ndarray) -> float:
        """Signed horizontal distance (metres) from a point to the island's border, positive
        inside."""
        if len(self._boundary) == 0:
            return -math.inf
        a = self._boundary[:, 0]
        b = self._boundary[:, 1]
        ab = b - a
        x, z = float(point[0]), float(point[2])
        denom = ab[:, 0] ** 2 + ab[:, 2] ** 2
        t = ab[:, 0] * (x - a[:, 0]) + ab[:, 2] * (z - a[:, 2])
        t = np.clip(np.where(denom > 0, t / np.where(denom > 0, denom, 1.0), 0.0), 0.0, 1.0)
        d = float(
            np.sqrt(((a[:, 0] + t * ab[:, 0] - x) ** 2 + (a[:, 2] + t * ab[:, 2] - z) ** 2).min())
        )
        inside = bool((self._query.inside(x, z) & self._island_polys).any())
        return d if inside else -d

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A point (3,) of the start island, uniform over its area (as Detour's
        ``findRandomPoint``: a polygon by area, then a point in it)."""
        q = self._query
        poly = int(np.searchsorted(self._poly_cdf, rng.random() * self._poly_cdf[-1], side="right"))
        poly = min(poly, q.n_poly - 1)
        verts = q.pv[poly, : q.count[poly]]
        fan = [abs(_polygon_signed_area(verts[[0, i, i + 1]])) for i in range(1, len(verts) - 1)]
        k = int(np.searchsorted(np.cumsum(fan), rng.random() * sum(fan), side="right"))
        k = min(k, len(fan) - 1)
        a, b, c = verts[0], verts[k + 1], verts[k + 2]
        s, t = rng.random(), rng.random()
        if s + t > 1.0:
            s, t = 1.0 - s, 1.0 - t
        return np.asarray(a + s * (b - a) + t * (c - a), dtype=np.float64)

    def distance_field(self, goal: np.ndarray) -> np.ndarray:
        """Grid geodesic distance (rows, cols) in metres from ``goal``; inf off the island."""
        source = self._node_of(goal)
        dist = dijkstra(self._graph, indices=source)
        field = np.full((self.rows, self.cols), np.inf)
        field[self._cells[:, 0], self._cells[:, 1]] = dist
        return field

    def _node_of(self, point: np.ndarray) -> int:
        row, col = self.cell_of(self.snap(point))
        row = min(max(row, 0), self.rows - 1)
        col = min(max(col, 0), self.cols - 1)
        node = int(self._index[row, col])
        if node >= 0:
            return node
        d = np.abs(self._cells - np.array([row, col])).sum(axis=1)
        return int(np.argmin(d))

    def shortest_path(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray | None:
        """Waypoints (N, 3) from ``start`` to ``goal`` as habitat-sim's ``find_path`` returns
        them (Detour's corridor search and string pulling), or None if unreachable."""
        q = self._query
        start = np.asarray(start, dtype=np.float64)
        goal = np.asarray(goal, dtype=np.float64)
        a, a_pt = q.nearest_poly(start)
        b, b_pt = q.nearest_poly(goal)
        if a < 0 or b < 0:
            return None
        if np.array_equal(a_pt, b_pt):
            return np.stack([a_pt, b_pt])
        if q.island[a] != q.island[b]:
            return None
        corridor = q.find_path(a, b, a_pt, b_pt)
        if corridor[-1] != b:
            return None
        # Detour keeps the caller's heights at the ends; use the surface's, so that on a flat
        # floor the path is level and its length is its horizontal length.
        start_on = np.array([start[0], a_pt[1], start[2]])
        goal_on = np.array([goal[0], b_pt[1], goal[2]])
        return np.array(q.straight_path(start_on, goal_on, corridor))

    def geodesic_distance(self, start: np.ndarray, goal: np.ndarray) -> float:
        """Length (metres) of :meth:`shortest_path`, ``inf`` when the goal is unreachable."""
        path = self.shortest_path(start, goal)
        if path is None:
            return math.inf
        return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())

    def line_of_sight(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True when the straight floor segment a-b stays on the island."""
        if not self.on_island(a):
            return False
        if len(self._boundary) == 0:
            return True
        p = np.array([float(a[0]), float(a[2])])
        r = np.array([float(b[0]) - p[0], float(b[2]) - p[1]])
        s0 = self._boundary[:, 0][:, [0, 2]]
        s = self._boundary[:, 1][:, [0, 2]] - s0
        denom = r[0] * s[:, 1] - r[1] * s[:, 0]
        qp = s0 - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom
            u = (qp[:, 0] * r[1] - qp[:, 1] * r[0]) / denom
        eps = 1e-9
        crossing = (np.abs(denom) > eps) & (t > eps) & (t < 1 - eps) & (u > eps) & (u < 1 - eps)
        return not bool(crossing.any())


def _polygon_signed_area(verts: np.ndarray) -> float:
    """Signed (x, z) area of a polygon (V, 3)."""
    x, z = verts[:, 0], verts[:, 2]
    return float(0.5 * (x * np.roll(z, -1) - np.roll(x, -1) * z).sum())

"""The 2D top-down occupancy map (unknown / free / occupied) and its frontiers.

Cells are ``cell_m`` squares on the floor plane (world x, z). A frame marks as *occupied* the
cells under points in the agent's body band (above the floor by more than ``max_climb`` and
below ``agent_height``), and as *free* the floor the view reaches before the first obstacle in
each direction, so floor too close to be in view (below a level camera) still counts as seen.
Directions are bearings on the floor plane of the back-projected points, not image columns: a
tilted camera's columns fan out (with HFOV 120 tilted -30 degrees, floor seen low in a column
lies tens of degrees further out than the column's level bearing).

Where a ray looking down crosses the floor's plane without meeting anything (no hit within the
sensor's range, or a hit below the floor: the scene's open edge, a drop-off, a stairwell), the
cells it crossed the plane in are *void*: seen, and not floor. So the border of a platform
seen with nothing beyond it is a boundary, not unknown space. Void counts as an obstacle for
clearance and never turns free; floor seen directly wins over it in the frame that sees both.

Floor levels: the floor under the agent is the reference (``floor_y``, followed up or down
when the agent's own height changes by more than half a step, as on stairs). Where a frame
sees floor surfaces that step up or down from the reference floor in steps of at most
``max_climb`` (the treads of stairs, and the level they lead to), those cells are judged
against their own floor height instead: their floor is free and only what stands on it is an
obstacle. Each cell seen as free keeps the height of its floor (:attr:`OccupancyMap.floor_h`),
so a raised level reached by stairs is free floor at its own height, not an obstacle. Cells of
another level that no visible stairs join stay judged against the reference floor.

Frontiers are clusters of free cells next to unknown ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from aeqa.envs.geometry import GridSpec, backproject_world, focal_px
from aeqa.envs.types import Observations

UNKNOWN = 0
FREE = 1
OCCUPIED = 2
#: seen, and no floor there (see the module docstring)
VOID = 3


@dataclass
class Frontier:
    """A cluster of free cells bordering unknown space.

    Attributes:
        centroid: (3,) world point (y = the floor level) of the cluster's mean cell.
        target: (3,) world point of the cluster cell nearest the centroid, where to go.
        size_cells: number of frontier cells.
        size_m: its extent, ``size_cells * cell_m``.
        reachable: whether free space connects it to the agent.
        cells: (K, 2) int (row, col) of its cells.
    """

    centroid: np.ndarray
    target: np.ndarray
    size_cells: int
    size_m: float
    reachable: bool
    cells: np.ndarray


class OccupancyMap:
    """A growable 2D grid of unknown / free / occupied cells around the floor level."""

    def __init__(
        self,
        cell_m: float = 0.05,
        floor_y: float = 0.0,
        agent_height_m: float = 1.5,
        max_climb_m: float = 0.2,
        agent_radius_m: float = 0.1,
        max_range_m: float = 6.0,
        initial_half_extent_m: float = 8.0,
    ) -> None:
        self.cell_m = cell_m
        self.floor_y = floor_y
        self.agent_height_m = agent_height_m
        self.max_climb_m = max_climb_m
        self.agent_radius_m = agent_radius_m
        self.max_range_m = max_range_m
        n = int(round(2 * initial_half_extent_m / cell_m))
        self.grid = GridSpec(-initial_half_extent_m, -initial_half_extent_m, cell_m, n, n)
        self.state = np.zeros((n, n), dtype=np.uint8)
        #: (rows, cols) int32 obstacle hits per cell; a cell turns occupied at 2 hits
        self.hits = np.zeros((n, n), dtype=np.int32)
        #: (rows, cols) int32 step of the frame that first made each cell known, -1: never
        self.first_seen = np.full((n, n), -1, dtype=np.int32)
        #: (rows, cols) float32 world height of the floor of each free cell, NaN elsewhere
        self.floor_h = np.full((n, n), np.nan, dtype=np.float32)
        #: the agent's height in the first frame fused (its floor is ``floor_y``)
        self.agent_y0: float | None = None
        #: whether a frame has joined floor of another level (from then on, points are judged
        #: against the floor recorded in their cell, and hits remember their floor)
        self.levels_seen = False
        #: (rows, cols) float32 floor height the last obstacle hit of a cell was judged
        #: against, NaN where it was ``floor_y`` (or before :attr:`levels_seen`)
        self.hit_floor_y = np.full((n, n), np.nan, dtype=np.float32)
        #: frames fused so far (the default step of the next one)
        self.frames = 0

    # --- growth ------------------------------------------------------------------------------

    def _ensure(self, xz_min: np.ndarray, xz_max: np.ndarray) -> None:
        """Grow the grid (by whole blocks) so it covers the given world x/z box."""
        g = self.grid
        pad = int(round(4.0 / self.cell_m))
        row0, col0 = g.world_to_cell_xz(xz_min[0], xz_min[1])
        row1, col1 = g.world_to_cell_xz(xz_max[0], xz_max[1])
        add_top = pad if row0 < 0 else 0
        add_left = pad if col0 < 0 else 0
        add_bottom = pad if row1 >= g.rows else 0
        add_right = pad if col1 >= g.cols else 0
        while row0 + add_top < 0:
            add_top += pad
        while col0 + add_left < 0:
            add_left += pad
        while row1 >= g.rows + add_bottom:
            add_bottom += pad
        while col1 >= g.cols + add_right:
            add_right += pad
        if not (add_top or add_left or add_bottom or add_right):
            return
        widths = ((add_top, add_bottom), (add_left, add_right))
        self.state = np.pad(self.state, widths)
        self.hits = np.pad(self.hits, widths)
        self.first_seen = np.pad(self.first_seen, widths, constant_values=-1)
        self.floor_h = np.pad(self.floor_h, widths, constant_values=np.nan)
        self.hit_floor_y = np.pad(self.hit_floor_y, widths, constant_values=np.nan)
        self.grid = GridSpec(
            g.origin_x - add_left * self.cell_m,
            g.origin_z - add_top * self.cell_m,
            self.cell_m,
            g.rows + add_top + add_bottom,
            g.cols + add_left + add_right,
        )

    # --- updates -----------------------------------------------------------------------------

    def update(self, obs: Observations, step: int | None = None) -> None:
        """Fuse one frame's depth (pose and field of view from ``obs``); cells it makes known
        record ``step`` (default: the frames fused before this one) in :attr:`first_seen`."""
        depth = np.asarray(obs.depth, dtype=np.float32)
        T = np.asarray(obs.T_world_camera, dtype=np.float64)
        px, py, pz = backproject_world(depth, T, obs.hfov_deg)
        cam_xz = T[[0, 2], 3]
        reach = self.max_range_m
        dx = px - np.float32(cam_xz[0])
        dz = pz - np.float32(cam_xz[1])
        distance = np.hypot(dx, dz)
        valid = (depth > 0) & (distance < reach)
        ref_y = self.reference_floor_y(obs.state.position)
        self._ensure(cam_xz - reach, cam_xz + reach)
        levels = self._other_levels(px, py, pz, depth, valid, ref_y, cam_xz)
        self.levels_seen |= levels is not None
        floor_at: np.ndarray | None = None
        if self.levels_seen:
            cells = self._pixel_cells(px, pz, valid)
            floor_at = self._pixel_floor(cells, py[valid], valid, ref_y, levels)
            height = py - floor_at
        else:
            height = py - np.float32(ref_y)
        obstacle = valid & (height > self.max_climb_m) & (height < self.agent_height_m)
        floor = valid & (np.abs(height) <= self.max_climb_m)
        seen_floor: _Levels | None = None
        if floor_at is not None:
            obstacle &= ~self._far_other_level(py, distance, floor_at)
            seen_floor = self._clear_other_level_hits(cells, valid, floor, obstacle, floor_at)
        unknown_before = self.state == UNKNOWN
        # Bins of bearing one pixel wide at the image centre: as fine as the image resolves.
        bins = max(8, int(math.ceil(2.0 * math.pi * focal_px(depth.shape[1], obs.hfov_deg))))
        first, span = _pixel_bins(T, depth.shape, obs.hfov_deg, bins)
        if first.shape[0] == 1:
            # A camera whose up axis is vertical sees each column along one bearing: reduce
            # the columns first (far cheaper than every pixel).
            floor_m = np.where(floor, distance, np.float32(0.0)).max(axis=0)
            obstacle_m = np.where(obstacle, distance, np.float32(np.inf)).min(axis=0)
            has_floor, has_obstacle = floor_m > 0, np.isfinite(obstacle_m)
            floor_px = (first[0][has_floor], span[0][has_floor], floor_m[has_floor])
            obstacle_px = (first[0][has_obstacle], span[0][has_obstacle], obstacle_m[has_obstacle])
        else:
            floor_px = (first[floor], span[floor], distance[floor])
            obstacle_px = (first[obstacle], span[obstacle], distance[obstacle])
        bearing_range = self._bearing_ranges(floor_px, obstacle_px, bins)
        self._carve(cam_xz, bearing_range)
        self._set_floor_heights(unknown_before, ref_y, levels, seen_floor, cam_xz)
        # Void: rays that passed the floor's plane without meeting anything. Their footprints
        # reach up and down to the neighbouring pixels' centres: free space ends at the centre
        # of the last floor pixel, and the half pixel beyond it would otherwise stay an unknown
        # sliver along the edge (a frontier that hides nothing). Floor is carved first, so
        # void never takes a cell seen as floor.
        passed = depth <= 0
        if floor_at is None:
            passed |= height < -self.max_climb_m
        # Once other levels are seen, a hit below the floor may be a lower level's floor
        # (seen from the stairs or from above) rather than a drop into nothing: only rays
        # that meet nothing turn void.
        self._mark_footprints(passed, T, obs.hfov_deg, VOID, 1.0, 1.0, plane_y=ref_y)
        if np.any(obstacle):
            rows, cols = self.grid.world_to_cells(np.stack([px[obstacle], pz[obstacle]], axis=1))
            counts = np.bincount(rows * self.grid.cols + cols, minlength=self.hits.size)
            self.hits += counts.reshape(self.hits.shape).astype(np.int32)
            self.state[self.hits >= 2] = OCCUPIED
            if floor_at is not None:
                self.hit_floor_y[rows, cols] = floor_at[obstacle]
        # The agent stands on free floor.
        r, c = self.grid.world_to_cell_xz(cam_xz[0], cam_xz[1])
        if self.state[r, c] == UNKNOWN:
            self.state[r, c] = FREE
            self.floor_h[r, c] = ref_y
        self.first_seen[unknown_before & (self.state != UNKNOWN)] = (
            self.frames if step is None else step
        )
        self.frames += 1

    def reference_floor_y(self, agent_position: np.ndarray) -> float:
        """World height of the floor under the agent at ``agent_position`` (3,): ``floor_y``
        while the agent stays within half a step of its first height, else moved with it."""
        y = float(agent_position[1])
        if self.agent_y0 is None:
            self.agent_y0 = y
        delta = y - self.agent_y0
        return self.floor_y if abs(delta) <= 0.5 * self.max_climb_m else self.floor_y + delta

    def _other_levels(
        self,
        px: np.ndarray,
        py: np.ndarray,
        pz: np.ndarray,
        depth: np.ndarray,
        valid: np.ndarray,
        ref_y: float,
        cam_xz: np.ndarray,
    ) -> _Levels | None:
        """The frame's floor at other heights joined to the reference floor by steps of at
        most ``max_climb``; None where it sees none (then every point is judged against
        ``ref_y``, as on one level).

        Floor candidates are level surfaces (about ``_LEVEL_SAMPLES`` pixels across a row,
        their normal within ``_LEVEL_COS`` of vertical, from the neighbouring points): per
        square of ``_LEVEL_CELLS`` cells the lowest. Squares within a step of ``ref_y`` seed a
        flood over 4-neighbours whose candidates differ by at most a step. Sides of furniture
        are not level, so the flood climbs treads, not beds.
        """
        climb = self.max_climb_m
        k = max(1, int(round(px.shape[1] / _LEVEL_SAMPLES)))
        x, y, z = px[::k, ::k], py[::k, ::k], pz[::k, ::k]
        ok = valid[::k, ::k]
        ok = ok[:-1, :-1] & ok[1:, :-1] & ok[:-1, 1:]
        if not np.any(ok):
            return None
        # Normal of the surface through a point and its right and lower neighbours.
        ax, ay, az = x[:-1, 1:] - x[:-1, :-1], y[:-1, 1:] - y[:-1, :-1], z[:-1, 1:] - z[:-1, :-1]
        bx, by, bz = x[1:, :-1] - x[:-1, :-1], y[1:, :-1] - y[:-1, :-1], z[1:, :-1] - z[:-1, :-1]
        nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
        norm2 = nx * nx + ny * ny + nz * nz
        ok &= (ny * ny > np.float32(_LEVEL_COS**2) * norm2) & (norm2 > 0)
        # Not across a depth edge (a bed's side and the floor behind it).
        d = depth[::k, ::k]
        d0 = d[:-1, :-1]
        ok &= np.abs(d[:-1, 1:] - d0) < _LEVEL_EDGE * d0
        ok &= np.abs(d[1:, :-1] - d0) < _LEVEL_EDGE * d0
        y0 = y[:-1, :-1]
        if not np.any(ok & (np.abs(y0 - np.float32(ref_y)) > climb)):
            return None
        xz = np.stack([x[:-1, :-1][ok], z[:-1, :-1][ok]], axis=1)
        ys = y0[ok]
        rows, cols = self.grid.world_to_cells(xz)
        cam_r, cam_c = self.grid.world_to_cell_xz(float(cam_xz[0]), float(cam_xz[1]))
        r0, c0 = min(int(rows.min()), cam_r), min(int(cols.min()), cam_c)
        f = _LEVEL_CELLS
        h = (max(int(rows.max()), cam_r) - r0) // f + 1
        w = (max(int(cols.max()), cam_c) - c0) // f + 1
        # Lowest level sample per cell, then per square; squares this frame saw no level
        # sample in take the floor recorded before (the treads just ahead of the agent are
        # below a level camera's view).
        fine_w = w * f
        flat_lowest = np.full(h * f * fine_w, np.inf, dtype=np.float32)
        np.minimum.at(flat_lowest, (rows - r0) * fine_w + (cols - c0), ys)
        fine_lowest = flat_lowest.reshape(h * f, fine_w)
        known = np.full((h * f, fine_w), np.inf, dtype=np.float32)
        window = self.floor_h[r0 : r0 + h * f, c0 : c0 + fine_w]
        known[: window.shape[0], : window.shape[1]] = np.where(
            np.isfinite(window), window, np.float32(np.inf)
        )
        lowest = fine_lowest.reshape(h, f, w, f).min(axis=(1, 3))
        lowest = np.where(np.isfinite(lowest), lowest, known.reshape(h, f, w, f).min(axis=(1, 3)))
        seen = np.isfinite(lowest)
        filled = np.where(seen, lowest, np.float32(0.0))
        seed = seen & (np.abs(filled - np.float32(ref_y)) <= climb)
        other = seen & ~seed
        pairs = (
            ((slice(0, -1), slice(None)), (slice(1, None), slice(None))),
            ((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
        )
        # Cheap test first: a step from the reference floor onto another height.
        entry = False
        for sa, sb in pairs:
            step = np.abs(filled[sa] - filled[sb]) <= climb
            if np.any(step & ((seed[sa] & other[sb]) | (other[sa] & seed[sb]))):
                entry = True
                break
        if not entry:
            return None
        index = np.full((h, w), -1, dtype=np.int64)
        nodes = np.flatnonzero(seen)
        index.reshape(-1)[nodes] = np.arange(len(nodes))
        src, dst = [], []
        for sa, sb in pairs:
            link = seen[sa] & seen[sb] & (np.abs(filled[sa] - filled[sb]) <= climb)
            src.append(index[sa][link])
            dst.append(index[sb][link])
        # Far treads are seen sparsely: a link also crosses one unseen square in line.
        for sa, sm, sb in (
            (
                (slice(0, -2), slice(None)),
                (slice(1, -1), slice(None)),
                (slice(2, None), slice(None)),
            ),
            (
                (slice(None), slice(0, -2)),
                (slice(None), slice(1, -1)),
                (slice(None), slice(2, None)),
            ),
        ):
            link = seen[sa] & ~seen[sm] & seen[sb]
            link &= np.abs(filled[sa] - filled[sb]) <= climb
            src.append(index[sa][link])
            dst.append(index[sb][link])
        a_idx, b_idx = np.concatenate(src), np.concatenate(dst)
        graph = csr_matrix((np.ones(len(a_idx)), (a_idx, b_idx)), shape=(len(nodes), len(nodes)))
        _, labels = connected_components(graph, directed=False)
        seeded = np.zeros(labels.max(initial=0) + 1, dtype=bool)
        seeded[labels[index[seed]]] = True
        joined = np.zeros((h, w), dtype=bool)
        joined.reshape(-1)[nodes] = seeded[labels]
        # Stairs join at least three tread heights beyond a step; a bed or a sofa reached
        # over its frame joins one or two.
        steps = np.unique(np.round(lowest[joined & other] / _LEVEL_BIN_M))
        if len(steps) < _LEVEL_MIN_STEPS:
            return None
        # Joined cells take their own lowest sample, else the floor recorded there, else
        # their square's: a square holding the end of one tread and the start of the next is
        # floor at both heights, not an obstacle a step high.
        joined_fine = np.repeat(np.repeat(joined, f, axis=0), f, axis=1)
        coarse = np.repeat(np.repeat(lowest, f, axis=0), f, axis=1)
        own = np.where(np.isfinite(fine_lowest), fine_lowest, known)
        # ... within a step of its square's: a cell all table top in a square that holds
        # floor is judged against the floor.
        with np.errstate(invalid="ignore"):
            own = np.where(np.abs(own - coarse) <= climb, own, coarse)
        floor = np.where(joined_fine, np.where(np.isfinite(own), own, coarse), np.float32(np.nan))
        # Cells seen without a floor candidate (sparse far treads, the blind zone at the
        # agent's feet) take the floor of a joined cell within _LEVEL_FILL cells, the agent's
        # own at its feet.
        nearest = floor.copy()
        cr, cc = cam_r - r0, cam_c - c0
        if not np.isfinite(nearest[cr, cc]):
            nearest[cr, cc] = np.float32(ref_y)
        far, (ri, ci) = ndimage.distance_transform_edt(~np.isfinite(nearest), return_indices=True)
        nearest = np.where(far <= _LEVEL_FILL, nearest[ri, ci], np.float32(np.nan))
        rows_left, cols_left = self.grid.rows - r0, self.grid.cols - c0
        return _Levels(r0, c0, floor[:rows_left, :cols_left], nearest[:rows_left, :cols_left])

    def _far_other_level(
        self, py: np.ndarray, distance: np.ndarray, floor_at: np.ndarray
    ) -> np.ndarray:
        """(H, W) bool: points farther than ``_FAR_M`` at the height of a floor level the map
        holds (at least ``_LEVEL_AREA_M2`` of free cells, more than a step from the floor
        they are judged against). From afar, a level the stairs lead to is seen too sparsely
        to join: such points are neither floor nor obstacle, so the level stays unknown (a
        frontier) instead of a wall."""
        out = np.zeros(py.shape, dtype=bool)
        heights = self.floor_h[np.isfinite(self.floor_h)]
        if len(heights) == 0:
            return out
        bins = np.round(heights / _LEVEL_BIN_M).astype(np.int64)
        values, counts = np.unique(bins, return_counts=True)
        levels = values[counts * self.cell_m**2 >= _LEVEL_AREA_M2] * _LEVEL_BIN_M
        climb = self.max_climb_m
        for level in levels.tolist():
            at = np.float32(level)
            out |= (np.abs(py - at) <= climb) & (np.abs(floor_at - at) > climb)
        return out & (distance > _FAR_M)

    def _pixel_cells(
        self, px: np.ndarray, pz: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map (row, col) of every valid pixel (each (V,) int64, in ``valid``'s order)."""
        return self.grid.world_to_cells(np.stack([px[valid], pz[valid]], axis=1))

    def _pixel_floor(
        self,
        cells: tuple[np.ndarray, np.ndarray],
        py: np.ndarray,
        valid: np.ndarray,
        ref_y: float,
        levels: _Levels | None,
    ) -> np.ndarray:
        """(H, W) float32 floor height each pixel is judged against: the floor this frame
        joined in or near its cell (``levels``), else the floor recorded in the nearest cell
        within ``_NEAR_FLOOR_M`` (a raised room seen past the top of its stairs is floor
        there, not a wall), else ``ref_y``. ``cells``: see :meth:`_pixel_cells`; ``py`` the
        valid pixels' heights, in the same order."""
        out = np.full(valid.shape, np.float32(ref_y), dtype=np.float32)
        rows, cols = cells
        if len(rows) == 0:
            return out
        local = self.floor_h[rows, cols]
        missing = ~np.isfinite(local)
        if np.any(missing):
            # The nearest recorded floor within _NEAR_FLOOR_M of the cells missing one.
            pad = int(math.ceil(_NEAR_FLOOR_M / self.cell_m))
            mr, mc = rows[missing], cols[missing]
            r0, c0 = max(int(mr.min()) - pad, 0), max(int(mc.min()) - pad, 0)
            window = self.floor_h[r0 : int(mr.max()) + pad + 1, c0 : int(mc.max()) + pad + 1]
            known = np.isfinite(window)
            if np.any(known):
                far, (ri, ci) = ndimage.distance_transform_edt(~known, return_indices=True)
                near = np.where(far * self.cell_m <= _NEAR_FLOOR_M, window[ri, ci], np.nan)
                local[missing] = near[mr - r0, mc - c0]
                # Beside the top of stairs the nearest floor recorded may be a lower tread:
                # a point level with the highest floor recorded close by is on that floor.
                k = int(math.ceil(_STEP_NEAR_M / self.cell_m))
                top = ndimage.maximum_filter(
                    np.where(known, window, -np.inf),
                    size=2 * k + 1,
                    mode="constant",
                    cval=-np.inf,
                )[mr - r0, mc - c0]
                on_top = np.abs(py[missing] - top) <= self.max_climb_m
                local[np.flatnonzero(missing)[on_top]] = top[on_top]
        if levels is not None:
            lr, lc = rows - levels.row0, cols - levels.col0
            h, w = levels.floor.shape
            inside = (lr >= 0) & (lr < h) & (lc >= 0) & (lc < w)
            joined = np.full(len(rows), np.nan, dtype=np.float32)
            joined[inside] = levels.nearest[lr[inside], lc[inside]]
            local = np.where(np.isfinite(joined), joined, local)
        out[valid] = np.where(np.isfinite(local), local, np.float32(ref_y))
        return out

    def _clear_other_level_hits(
        self,
        cells: tuple[np.ndarray, np.ndarray],
        valid: np.ndarray,
        floor: np.ndarray,
        obstacle: np.ndarray,
        floor_at: np.ndarray,
    ) -> _Levels | None:
        """Occupied cells this frame sees as bare floor turn unknown again (to be carved free)
        where their hits were judged against a floor more than a step away from the one this
        frame judges them against: a raised level seen from below, or stairs seen from afar
        before a frame joined them, looked like a wall. Returns the floor each cell's floor
        pixels were judged against (``floor``; ``nearest`` the same), None without pixels."""
        rows, cols = cells
        if len(rows) == 0:
            return None
        r0, c0 = int(rows.min()), int(cols.min())
        h, w = int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1
        index = (rows - r0) * w + (cols - c0)
        is_floor, is_obstacle = floor[valid], obstacle[valid]
        n_obstacle = np.bincount(index[is_obstacle], minlength=h * w)
        n_floor = np.bincount(index[is_floor], minlength=h * w)
        floor_now = np.full(h * w, np.nan, dtype=np.float32)
        floor_now[index[is_floor]] = floor_at[valid][is_floor]
        # Mostly floor: a far cell's pixels also catch the edge of what stands beside it.
        bare = (n_floor > 0) & (n_floor >= 2 * n_obstacle)
        window = (slice(r0, r0 + h), slice(c0, c0 + w))
        state, hits, hit_floor_y = self.state[window], self.hits[window], self.hit_floor_y[window]
        judged = np.where(np.isfinite(hit_floor_y), hit_floor_y, self.floor_y)
        clear = bare.reshape(h, w) & (state == OCCUPIED)
        clear &= np.abs(floor_now.reshape(h, w) - judged) > self.max_climb_m
        state[clear] = UNKNOWN
        hits[clear] = 0
        hit_floor_y[clear] = np.nan
        seen = floor_now.reshape(h, w)
        return _Levels(r0, c0, seen, seen)

    def _set_floor_heights(
        self,
        unknown_before: np.ndarray,
        ref_y: float,
        levels: _Levels | None,
        seen_floor: _Levels | None,
        cam_xz: np.ndarray,
    ) -> None:
        """Cells this frame made free get their floor's height: on one level the reference
        floor's. Once other levels are seen: the floor its floor pixels there were judged
        against (``seen_floor``), else where the frame joined other levels that of the floor
        it joined near them, else within ``_BLIND_M`` of the agent (below the camera's view)
        the reference floor's, else NaN (unknown). Free cells whose floor it saw joined take
        that height."""
        new = unknown_before & (self.state == FREE)
        if not self.levels_seen:
            self.floor_h[new] = ref_y
            return
        self.floor_h[new] = np.nan
        if levels is not None:
            h, w = levels.floor.shape
            window = (slice(levels.row0, levels.row0 + h), slice(levels.col0, levels.col0 + w))
            floor_h, free = self.floor_h[window], self.state[window] == FREE
            # Far from any floor the frame joined, the height is unknown (NaN) rather than
            # the agent's: a later frame judges the cell against the floor recorded near it.
            floor_h[new[window]] = levels.nearest[new[window]]
            seen = free & np.isfinite(levels.floor)
            floor_h[seen] = levels.floor[seen]
        if seen_floor is not None:
            h, w = seen_floor.floor.shape
            window = (
                slice(seen_floor.row0, seen_floor.row0 + h),
                slice(seen_floor.col0, seen_floor.col0 + w),
            )
            floor_h = self.floor_h[window]
            there = new[window] & np.isfinite(seen_floor.floor)
            floor_h[there] = seen_floor.floor[there]
        # Still unknown near the agent: floor below the camera's view, the agent's own.
        g = self.grid
        r, c = g.world_to_cell_xz(float(cam_xz[0]), float(cam_xz[1]))
        k = int(math.ceil(_BLIND_M / self.cell_m))
        window = (slice(max(r - k, 0), r + k + 1), slice(max(c - k, 0), c + k + 1))
        floor_h = self.floor_h[window]
        floor_h[new[window] & ~np.isfinite(floor_h)] = ref_y

    def cell_floor_y(self, row: float, col: float) -> float:
        """World height of the floor at a cell (fractional cells round to the nearest):
        ``floor_y`` on one level; once other levels are seen, its recorded floor, else the
        nearest recorded within ``_NEAR_FLOOR_M``, else ``floor_y``."""
        r, c = int(round(row)), int(round(col))
        if not self.levels_seen or not self.grid.contains(r, c):
            return self.floor_y
        if np.isfinite(self.floor_h[r, c]):
            return float(self.floor_h[r, c])
        k = int(math.ceil(_NEAR_FLOOR_M / self.cell_m))
        window = self.floor_h[max(r - k, 0) : r + k + 1, max(c - k, 0) : c + k + 1]
        known = np.argwhere(np.isfinite(window))
        if len(known) == 0:
            return self.floor_y
        centre = np.array([min(r, k), min(c, k)])
        nearest = known[np.argmin(((known - centre) ** 2).sum(axis=1))]
        return float(window[nearest[0], nearest[1]])

    def _bearing_ranges(
        self,
        floor: tuple[np.ndarray, np.ndarray, np.ndarray],
        obstacle: tuple[np.ndarray, np.ndarray, np.ndarray],
        bins: int,
    ) -> np.ndarray:
        """(bins,) free distance (m) per bearing bin: up to the nearest obstacle, else as far
        as floor was seen; 0 where the frame saw neither. ``floor`` and ``obstacle`` hold per
        pixel its first bin, how many more it covers and its distance (see :func:`_pixel_bins`).
        """
        seen_floor = np.zeros(bins, dtype=np.float32)
        nearest_obstacle = np.full(bins, np.inf, dtype=np.float32)
        for index, distance in _spread(*floor, bins):
            np.maximum.at(seen_floor, index, distance)
        for index, distance in _spread(*obstacle, bins):
            np.minimum.at(nearest_obstacle, index, distance)
        blocked = np.isfinite(nearest_obstacle)
        seen_floor[blocked] = np.maximum(nearest_obstacle[blocked] - self.cell_m, 0.0)
        return seen_floor

    def _carve(self, cam_xz: np.ndarray, bearing_range: np.ndarray) -> None:
        """Mark unknown cells free that lie within the free distance of their bearing."""
        g = self.grid
        reach = float(bearing_range.max(initial=0.0))
        if reach <= 0:
            return
        r0, c0 = g.world_to_cell_xz(cam_xz[0] - reach, cam_xz[1] - reach)
        r1, c1 = g.world_to_cell_xz(cam_xz[0] + reach, cam_xz[1] + reach)
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, g.rows - 1), min(c1, g.cols - 1)
        xs = g.origin_x + (np.arange(c0, c1 + 1) + 0.5) * g.cell_m - cam_xz[0]
        zs = g.origin_z + (np.arange(r0, r1 + 1) + 0.5) * g.cell_m - cam_xz[1]
        dx, dz = np.meshgrid(xs, zs)
        allowed = bearing_range[_bearing_bins(dx, dz, len(bearing_range))]
        free = np.hypot(dx, dz) <= allowed
        window = self.state[r0 : r1 + 1, c0 : c1 + 1]
        window[free & (window == UNKNOWN)] = FREE

    def _mark_footprints(
        self,
        pixels: np.ndarray,
        T_world_camera: np.ndarray,
        hfov_deg: float,
        value: int,
        down_px: float,
        up_px: float,
        side_px: float = 0.5,
        plane_y: float | None = None,
    ) -> None:
        """Set unknown cells to ``value`` under the floor-plane footprints of ``pixels``
        ((H, W) bool) whose rays look down.

        A pixel's footprint on a plane is a quadrilateral (the plane points of its corner
        rays); it is sampled finer than a cell, so far pixels (tens of centimetres deep) leave
        no unknown gaps. It reaches ``down_px``, ``up_px`` and ``side_px`` pixels below, above
        and to each side of the pixel's centre (0.5: the pixel's own edges). Corners whose
        rays point at or above the horizon, or meet the plane beyond ``max_range_m``, are
        pulled in along their bearing to that range. The plane is the floor at ``plane_y``
        (default ``floor_y``).
        """
        h, w = pixels.shape
        T = np.asarray(T_world_camera, dtype=np.float64)
        R, t = T[:3, :3], T[:3, 3]
        above_m = float(t[1]) - (self.floor_y if plane_y is None else plane_y)
        if above_m <= self.max_climb_m:
            return
        f = focal_px(w, hfov_deg)
        x = (np.arange(w) + 0.5 - w / 2.0) / f
        y = -(np.arange(h) + 0.5 - h / 2.0) / f
        down = np.add.outer(y * R[1, 1] - R[1, 2], x * R[1, 0]) < 0
        rows, cols = np.nonzero(pixels & down)
        if len(rows) == 0:
            return
        reach = self.max_range_m
        down, up, side = down_px / f, up_px / f, side_px / f
        corners = []
        for dy, dx in ((-down, -side), (-down, side), (up, -side), (up, side)):
            # Camera-frame ray (x, y, -1) through a pixel corner, in the world frame.
            ray = np.stack([x[cols] + dx, y[rows] + dy, -np.ones(len(rows))], axis=1) @ R.T
            flat = np.hypot(ray[:, 0], ray[:, 2])
            safe = np.where(ray[:, 1] < 0, -ray[:, 1], 1.0)
            distance = np.where(ray[:, 1] < 0, above_m * flat / safe, np.inf)
            scale = np.minimum(distance, reach) / np.maximum(flat, 1e-9)
            corners.append((ray[:, 0] * scale, ray[:, 2] * scale, distance))
        near = np.minimum(corners[0][2], corners[1][2])
        keep = near < reach
        if not np.any(keep):
            return
        cx = np.stack([c[0][keep] for c in corners], axis=1)  # (N, 4) x offsets from the camera
        cz = np.stack([c[1][keep] for c in corners], axis=1)
        depth_m = np.hypot(cx[:, 2] - cx[:, 0], cz[:, 2] - cz[:, 0])
        width_m = np.hypot(cx[:, 3] - cx[:, 2], cz[:, 3] - cz[:, 2])
        spacing = 0.5 * self.cell_m
        n_v = np.clip(np.ceil(depth_m / spacing), 1, 400).astype(np.int64) + 1
        n_h = np.clip(np.ceil(width_m / spacing), 1, 400).astype(np.int64) + 1
        count = n_v * n_h
        pixel = np.repeat(np.arange(len(count)), count)
        k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        u = (k % n_h[pixel]) / (n_h[pixel] - 1)
        v = (k // n_h[pixel]) / (n_v[pixel] - 1)
        # Bilinear in the quadrilateral: lower edge (corners 0, 1) to upper edge (2, 3).
        px = (1 - v) * ((1 - u) * cx[pixel, 0] + u * cx[pixel, 1]) + v * (
            (1 - u) * cx[pixel, 2] + u * cx[pixel, 3]
        )
        pz = (1 - v) * ((1 - u) * cz[pixel, 0] + u * cz[pixel, 1]) + v * (
            (1 - u) * cz[pixel, 2] + u * cz[pixel, 3]
        )
        g = self.grid
        cell_rows = np.floor((pz + t[2] - g.origin_z) / g.cell_m).astype(np.int64)
        cell_cols = np.floor((px + t[0] - g.origin_x) / g.cell_m).astype(np.int64)
        inside = (cell_rows >= 0) & (cell_rows < g.rows) & (cell_cols >= 0) & (cell_cols < g.cols)
        flat_index = np.unique(cell_rows[inside] * g.cols + cell_cols[inside])
        state = self.state.reshape(-1)
        state[flat_index[state[flat_index] == UNKNOWN]] = value

    # --- queries -----------------------------------------------------------------------------

    @property
    def seen_area_m2(self) -> float:
        """Floor area seen as free, in m^2."""
        return float(np.count_nonzero(self.state == FREE)) * self.cell_m**2

    def traversable(self, clearance_m: float | None = None) -> np.ndarray:
        """(rows, cols) bool free cells farther than ``clearance_m`` (default: the agent's
        radius) from occupied and void ones."""
        occupied = blocked_mask(self.state)
        clearance = ndimage.distance_transform_edt(~occupied) * self.cell_m
        margin = self.agent_radius_m if clearance_m is None else clearance_m
        return (self.state == FREE) & (clearance > margin)

    def frontiers(self, agent_position: np.ndarray, min_size_m: float = 0.3) -> list[Frontier]:
        """Clusters of free cells that touch unknown cells, largest first."""
        touches_unknown = frontier_mask(self.state)
        labels, count = ndimage.label(touches_unknown, structure=np.ones((3, 3), bool))
        if count == 0:
            return []
        reachable_cells = self._reachable_from(agent_position)
        frontiers = []
        for label, slc in enumerate(ndimage.find_objects(labels), start=1):
            if slc is None:
                continue
            local = np.argwhere(labels[slc] == label)
            cells = local + [slc[0].start, slc[1].start]
            if len(cells) * self.cell_m < min_size_m:
                continue
            centre = cells.mean(axis=0)
            nearest = cells[np.argmin(((cells - centre) ** 2).sum(axis=1))]
            reachable = bool(np.any(reachable_cells[cells[:, 0], cells[:, 1]]))
            frontiers.append(
                Frontier(
                    centroid=self._cell_point(centre[0], centre[1]),
                    target=self._cell_point(nearest[0], nearest[1]),
                    size_cells=len(cells),
                    size_m=len(cells) * self.cell_m,
                    reachable=reachable,
                    cells=cells,
                )
            )
        frontiers.sort(key=lambda f: -f.size_cells)
        return frontiers

    def _reachable_from(self, agent_position: np.ndarray) -> np.ndarray:
        """Free cells connected to the agent, grown by the agent's radius to reach frontiers."""
        passable = self.traversable()
        r, c = self.grid.world_to_cell_xz(float(agent_position[0]), float(agent_position[2]))
        labels, _ = ndimage.label(passable, structure=np.ones((3, 3), bool))
        if not self.grid.contains(r, c) or labels[r, c] == 0:
            # The agent's own cell may sit within the radius band: take the nearest component.
            if not np.any(passable):
                return np.zeros_like(passable)
            _, (ri, ci) = ndimage.distance_transform_edt(~passable, return_indices=True)
            r, c = ri[r, c], ci[r, c]
        region = labels == labels[r, c]
        margin = int(math.ceil(self.agent_radius_m / self.cell_m)) + 1
        return ndimage.binary_dilation(region, iterations=margin) & (self.state == FREE)

    def _cell_point(self, row: float, col: float) -> np.ndarray:
        x, z = self.grid.cell_to_world_xz(row, col)
        return np.array([x, self.cell_floor_y(row, col), z])

    def to_state(self) -> dict[str, np.ndarray]:
        g = self.grid
        return {
            "state": self.state.copy(),
            "hits": self.hits.copy(),
            "first_seen": self.first_seen.copy(),
            "floor_h": self.floor_h.copy(),
            "hit_floor_y": self.hit_floor_y.copy(),
            "agent_y0": np.array([np.nan if self.agent_y0 is None else self.agent_y0]),
            "levels_seen": np.array([self.levels_seen]),
            "grid": np.array([g.origin_x, g.origin_z, g.cell_m, g.rows, g.cols], dtype=np.float64),
            "params": np.array(
                [
                    self.floor_y,
                    self.agent_height_m,
                    self.max_climb_m,
                    self.agent_radius_m,
                    self.max_range_m,
                ]
            ),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> OccupancyMap:
        floor_y, height, climb, radius, reach = (float(v) for v in state["params"])
        ox, oz, cell, rows, cols = (float(v) for v in state["grid"])
        occupancy = cls(cell, floor_y, height, climb, radius, reach, initial_half_extent_m=cell)
        occupancy.grid = GridSpec(ox, oz, cell, int(rows), int(cols))
        occupancy.state = state["state"].astype(np.uint8).copy()
        occupancy.hits = state["hits"].astype(np.int32).copy()
        # Maps saved before steps were recorded: every cell unrecorded (-1).
        first_seen = state.get("first_seen")
        if first_seen is None:
            first_seen = np.full(occupancy.state.shape, -1, dtype=np.int32)
        occupancy.first_seen = np.asarray(first_seen, dtype=np.int32).copy()
        # Maps saved before floor heights were kept: every free cell on the floor at floor_y.
        floor_h = state.get("floor_h")
        if floor_h is None:
            floor_h = np.where(occupancy.state == FREE, floor_y, np.nan)
        occupancy.floor_h = np.asarray(floor_h, dtype=np.float32).copy()
        agent_y0 = state.get("agent_y0")
        if agent_y0 is not None and np.isfinite(agent_y0[0]):
            occupancy.agent_y0 = float(agent_y0[0])
        hit_floor_y = state.get("hit_floor_y")
        if hit_floor_y is not None:
            occupancy.hit_floor_y = np.asarray(hit_floor_y, dtype=np.float32).copy()
        else:
            occupancy.hit_floor_y = np.full(occupancy.state.shape, np.nan, dtype=np.float32)
        levels_seen = state.get("levels_seen")
        occupancy.levels_seen = bool(levels_seen[0]) if levels_seen is not None else False
        occupancy.frames = int(occupancy.first_seen.max(initial=-1)) + 1
        return occupancy


@dataclass
class _Levels:
    """A frame's floor levels from map cell (``row0``, ``col0``): ``floor`` (h, w) float32
    world heights of the floor joined to the agent's, NaN where it saw none; ``nearest`` the
    same with cells near a joined one filled from it (the agent's floor at its feet)."""

    row0: int
    col0: int
    floor: np.ndarray
    nearest: np.ndarray


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
#: a surface is level (a floor candidate) where its normal is within ~18 degrees of vertical
_LEVEL_COS = 0.95
#: floor candidates come from about this many pixels across a row (and as densely down)
_LEVEL_SAMPLES = 160
#: the flood over floor candidates runs on squares of this many cells a side
_LEVEL_CELLS = 2
#: joined floor counts as other levels where it holds at least this many heights (bins of
#: _LEVEL_BIN_M) more than a step from the agent's
_LEVEL_MIN_STEPS = 3
_LEVEL_BIN_M = 0.1
#: neighbouring samples whose depths differ by this fraction lie across an edge
_LEVEL_EDGE = 0.05
#: cells filled from a joined one at most this far (cells) from it
_LEVEL_FILL = 10
#: once other levels are seen, points are judged against the floor recorded this near (m)
_NEAR_FLOOR_M = 1.0
#: ... or against the highest floor recorded this near (m) when level with it
_STEP_NEAR_M = 0.3
#: points farther than this (m) at a known level's height are not obstacles (see
#: OccupancyMap._far_other_level); a level is at least _LEVEL_AREA_M2 of free floor
_FAR_M = 3.0
_LEVEL_AREA_M2 = 0.5
#: free cells this near the agent with no floor seen are on the agent's floor (m)
_BLIND_M = 2.5


def blocked_mask(state: np.ndarray) -> np.ndarray:
    """(rows, cols) bool cells the agent cannot stand near: occupied, or void (no floor)."""
    return (state == OCCUPIED) | (state == VOID)


def frontier_mask(state: np.ndarray, wall_gap_cells: int = 0) -> np.ndarray:
    """(rows, cols) bool free cells with an unknown 4-neighbour, for a (rows, cols) uint8 state
    grid (or a window of one).

    With ``wall_gap_cells`` > 0, unknown cells within that many cells (Chebyshev) of an
    occupied or void one do not count: the unseen sliver between seen floor and a wall or a
    drop-off, or a gap in a wall's line of hits, hides no floor worth a visit.
    """
    unknown = state == UNKNOWN
    if wall_gap_cells > 0:
        near_wall = ndimage.binary_dilation(
            blocked_mask(state), structure=np.ones((3, 3), bool), iterations=wall_gap_cells
        )
        unknown &= ~near_wall
    return ndimage.binary_dilation(unknown, structure=_CROSS) & (state == FREE)


def _bearing_bins(dx: np.ndarray, dz: np.ndarray, bins: int) -> np.ndarray:
    """Bin (int32, same shape) of the floor-plane bearing of offsets ``dx``, ``dz`` (world
    metres from the camera), ``bins`` equal bins around the full circle."""
    scale = bins / (2.0 * math.pi)
    index = ((np.arctan2(dz, dx) + math.pi) * scale).astype(np.int32)
    # arctan2 reaches pi itself, which wraps round to the first bin.
    index[index >= bins] = 0
    return index


def _pixel_bins(
    T_world_camera: np.ndarray, shape: tuple[int, ...], hfov_deg: float, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """The bearing bins each pixel of an (H, W) image covers on the floor plane: (H, W) int32
    first bin and how many bins follow it (anticlockwise in bin order); (1, W) when the
    camera's up axis is vertical, as every row then has the same bearings.

    A pixel's bearing from the camera does not depend on its depth, only on its ray. The
    bearings of its left and right edges bound it; with a tilted camera they spread more in
    rows looking down, so a bin as wide as a central pixel is crossed by some pixels' spans
    without holding their centres, and counting only centres would let a far wall seen in
    one row hide a near obstacle seen in another.
    """
    h, w = shape[0], shape[1]
    f = focal_px(w, hfov_deg)
    R = np.asarray(T_world_camera, dtype=np.float64)[:3, :3]
    x = ((np.arange(w + 1) - w / 2.0) / f).astype(np.float32)
    if abs(R[0, 1]) + abs(R[2, 1]) < 1e-9:
        y = np.zeros(1, dtype=np.float32)
    else:
        y = (-(np.arange(h) + 0.5 - h / 2.0) / f).astype(np.float32)
    R32 = R.astype(np.float32)
    # Horizontal world components of the rays (x, y, -1) through the pixels' vertical edges.
    wx = np.add.outer(y * R32[0, 1] - R32[0, 2], x * R32[0, 0])
    wz = np.add.outer(y * R32[2, 1] - R32[2, 2], x * R32[2, 0])
    edge = _bearing_bins(wx, wz, bins)
    left, right = edge[:, :-1], edge[:, 1:]
    span = right - left
    span[span < 0] += bins
    # The shorter way round (a row through the nadir turns by half a circle in one pixel).
    backward = span > bins // 2
    first = left.copy()
    first[backward] = right[backward]
    span[backward] = bins - span[backward]
    return first, span


def _spread(
    first: np.ndarray, span: np.ndarray, distance: np.ndarray, bins: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bin, distance) arrays that together pair every pixel's distance with each of the
    bins ``first .. first + span`` it covers."""
    out = [(first, distance)]
    # Most pixels cover one or two bins; only a few near the nadir cover many.
    second = span >= 1
    following = first[second] + 1
    following[following == bins] = 0
    out.append((following, distance[second]))
    wide = span >= 2
    if np.any(wide):
        counts = span[wide].astype(np.int64) - 1
        starts = np.cumsum(counts) - counts
        offsets = np.arange(int(counts.sum())) - np.repeat(starts, counts) + 2
        out.append(
            ((np.repeat(first[wide], counts) + offsets) % bins, np.repeat(distance[wide], counts))
        )
    return out

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

Frontiers are clusters of free cells next to unknown ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
        height = py - np.float32(self.floor_y)
        obstacle = valid & (height > self.max_climb_m) & (height < self.agent_height_m)
        floor = valid & (np.abs(height) <= self.max_climb_m)
        self._ensure(cam_xz - reach, cam_xz + reach)
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
        # Void: rays that passed the floor's plane without meeting anything. Their footprints
        # reach up and down to the neighbouring pixels' centres: free space ends at the centre
        # of the last floor pixel, and the half pixel beyond it would otherwise stay an unknown
        # sliver along the edge (a frontier that hides nothing). Floor is carved first, so
        # void never takes a cell seen as floor.
        passed = (depth <= 0) | (height < -self.max_climb_m)
        self._mark_footprints(passed, T, obs.hfov_deg, VOID, 1.0, 1.0)
        if np.any(obstacle):
            rows, cols = self.grid.world_to_cells(np.stack([px[obstacle], pz[obstacle]], axis=1))
            counts = np.bincount(rows * self.grid.cols + cols, minlength=self.hits.size)
            self.hits += counts.reshape(self.hits.shape).astype(np.int32)
            self.state[self.hits >= 2] = OCCUPIED
        # The agent stands on free floor.
        r, c = self.grid.world_to_cell_xz(cam_xz[0], cam_xz[1])
        if self.state[r, c] == UNKNOWN:
            self.state[r, c] = FREE
        self.first_seen[unknown_before & (self.state != UNKNOWN)] = (
            self.frames if step is None else step
        )
        self.frames += 1

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
    ) -> None:
        """Set unknown cells to ``value`` under the floor-plane footprints of ``pixels``
        ((H, W) bool) whose rays look down.

        A pixel's footprint on a plane is a quadrilateral (the plane points of its corner
        rays); it is sampled finer than a cell, so far pixels (tens of centimetres deep) leave
        no unknown gaps. It reaches ``down_px``, ``up_px`` and ``side_px`` pixels below, above
        and to each side of the pixel's centre (0.5: the pixel's own edges). Corners whose
        rays point at or above the horizon, or meet the plane beyond ``max_range_m``, are
        pulled in along their bearing to that range.
        """
        h, w = pixels.shape
        T = np.asarray(T_world_camera, dtype=np.float64)
        R, t = T[:3, :3], T[:3, 3]
        above_m = float(t[1]) - self.floor_y
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
        return np.array([x, self.floor_y, z])

    def to_state(self) -> dict[str, np.ndarray]:
        g = self.grid
        return {
            "state": self.state.copy(),
            "hits": self.hits.copy(),
            "first_seen": self.first_seen.copy(),
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
        occupancy.frames = int(occupancy.first_seen.max(initial=-1)) + 1
        return occupancy


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


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

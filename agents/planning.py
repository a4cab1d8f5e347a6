"""Path planning on the agent's own occupancy map: Dijkstra over the traversable cells of the
known part of the map, with a cost that keeps paths away from obstacles.

The map is the agent's estimate, not the simulator's navigable area: obstacles low enough to
hide below a level camera's view, or seen only at a grazing angle, are missing from it. So
paths keep a *preferred* clearance where there is room (a soft cost that grows towards
obstacles), accept a *minimum* one in narrow passages, and obstacles the simulator revealed
by stopping a move can be passed in as extra occupied points.

Window coordinates: a :class:`DistanceField` works on the sub-grid ``[r0:r1, c0:c1]`` of the
map (``window = (r0, c0)``) that holds every known cell plus a margin; map cell
``(row, col)`` is window cell ``(row - r0, col - c0)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from aeqa.mapping.occupancy import FREE, UNKNOWN, OccupancyMap, blocked_mask

_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, math.sqrt(2.0)), (1, -1, math.sqrt(2.0)))


class CostGrid:
    """The passable cells of a map window and the cost of stepping on each, as a graph.

    Args:
        occupancy: the map.
        agent_position: (3,) world position of the agent's base.
        margin_cells: unknown cells kept around the known part of the map.
        clearance_m: the least distance to an occupied cell of a passable cell (default the
            map's agent radius).
        soft_clearance_m: up to this distance from obstacles a step costs more (linearly, up
            to ``1 + soft_weight`` times its length at ``clearance_m``); None for plain lengths.
        soft_weight: see ``soft_clearance_m``.
        obstacles_xz: (K, 2) world x, z of obstacles the map does not show (where the
            simulator stopped a move); they count as occupied cells for the clearance.
        start_relax_m: within this distance of the agent, free cells count as passable down
            to half of ``clearance_m``, so an agent pressed against a wall plans its way out
            from where it stands instead of from a cell snapped behind it.

    Attributes:
        window: (row0, col0) of the window in the map grid.
        state: (h, w) uint8 map states of the window (a copy).
        clearance: (h, w) float metres to the nearest occupied or void cell (no floor).
        passable: (h, w) bool cells a path may use.
        cost: (h, w) float cost per metre of stepping on a cell (1 in the open).
        agent: (row, col) window cell of the agent (may lie outside the window's passable cells).
    """

    def __init__(
        self,
        occupancy: OccupancyMap,
        agent_position: np.ndarray,
        margin_cells: int = 4,
        clearance_m: float | None = None,
        *,
        soft_clearance_m: float | None = None,
        soft_weight: float = 0.0,
        obstacles_xz: np.ndarray | None = None,
        start_relax_m: float = 0.0,
    ) -> None:
        self.occupancy = occupancy
        g = occupancy.grid
        r_agent, c_agent = g.world_to_cell_xz(float(agent_position[0]), float(agent_position[2]))
        known = occupancy.state != UNKNOWN
        rows = np.flatnonzero(known.any(axis=1))
        cols = np.flatnonzero(known.any(axis=0))
        r0 = max(0, min(int(rows.min(initial=r_agent)), r_agent) - margin_cells)
        r1 = min(g.rows, max(int(rows.max(initial=r_agent)), r_agent) + margin_cells + 1)
        c0 = max(0, min(int(cols.min(initial=c_agent)), c_agent) - margin_cells)
        c1 = min(g.cols, max(int(cols.max(initial=c_agent)), c_agent) + margin_cells + 1)
        self.window = (r0, c0)
        cell = occupancy.cell_m
        self.state = occupancy.state[r0:r1, c0:c1].copy()
        h, w = self.state.shape
        self.agent = (r_agent - r0, c_agent - c0)
        occupied = blocked_mask(self.state)
        if obstacles_xz is not None and len(obstacles_xz):
            rows_o, cols_o = g.world_to_cells(np.asarray(obstacles_xz, dtype=np.float64))
            rows_o, cols_o = rows_o - r0, cols_o - c0
            inside = (rows_o >= 0) & (rows_o < h) & (cols_o >= 0) & (cols_o < w)
            occupied[rows_o[inside], cols_o[inside]] = True
        # Every occupied cell lies in the window, so its distance transform is the map's.
        self.clearance = ndimage.distance_transform_edt(~occupied) * cell
        hard = occupancy.agent_radius_m if clearance_m is None else clearance_m
        free = self.state == FREE
        passable = free & (self.clearance >= hard)
        ra, ca = self.agent
        if start_relax_m > 0:
            k = int(math.ceil(start_relax_m / cell))
            rr, cc = np.ogrid[-k : k + 1, -k : k + 1]
            disk = rr**2 + cc**2 <= k * k
            a0, a1 = max(0, ra - k), min(h, ra + k + 1)
            b0, b1 = max(0, ca - k), min(w, ca + k + 1)
            if a0 < a1 and b0 < b1:
                local = disk[a0 - ra + k : a1 - ra + k, b0 - ca + k : b1 - ca + k]
                relaxed = free[a0:a1, b0:b1] & (self.clearance[a0:a1, b0:b1] >= hard / 2)
                passable[a0:a1, b0:b1] |= local & relaxed
        self.passable = passable
        if soft_clearance_m is not None and soft_weight > 0 and soft_clearance_m > hard:
            excess = np.clip((soft_clearance_m - self.clearance) / (soft_clearance_m - hard), 0, 1)
            self.cost = 1.0 + soft_weight * excess
        else:
            self.cost = np.ones((h, w))
        self.graph = self._graph()

    def _graph(self) -> csr_matrix:
        passable, cost = self.passable, self.cost
        h, w = passable.shape
        cell = self.occupancy.cell_m
        index = np.arange(h * w).reshape(h, w)
        heads, tails, weights = [], [], []
        for dr, dc, step in _STEPS:
            a_sl = (slice(max(0, -dr), h - max(0, dr)), slice(max(0, -dc), w - max(0, dc)))
            b_sl = (slice(max(0, dr), h + min(0, dr)), slice(max(0, dc), w + min(0, dc)))
            ok = passable[a_sl] & passable[b_sl]
            if dr and dc:  # no corner cutting
                side1 = passable[max(0, dr) : h + min(0, dr), max(0, -dc) : w - max(0, dc)]
                side2 = passable[max(0, -dr) : h - max(0, dr), max(0, dc) : w + min(0, dc)]
                ok &= side1 & side2
            src, dst = index[a_sl][ok], index[b_sl][ok]
            weight = step * cell * 0.5 * (cost[a_sl][ok] + cost[b_sl][ok])
            heads += [src, dst]
            tails += [dst, src]
            weights += [weight, weight]
        return csr_matrix(
            (np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))),
            shape=(h * w, h * w),
        )

    def world_of(self, r: float, c: float) -> np.ndarray:
        """World point (3,) on the floor at a window cell's centre (fractional cells allowed)."""
        row, col = r + self.window[0], c + self.window[1]
        x, z = self.occupancy.grid.cell_to_world_xz(row, col)
        return np.array([x, self.occupancy.cell_floor_y(row, col), z])

    def cell_of(self, x: float, z: float) -> tuple[int, int]:
        """Window cell (may lie outside the window) of a world x, z."""
        r, c = self.occupancy.grid.world_to_cell_xz(x, z)
        return r - self.window[0], c - self.window[1]

    def inside(self, r: int, c: int) -> bool:
        h, w = self.passable.shape
        return 0 <= r < h and 0 <= c < w

    def line_free(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        """Whether the straight segment between two window cells crosses passable cells only."""
        n = max(abs(b[0] - a[0]), abs(b[1] - a[1])) * 2 + 1
        rr = np.round(np.linspace(a[0], b[0], n)).astype(int)
        cc = np.round(np.linspace(a[1], b[1], n)).astype(int)
        if not (
            self.inside(int(rr.min()), int(cc.min())) and self.inside(int(rr.max()), int(cc.max()))
        ):
            return False
        return bool(np.all(self.passable[rr, cc]))

    def field(self, source: tuple[int, int], limit_m: float = math.inf) -> DistanceField:
        """Path costs from a window cell (the nearest passable one where it is not)."""
        return DistanceField.from_grid(self, source, limit_m)


class DistanceField:
    """Path costs (metres, inflated near obstacles) from the agent over a map window.

    Takes the arguments of :class:`CostGrid` (and ``limit_m``: stop the search beyond this
    cost; cells farther stay ``inf``); :meth:`CostGrid.field` searches from another cell.

    Attributes:
        grid: the :class:`CostGrid`; ``window``, ``state``, ``clearance``, ``passable``,
            and ``cost`` are its.
        distance: (h, w) path cost (m) from the source, ``inf`` where unreachable.
        start: (row, col) window cell the search starts from.
    """

    def __init__(
        self,
        occupancy: OccupancyMap,
        agent_position: np.ndarray,
        margin_cells: int = 4,
        clearance_m: float | None = None,
        *,
        soft_clearance_m: float | None = None,
        soft_weight: float = 0.0,
        obstacles_xz: np.ndarray | None = None,
        start_relax_m: float = 0.0,
        limit_m: float = math.inf,
    ) -> None:
        grid = CostGrid(
            occupancy,
            agent_position,
            margin_cells,
            clearance_m,
            soft_clearance_m=soft_clearance_m,
            soft_weight=soft_weight,
            obstacles_xz=obstacles_xz,
            start_relax_m=start_relax_m,
        )
        self._setup(grid, grid.agent, limit_m)

    @classmethod
    def from_grid(
        cls, grid: CostGrid, source: tuple[int, int], limit_m: float = math.inf
    ) -> DistanceField:
        field = cls.__new__(cls)
        field._setup(grid, source, limit_m)
        return field

    def _setup(self, grid: CostGrid, source: tuple[int, int], limit_m: float) -> None:
        self.grid = grid
        self.occupancy = grid.occupancy
        self.window = grid.window
        self.state = grid.state
        self.clearance = grid.clearance
        self.passable = grid.passable
        self.cost = grid.cost
        self.start = self._start_cell(grid.passable, source[0], source[1])
        h, w = grid.passable.shape
        dist, pred = dijkstra(
            grid.graph,
            indices=self.start[0] * w + self.start[1],
            return_predecessors=True,
            limit=limit_m,
        )
        self.distance = dist.reshape(h, w)
        self.predecessors = pred
        self._reach_min: dict[int, np.ndarray] = {}

    @staticmethod
    def _start_cell(passable: np.ndarray, r: int, c: int) -> tuple[int, int]:
        h, w = passable.shape
        r, c = min(max(r, 0), h - 1), min(max(c, 0), w - 1)
        if passable[r, c] or not np.any(passable):
            return r, c
        # The map may disagree with where the agent stands: start from the nearest passable cell.
        _, (ri, ci) = ndimage.distance_transform_edt(~passable, return_indices=True)
        return int(ri[r, c]), int(ci[r, c])

    # --- queries -----------------------------------------------------------------------------

    def local(self, row: int, col: int) -> tuple[int, int] | None:
        """Window cell of a map cell, None outside the window."""
        r, c = row - self.window[0], col - self.window[1]
        h, w = self.distance.shape
        return (r, c) if (0 <= r < h and 0 <= c < w) else None

    def to_cell(self, row: int, col: int) -> float:
        """Distance to a map cell (map coordinates), ``inf`` outside the window."""
        rc = self.local(row, col)
        return math.inf if rc is None else float(self.distance[rc])

    def to_point(self, point: np.ndarray) -> float:
        """Distance to the map cell under a world point (3,)."""
        return self.to_cell(*self.occupancy.grid.world_to_cell_xz(float(point[0]), float(point[2])))

    def reach_min(self, reach_cells: int) -> np.ndarray:
        """(h, w) the least distance of a reachable cell within ``reach_cells`` (square)."""
        if reach_cells not in self._reach_min:
            self._reach_min[reach_cells] = ndimage.minimum_filter(
                self.distance, size=2 * reach_cells + 1, mode="constant", cval=np.inf
            )
        return self._reach_min[reach_cells]

    def nearest_reachable(
        self, cells: np.ndarray, reach_cells: int = 3
    ) -> tuple[int, int, float] | None:
        """The reachable cell (map row, col) closest to any of ``cells`` (K, 2) map cells, with
        its distance; frontier cells themselves may sit too near obstacles to stand on."""
        local = self._inside(np.asarray(cells) - np.array(self.window))
        if len(local) == 0:
            return None
        near = self.reach_min(reach_cells)[local[:, 0], local[:, 1]]
        i = int(np.argmin(near))
        if not math.isfinite(float(near[i])):
            return None
        r, c = self.stand_cell(int(local[i, 0]), int(local[i, 1]), reach_cells)
        return r + self.window[0], c + self.window[1], float(self.distance[r, c])

    def stand_cell(self, r: int, c: int, reach_cells: int) -> tuple[int, int]:
        """The reachable window cell of least distance within ``reach_cells`` of window
        cell ``(r, c)`` (itself where nothing is reachable)."""
        h, w = self.distance.shape
        a0, a1 = max(0, r - reach_cells), min(h, r + reach_cells + 1)
        b0, b1 = max(0, c - reach_cells), min(w, c + reach_cells + 1)
        patch = self.distance[a0:a1, b0:b1]
        pr, pc = np.unravel_index(int(np.argmin(patch)), patch.shape)
        return a0 + int(pr), b0 + int(pc)

    def _inside(self, local: np.ndarray) -> np.ndarray:
        h, w = self.distance.shape
        keep = (local[:, 0] >= 0) & (local[:, 0] < h) & (local[:, 1] >= 0) & (local[:, 1] < w)
        return local[keep]

    def walk(self, r: int, c: int) -> list[tuple[int, int]]:
        """Window cells from window cell ``(r, c)`` back to the source along the shortest
        path (empty when it is unreachable or outside the window)."""
        h, w = self.distance.shape
        if not (0 <= r < h and 0 <= c < w) or not math.isfinite(float(self.distance[r, c])):
            return []
        node = r * w + c
        source = self.start[0] * w + self.start[1]
        cells = [(r, c)]
        while node != source:
            node = int(self.predecessors[node])
            if node < 0:
                return []
            cells.append(divmod(node, w))
        return cells

    def path_cells(self, row: int, col: int) -> list[tuple[int, int]]:
        """Window cells from the source to a map cell (empty when it is unreachable)."""
        return self.walk(row - self.window[0], col - self.window[1])[::-1]

    def path_to(self, row: int, col: int) -> list[np.ndarray]:
        """World points (floor level) from the agent to a reachable map cell, pulled taut."""
        return self.taut_points(self.path_cells(row, col))

    def world_of(self, row: float, col: float) -> np.ndarray:
        """World point (3,) on the floor at the centre of a map cell."""
        x, z = self.occupancy.grid.cell_to_world_xz(row, col)
        return np.array([x, self.occupancy.cell_floor_y(row, col), z])

    def local_world(self, r: float, c: float) -> np.ndarray:
        """World point (3,) of a window cell's centre (fractional cells allowed)."""
        return self.grid.world_of(r, c)

    def line_free(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        """See :meth:`CostGrid.line_free`."""
        return self.grid.line_free(a, b)

    def taut_points(self, cells: list[tuple[int, int]]) -> list[np.ndarray]:
        """World points of the corners of a window-cell path pulled taut (straight where the
        line between two path cells is free)."""
        points = [self.local_world(r, c) for r, c in cells]
        if len(points) <= 2:
            return points
        out = [points[0]]
        anchor = 0
        i = 1
        while i < len(points):
            if i + 1 < len(points) and self.line_free(cells[anchor], cells[i + 1]):
                i += 1
                continue
            out.append(points[i])
            anchor = i
            i += 1
        return out


def unknown_around(occupancy: OccupancyMap, row: int, col: int, radius_m: float) -> int:
    """Unknown cells within ``radius_m`` (a square) of a map cell: what a visit there could
    reveal."""
    k = int(math.ceil(radius_m / occupancy.cell_m))
    r0, r1 = max(0, row - k), min(occupancy.grid.rows, row + k + 1)
    c0, c1 = max(0, col - k), min(occupancy.grid.cols, col + k + 1)
    window = occupancy.state[r0:r1, c0:c1]
    return int(np.count_nonzero(window == UNKNOWN))


def visible_unknown(
    state: np.ndarray, cells: np.ndarray, radius_cells: int, rays: int = 32
) -> np.ndarray:
    """(K,) the unknown area (in cells) in sight of each of ``cells`` (K, 2) window (row, col)
    within ``radius_cells``: rays from the cell pass free and unknown cells and stop at
    occupied and void ones; each unknown cell a ray passes counts for the area it stands for (its
    distance times the angle between rays). Cells outside ``state`` (h, w) count as unknown.
    """
    if len(cells) == 0:
        return np.zeros(0)
    h, w = state.shape
    angles = np.arange(rays) * (2.0 * math.pi / rays)
    radii = np.arange(1, radius_cells + 1, dtype=np.float64)
    rr = np.rint(cells[:, 0, None, None] + np.sin(angles)[None, :, None] * radii).astype(np.int64)
    cc = np.rint(cells[:, 1, None, None] + np.cos(angles)[None, :, None] * radii).astype(np.int64)
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    seen = np.where(inside, state[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)], UNKNOWN)
    # Nothing is to be seen beyond a wall, nor beyond a drop-off.
    open_ray = np.logical_and.accumulate(~blocked_mask(seen), axis=2)
    unknown = open_ray & (seen == UNKNOWN)
    return (unknown * radii).sum(axis=(1, 2)) * (2.0 * math.pi / rays)

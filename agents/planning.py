"""Path planning on the agent's own occupancy map: Dijkstra over traversable cells."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from mapping.occupancy import UNKNOWN, OccupancyMap

_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, math.sqrt(2.0)), (1, -1, math.sqrt(2.0)))


class DistanceField:
    """Grid distances (metres) from the agent over the traversable cells of a map window.

    Attributes:
        window: (row0, col0) of the window in the map grid.
        distance: (h, w) metres from the agent, ``inf`` where unreachable.
    """

    def __init__(
        self,
        occupancy: OccupancyMap,
        agent_position: np.ndarray,
        margin_cells: int = 4,
        clearance_m: float | None = None,
    ) -> None:
        self.occupancy = occupancy
        known = occupancy.state != 0
        rows = np.flatnonzero(known.any(axis=1))
        cols = np.flatnonzero(known.any(axis=0))
        g = occupancy.grid
        r_agent, c_agent = g.world_to_cell_xz(float(agent_position[0]), float(agent_position[2]))
        r0 = max(0, min(int(rows.min(initial=r_agent)), r_agent) - margin_cells)
        r1 = min(g.rows, max(int(rows.max(initial=r_agent)), r_agent) + margin_cells + 1)
        c0 = max(0, min(int(cols.min(initial=c_agent)), c_agent) - margin_cells)
        c1 = min(g.cols, max(int(cols.max(initial=c_agent)), c_agent) + margin_cells + 1)
        self.window = (r0, c0)
        passable = occupancy.traversable(clearance_m)[r0:r1, c0:c1]
        self.passable = passable
        self.start = self._start_cell(passable, r_agent - r0, c_agent - c0)
        self.distance, self.predecessors = self._solve(passable, self.start)

    @staticmethod
    def _start_cell(passable: np.ndarray, r: int, c: int) -> tuple[int, int]:
        h, w = passable.shape
        r, c = min(max(r, 0), h - 1), min(max(c, 0), w - 1)
        if passable[r, c] or not np.any(passable):
            return r, c
        # The agent may stand within its radius of an obstacle: start from the nearest free cell.
        _, (ri, ci) = ndimage.distance_transform_edt(~passable, return_indices=True)
        return int(ri[r, c]), int(ci[r, c])

    def _solve(self, passable: np.ndarray, start: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        h, w = passable.shape
        cell = self.occupancy.cell_m
        index = np.arange(h * w).reshape(h, w)
        heads, tails, weights = [], [], []
        for dr, dc, step in _STEPS:
            a = passable[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
            src = index[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
            dst = index[max(0, dr) : h + min(0, dr), max(0, dc) : w + min(0, dc)]
            b = passable[max(0, dr) : h + min(0, dr), max(0, dc) : w + min(0, dc)]
            ok = a & b
            if dr and dc:  # no corner cutting
                side1 = passable[max(0, dr) : h + min(0, dr), max(0, -dc) : w - max(0, dc)]
                side2 = passable[max(0, -dr) : h - max(0, dr), max(0, dc) : w + min(0, dc)]
                ok &= side1 & side2
            heads += [src[ok], dst[ok]]
            tails += [dst[ok], src[ok]]
            weights += [np.full(int(ok.sum()), step * cell)] * 2
        graph = csr_matrix(
            (np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))),
            shape=(h * w, h * w),
        )
        source = start[0] * w + start[1]
        dist, pred = dijkstra(graph, indices=source, return_predecessors=True)
        return dist.reshape(h, w), pred

    def to_cell(self, row: int, col: int) -> float:
        """Distance to a map cell (map coordinates), ``inf`` outside the window."""
        r, c = row - self.window[0], col - self.window[1]
        h, w = self.distance.shape
        if not (0 <= r < h and 0 <= c < w):
            return math.inf
        return float(self.distance[r, c])

    def nearest_reachable(self, cells: np.ndarray, reach_cells: int = 3) -> tuple[int, int, float] | None:
        """The reachable cell (map row, col) closest to any of ``cells`` (K, 2), with its
        distance; frontier cells themselves may sit too near obstacles to stand on."""
        h, w = self.distance.shape
        local = cells - np.array(self.window)
        inside = (local[:, 0] >= 0) & (local[:, 0] < h) & (local[:, 1] >= 0) & (local[:, 1] < w)
        local = local[inside]
        if len(local) == 0:
            return None
        mask = np.zeros((h, w), dtype=bool)
        mask[local[:, 0], local[:, 1]] = True
        mask = ndimage.binary_dilation(mask, iterations=reach_cells)
        candidates = np.where(mask & np.isfinite(self.distance), self.distance, np.inf)
        flat = int(np.argmin(candidates))
        best = float(candidates.flat[flat])
        if not math.isfinite(best):
            return None
        r, c = divmod(flat, w)
        return r + self.window[0], c + self.window[1], best

    def path_to(self, row: int, col: int) -> list[np.ndarray]:
        """World points (floor level) from the agent to a reachable map cell, pulled taut."""
        h, w = self.distance.shape
        r, c = row - self.window[0], col - self.window[1]
        node = r * w + c
        source = self.start[0] * w + self.start[1]
        cells = [(r, c)]
        while node != source and node >= 0:
            node = int(self.predecessors[node])
            if node < 0:
                break
            cells.append(divmod(node, w))
        cells.reverse()
        points = [self.world_of(rr + self.window[0], cc + self.window[1]) for rr, cc in cells]
        return self._pull_taut(points, cells)

    def world_of(self, row: int, col: int) -> np.ndarray:
        """World point (3,) on the floor at the centre of a map cell."""
        x, z = self.occupancy.grid.cell_to_world_xz(row, col)
        return np.array([x, self.occupancy.floor_y, z])

    def _line_free(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        n = max(abs(b[0] - a[0]), abs(b[1] - a[1])) * 2 + 1
        rr = np.round(np.linspace(a[0], b[0], n)).astype(int)
        cc = np.round(np.linspace(a[1], b[1], n)).astype(int)
        return bool(np.all(self.passable[rr, cc]))

    def _pull_taut(self, points: list[np.ndarray], cells: list[tuple[int, int]]) -> list[np.ndarray]:
        if len(points) <= 2:
            return points
        out = [points[0]]
        anchor = 0
        i = 1
        while i < len(points):
            if i + 1 < len(points) and self._line_free(cells[anchor], cells[i + 1]):
                i += 1
                continue
            out.append(points[i])
            anchor = i
            i += 1
        return out


def unknown_around(occupancy: OccupancyMap, row: int, col: int, radius_m: float) -> int:
    """Unknown cells within ``radius_m`` of a map cell: what a visit there could reveal."""
    k = int(math.ceil(radius_m / occupancy.cell_m))
    r0, r1 = max(0, row - k), min(occupancy.grid.rows, row + k + 1)
    c0, c1 = max(0, col - k), min(occupancy.grid.cols, col + k + 1)
    window = occupancy.state[r0:r1, c0:c1]
    return int(np.count_nonzero(window == UNKNOWN))

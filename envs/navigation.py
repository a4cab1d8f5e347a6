"""Navigable area of a triangle mesh for a cylindrical agent, and navigation queries on it.

The mesh is voxelised into a 2D grid of floor cells at the start's level, the way Recast
(habitat-sim's navmesh builder) does it in spirit:

1. a ray cast down from ``max_climb`` above the level finds each cell's floor (a walkable,
   upward-facing surface; a down-facing first hit means the cell is inside a solid);
2. surface points of every triangle that lie between ``max_climb`` and ``agent_height`` above
   a cell's floor block it (furniture, walls, low ceilings);
3. the walkable cells are eroded by the agent's radius;
4. the island holding the start is the navigable area, but every island answers
   :meth:`NavGrid.is_navigable`, as habitat-sim's navmesh does.

Geodesic distances run Dijkstra on the 8-connected grid and then pull the path taut with
line-of-sight checks, so they follow straight segments between corners like a navmesh path.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from envs.errors import AeqaError

logger = logging.getLogger(__name__)

_SQRT2 = math.sqrt(2.0)
_NEIGHBOURS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, _SQRT2), (1, -1, _SQRT2))


@dataclass(frozen=True)
class NavSpec:
    """Agent and grid parameters (habitat-sim's defaults)."""

    agent_radius_m: float = 0.1
    agent_height_m: float = 1.5
    max_climb_m: float = 0.2
    max_slope_deg: float = 45.0
    cell_m: float = 0.05
    #: how far below the level a floor is still searched for
    max_drop_m: float = 0.5
    #: how far from the navigable area :meth:`NavGrid.is_navigable` still looks vertically
    max_y_delta_m: float = 0.5


class NavGrid:
    """The navigable floor of one level of a mesh, with habitat-style navigation queries.

    Grid cell ``(row, col)`` covers world ``x`` in ``origin_x + col * cell`` ..  + cell and
    ``z`` in ``origin_z + row * cell`` .. + cell.

    Attributes:
        floor_y: (rows, cols) float32 floor height per cell (NaN where no floor).
        navigable: (rows, cols) bool, eroded walkable cells of every island.
        island: (rows, cols) bool, the navigable cells connected to the start.
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
        lo = vertices.min(axis=0)
        hi = vertices.max(axis=0)
        self.origin_x = float(lo[0]) - spec.cell_m
        self.origin_z = float(lo[2]) - spec.cell_m
        self.cols = int(math.ceil((hi[0] - self.origin_x) / spec.cell_m)) + 2
        self.rows = int(math.ceil((hi[2] - self.origin_z) / spec.cell_m)) + 2
        self.floor_y = self._floor_heights(vertices, faces)
        walkable = np.isfinite(self.floor_y) & ~self._blocked_by_surfaces(vertices, faces)
        # Distance from a cell centre to the nearest unwalkable cell's edge, in metres.
        clearance = ndimage.distance_transform_edt(walkable) * spec.cell_m - spec.cell_m / 2.0
        self.navigable = walkable & (clearance >= spec.agent_radius_m)
        labels, count = ndimage.label(self.navigable, structure=np.ones((3, 3), dtype=bool))
        self._labels = labels
        if count == 0:
            raise AeqaError(
                f"{source}: no navigable floor at height {self.level_y:.2f} m for an agent of "
                f"radius {spec.agent_radius_m} m; check the scene has a floor and its up axis"
            )
        if start_xz is None:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            start_label = int(np.argmax(sizes))
        else:
            start_label = self._island_label(start_xz)
            if start_label == 0:
                raise AeqaError(
                    f"{source}: start position ({start_xz[0]:.2f}, {self.level_y:.2f}, "
                    f"{start_xz[1]:.2f}) is not on the navigable area; give a start on free floor"
                )
        self.island = labels == start_label
        # Signed distance to the island's border (metres, positive inside), for sliding.
        inside = ndimage.distance_transform_edt(self.island)
        outside = ndimage.distance_transform_edt(~self.island)
        self._sdf = ((inside - outside) * spec.cell_m).astype(np.float32)
        self._graph = self._build_graph()
        self._nearest = ndimage.distance_transform_edt(
            ~self.island, return_distances=False, return_indices=True
        )
        logger.info(
            "navigable area %.2f m2 (%d islands) at level %.2f m",
            self.island_area_m2,
            count,
            self.level_y,
        )

    # --- construction ------------------------------------------------------------------------

    def _cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        xs = self.origin_x + (np.arange(self.cols) + 0.5) * self.cell_m
        zs = self.origin_z + (np.arange(self.rows) + 0.5) * self.cell_m
        return xs, zs

    def _floor_heights(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        import open3d as o3d

        from envs.meshsim.raycast import build_raycasting_scene

        spec = self.spec
        scene = build_raycasting_scene(vertices, faces)
        xs, zs = self._cell_centres()
        top = self.level_y + spec.max_climb_m
        rays = np.zeros((self.rows, self.cols, 6), dtype=np.float32)
        rays[..., 0] = xs[None, :]
        rays[..., 1] = top
        rays[..., 2] = zs[:, None]
        rays[..., 4] = -1.0
        hits = scene.cast_rays(o3d.core.Tensor(rays))
        t = hits["t_hit"].numpy()
        normal_y = hits["primitive_normals"].numpy()[..., 1]
        min_normal_y = math.cos(math.radians(spec.max_slope_deg))
        # A down-facing first hit means the ray started inside a closed solid (a wall).
        ok = (t <= spec.max_climb_m + spec.max_drop_m) & (normal_y >= min_normal_y)
        return np.where(ok, top - t, np.nan).astype(np.float32)

    def _blocked_by_surfaces(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Cells where some surface lies within the agent's body above the cell's floor."""
        spec = self.spec
        band_lo = self.level_y - spec.max_drop_m
        band_hi = self.level_y + spec.max_climb_m + spec.agent_height_m
        blocked = np.zeros((self.rows, self.cols), dtype=bool)
        tri = vertices[faces].astype(np.float64)
        keep = (tri[..., 1].max(axis=1) >= band_lo) & (tri[..., 1].min(axis=1) <= band_hi)
        for points in _surface_samples(tri[keep], spacing=self.cell_m * 0.5):
            col = np.floor((points[:, 0] - self.origin_x) / self.cell_m).astype(np.int64)
            row = np.floor((points[:, 2] - self.origin_z) / self.cell_m).astype(np.int64)
            inside = (col >= 0) & (col < self.cols) & (row >= 0) & (row < self.rows)
            col, row, y = col[inside], row[inside], points[inside, 1]
            height = y - self.floor_y[row, col]
            hit = (height > spec.max_climb_m) & (height < spec.agent_height_m)
            blocked[row[hit], col[hit]] = True
        return blocked

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
                ok[ok] &= self.island[cells[ok, 0] + dr, cells[ok, 1]] & self.island[
                    cells[ok, 0], cells[ok, 1] + dc
                ]
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

    def _island_label(self, xz: tuple[float, float]) -> int:
        row, col = self.cell_of(np.array([xz[0], 0.0, xz[1]]))
        if not self._in_grid(row, col):
            return 0
        return int(self._labels[row, col])

    # --- queries -----------------------------------------------------------------------------

    @property
    def island_area_m2(self) -> float:
        return float(self.island.sum()) * self.cell_m**2

    def is_navigable(self, point: np.ndarray) -> bool:
        """True where the point's cell is navigable (any island) within ``max_y_delta``."""
        row, col = self.cell_of(point)
        if not self._in_grid(row, col) or not self.navigable[row, col]:
            return False
        return abs(float(point[1]) - float(self.floor_y[row, col])) <= self.spec.max_y_delta_m

    def on_island(self, point: np.ndarray) -> bool:
        row, col = self.cell_of(point)
        return self._in_grid(row, col) and bool(self.island[row, col])

    def snap(self, point: np.ndarray) -> np.ndarray:
        """The nearest navigable point of the start island (its cell centre if outside)."""
        row, col = self.cell_of(point)
        row = min(max(row, 0), self.rows - 1)
        col = min(max(col, 0), self.cols - 1)
        if self.island[row, col]:
            out = np.asarray(point, dtype=np.float64).copy()
            out[1] = float(self.floor_y[row, col])
            return out
        return self.cell_centre(int(self._nearest[0][row, col]), int(self._nearest[1][row, col]))

    def clearance_m(self, point: np.ndarray) -> float:
        """Signed distance (metres) from a point to the island's border, positive inside."""
        c = (float(point[0]) - self.origin_x) / self.cell_m - 0.5
        r = (float(point[2]) - self.origin_z) / self.cell_m - 0.5
        value = ndimage.map_coordinates(self._sdf, [[r], [c]], order=1, mode="nearest")
        return float(value[0])

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A navigable point of the start island, drawn uniformly over its cells."""
        row, col = self._cells[int(rng.integers(len(self._cells)))]
        return self.cell_centre(int(row), int(col))

    def distance_field(self, goal: np.ndarray) -> np.ndarray:
        """Grid geodesic distance (rows, cols) in metres from ``goal``; inf off the island."""
        source = self._node_of(goal)
        dist = dijkstra(self._graph, indices=source)
        field = np.full((self.rows, self.cols), np.inf)
        field[self._cells[:, 0], self._cells[:, 1]] = dist
        return field

    def _node_of(self, point: np.ndarray) -> int:
        row, col = self.cell_of(self.snap(point))
        return int(self._index[row, col])

    def shortest_path(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray | None:
        """Waypoints (N, 3) from ``start`` to ``goal`` along the island, or None if unreachable.

        The grid path is pulled taut, so consecutive waypoints see each other.
        """
        a = self._node_of(start)
        b = self._node_of(goal)
        dist, predecessors = dijkstra(
            self._graph, indices=a, return_predecessors=True, min_only=False
        )
        if not np.isfinite(dist[b]):
            return None
        nodes = [b]
        while nodes[-1] != a:
            nodes.append(int(predecessors[nodes[-1]]))
        nodes.reverse()
        cells = self._cells[nodes]
        points = [self.cell_centre(int(r), int(c)) for r, c in cells]
        points[0] = self.snap(start)
        points[-1] = self.snap(goal)
        return np.array(self._pull_taut(points))

    def geodesic_distance(self, start: np.ndarray, goal: np.ndarray) -> float:
        """Length (metres) of the taut path, ``inf`` when the goal is unreachable."""
        path = self.shortest_path(start, goal)
        if path is None:
            return math.inf
        return float(np.linalg.norm(np.diff(path[:, [0, 2]], axis=0), axis=1).sum())

    def line_of_sight(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True when the straight floor segment a-b stays on the island."""
        length = math.hypot(float(b[0] - a[0]), float(b[2] - a[2]))
        n = max(2, int(math.ceil(length / (self.cell_m * 0.5))) + 1)
        t = np.linspace(0.0, 1.0, n)
        x = a[0] + t * (b[0] - a[0])
        z = a[2] + t * (b[2] - a[2])
        col = np.floor((x - self.origin_x) / self.cell_m).astype(np.int64)
        row = np.floor((z - self.origin_z) / self.cell_m).astype(np.int64)
        if np.any((col < 0) | (col >= self.cols) | (row < 0) | (row >= self.rows)):
            return False
        return bool(np.all(self.island[row, col]))

    def _pull_taut(self, points: list[np.ndarray]) -> list[np.ndarray]:
        out = [points[0]]
        anchor = 0
        i = anchor + 1
        while i < len(points):
            if i + 1 < len(points) and self.line_of_sight(points[anchor], points[i + 1]):
                i += 1
                continue
            out.append(points[i])
            anchor = i
            i += 1
        return out


def _surface_samples(tri: np.ndarray, spacing: float, chunk: int = 2_000_000):
    """Points on triangles (T, 3, 3) no farther than ``spacing`` apart, yielded in chunks.

    Each triangle is split into a barycentric lattice of ``k`` steps per edge, with ``k``
    chosen from its longest edge, so thin walls leave no gaps between samples.
    """
    edges = np.stack(
        [
            np.linalg.norm(tri[:, 1] - tri[:, 0], axis=1),
            np.linalg.norm(tri[:, 2] - tri[:, 1], axis=1),
            np.linalg.norm(tri[:, 0] - tri[:, 2], axis=1),
        ],
        axis=1,
    )
    steps = np.maximum(1, np.ceil(edges.max(axis=1) / spacing)).astype(np.int64)
    for k in np.unique(steps):
        group = tri[steps == k]
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = (i + j) <= k
        a = (i[keep] / k)[:, None]
        b = (j[keep] / k)[:, None]
        per_tri = len(a)
        batch = max(1, chunk // per_tri)
        for start in range(0, len(group), batch):
            g = group[start : start + batch]
            v0 = g[:, None, 0, :]
            pts = v0 + a[None] * (g[:, None, 1, :] - v0) + b[None] * (g[:, None, 2, :] - v0)
            yield pts.reshape(-1, 3)

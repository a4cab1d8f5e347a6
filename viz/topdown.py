"""Top-down maps of an episode: the navigable area, walls and objects, the area the agent
saw, frontiers at chosen steps, the trajectory coloured by time, and the objects the answer
relied on.

The map is one grid on the floor plane (world x to the right, z down the picture: the view from
above of habitat's Y-up world). Its layers come from what the episode recorded, and from the
scene where its files are still there:

- the navigable island of the agent's level: ``navigable.npz``, as the simulator gave it
  (``Simulator.navigable_grid``) when the episode ran; for episodes written before it was
  recorded, asked of a simulator built from the run's config and reset at the episode's start;
- walls and objects, from the scene's semantic mesh: its triangles sampled in the agent's
  height band, each cell taking the topmost object over it (not drawn where the scene is gone);
- the memory's final occupancy map (``memory/occupancy.npz``): the floor seen as free, the
  obstacles seen, and the step at which each cell was first seen (``first_seen``, recorded as
  frames arrived). The seen area and the frontiers at a step are the map cut down to the cells
  seen by then (``aeqa.mapping.occupancy.OccupancyMap.frontiers``);
- the trajectory (``trajectory.json``) and the answer's evidence (object ids of ``episode.json``,
  drawn with their boxes from the memory's object table).

Memories saved before first-seen steps were recorded get them reconstructed from the poses: from
each pose a fan of rays across the camera's horizontal field of view is cast on the floor plane,
out to the map's range, against the final map, each ray stopping at the first occupied cell; a
cell counts as seen at step ``t`` when a fan of a pose up to ``t`` reached it, and cells the
final map knows but no fan reached count from the last step.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import GridSpec
from aeqa.envs.types import AgentState, NavigableGrid
from aeqa.mapping.occupancy import FREE, OCCUPIED, UNKNOWN, Frontier, OccupancyMap
from aeqa.viz import colors
from aeqa.viz.data import EpisodeData, Poses, resolve_scene

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: "never seen" in first-seen step grids
NEVER = np.iinfo(np.int32).max
#: the finest display cell, and the largest number of cells along a side
DISPLAY_CELL_M = 0.05
MAX_DISPLAY_CELLS = 1600
#: categories that are not objects on the map
_NOT_OBJECTS = frozenset({"floor", "ceiling", "rug", "carpet", "mat", ""})
_WALL_CATEGORIES = frozenset({"wall"})


# --- the scene's ground truth ----------------------------------------------------------------


@dataclass
class Region:
    """A named room of a generated scene's ground truth, by its floor-plane box."""

    name: str
    x_min: float
    z_min: float
    x_max: float
    z_max: float


@dataclass
class FloorPlan:
    """A scene's walls and objects at one level, from its files.

    Attributes:
        source: the scene basename.
        grid: the grid of ``walls`` and ``instance`` (the scene's extent in ``cell_m`` cells).
        walls: (rows, cols) bool, wall (or unlabelled) geometry in the agent's height band.
        instance: (rows, cols) int32, the topmost object's instance id (0: none).
        categories: instance id -> category.
        regions: rooms of generated scenes (empty for others).
    """

    source: Path
    grid: GridSpec
    walls: np.ndarray
    instance: np.ndarray
    categories: dict[int, str]
    regions: list[Region] = field(default_factory=list)


def build_floor_plan(
    scene: Path,
    sim: SimConfig,
    level_y: float,
    max_samples: int = 3_000_000,
    max_cells: int = 4000,
) -> FloorPlan:
    """The walls and objects of ``scene`` around the height ``level_y`` (the agent's band above
    it), on cells of ``sim.nav_cell_m`` (coarser where the scene is wider than ``max_cells``).

    Raises:
        AeqaError: the scene cannot be loaded.
    """
    from aeqa.envs.scene import load_scene, scene_spec_for

    mesh = load_scene(scene_spec_for(str(scene), sim))
    lo = mesh.vertices[:, [0, 2]].min(axis=0).astype(np.float64)
    hi = mesh.vertices[:, [0, 2]].max(axis=0).astype(np.float64)
    cell = max(sim.nav_cell_m, float((hi - lo).max()) / max_cells)
    rows, cols = (int(math.ceil(float(v) / cell)) + 1 for v in (hi - lo)[::-1])
    grid = GridSpec(float(lo[0]), float(lo[1]), cell, rows, cols)
    if mesh.semantic_shared:
        vertices, faces = mesh.vertices, mesh.faces
    else:
        assert mesh.semantic_vertices is not None and mesh.semantic_faces is not None
        vertices, faces = mesh.semantic_vertices, mesh.semantic_faces
    categories = {int(i): info.category for i, info in mesh.instances.items()}
    band = (level_y + 0.5 * sim.agent.max_climb_m, level_y + sim.agent.height_m)
    walls, instance = _rasterise_band(
        grid, vertices, faces, mesh.face_instance, categories, band, max_samples
    )
    regions = []
    for entry in (mesh.ground_truth or {}).get("regions", []):
        try:
            (x0, z0), (x1, z1) = entry["bounds_min"], entry["bounds_max"]
            regions.append(Region(str(entry["name"]), x0, z0, x1, z1))
        except (KeyError, TypeError, ValueError):
            continue
    return FloorPlan(scene, grid, walls, instance, categories, regions)


def simulated_navigable(scene: Path, sim: SimConfig, start: AgentState) -> NavigableGrid:
    """The navigable island holding ``start`` as a simulator built from ``sim`` gives it
    (``navigable_grid`` of ``sim.nav_cell_m`` cells): for episodes that did not record it.

    Raises:
        AeqaError: the simulator cannot be built, or cannot load the scene at ``start``.
    """
    from aeqa.envs.simulator import make_simulator

    # The frames are not looked at: the smallest, drawn without OpenGL where meshsim draws.
    simulator = make_simulator(replace(sim, width=8, height=8, renderer="raycast"))
    try:
        simulator.reset(scene, start)
        return simulator.navigable_grid(sim.nav_cell_m)
    finally:
        simulator.close()


def _rasterise_band(
    grid: GridSpec,
    vertices: np.ndarray,
    faces: np.ndarray,
    face_instance: np.ndarray,
    categories: dict[int, str],
    band: tuple[float, float],
    max_samples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Walls and topmost objects per cell, from points sampled on the triangles in ``band``.

    Triangles are sampled by their 3D area (about four points per cell side), so vertical walls,
    which project to lines, fill their cells as well as horizontal tops do.
    """
    walls = np.zeros((grid.rows, grid.cols), dtype=bool)
    instance = np.zeros((grid.rows, grid.cols), dtype=np.int32)
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    if len(tri) == 0:
        return walls, instance
    y = tri[:, :, 1]
    near = (y.max(axis=1) >= band[0]) & (y.min(axis=1) <= band[1])
    tri = tri[near]
    ids = np.asarray(face_instance, dtype=np.int64)[near]
    if len(tri) == 0:
        return walls, instance
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    spacing = grid.cell_m / 2.0
    counts = 1 + np.floor(area / spacing**2).astype(np.int64)
    if counts.sum() > max_samples:
        counts = 1 + np.floor((counts - 1) * (max_samples / counts.sum())).astype(np.int64)
    owner = np.repeat(np.arange(len(tri)), counts)
    rng = np.random.default_rng(0)
    r1 = np.sqrt(rng.random(len(owner)))
    r2 = rng.random(len(owner))
    a, b, c = tri[owner, 0], tri[owner, 1], tri[owner, 2]
    points = (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c
    # The corners too, so that thin triangles reach their ends.
    points = np.concatenate([points, tri.reshape(-1, 3)])
    point_ids = np.concatenate([ids[owner], np.repeat(ids, 3)])
    keep = (points[:, 1] >= band[0]) & (points[:, 1] <= band[1])
    keep &= (points[:, 0] >= grid.origin_x) & (points[:, 2] >= grid.origin_z)
    keep &= points[:, 0] < grid.origin_x + grid.cols * grid.cell_m
    keep &= points[:, 2] < grid.origin_z + grid.rows * grid.cell_m
    points, point_ids = points[keep], point_ids[keep]
    rows, cols = grid.world_to_cells(points[:, [0, 2]])
    unique_ids, inverse = np.unique(point_ids, return_inverse=True)
    names = [categories.get(int(i), "") for i in unique_ids]
    # Unlabelled geometry (id 0, or an id without a category) is drawn as wall.
    wall_of_id = np.array([n in _WALL_CATEGORIES or n == "" for n in names], dtype=bool)
    object_of_id = np.array([n not in _NOT_OBJECTS for n in names], dtype=bool) & ~wall_of_id
    is_wall = wall_of_id[inverse.reshape(-1)]
    is_object = object_of_id[inverse.reshape(-1)]
    walls[rows[is_wall], cols[is_wall]] = True
    if np.any(is_object):
        cell = rows[is_object] * grid.cols + cols[is_object]
        height = points[is_object, 1]
        order = np.lexsort((height, cell))
        cell_sorted = cell[order]
        last = np.r_[cell_sorted[1:] != cell_sorted[:-1], True]
        top = order[last]
        instance.reshape(-1)[cell[top]] = point_ids[is_object][top]
    return walls, instance


class FloorPlanCache:
    """Floor plans by scene and level, and navigable grids asked of a simulator by scene and
    start, the most recent few kept (a run visits each scene's episodes together)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._plans: OrderedDict[tuple[str, float, str], FloorPlan | None] = OrderedDict()
        self._navigable: OrderedDict[tuple[str, str, str], NavigableGrid | None] = OrderedDict()

    def get(self, scene: Path, sim: SimConfig, level_y: float) -> FloorPlan | None:
        """The floor plan, or None (with a log record) where the scene cannot be used."""
        key = (str(scene.resolve()), round(level_y, 2), repr(sim))
        if key not in self._plans:
            try:
                self._plans[key] = build_floor_plan(scene, sim, level_y)
            except AeqaError as e:
                logger.info("%s: no floor plan (%s)", scene, e)
                self._plans[key] = None
        self._plans.move_to_end(key)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)
        return self._plans[key]

    def navigable(self, scene: Path, sim: SimConfig, start: AgentState) -> NavigableGrid | None:
        """:func:`simulated_navigable`, or None (with a log record) where it fails."""
        key = (str(scene.resolve()), repr(np.round(start.position, 2).tolist()), repr(sim))
        if key not in self._navigable:
            try:
                self._navigable[key] = simulated_navigable(scene, sim, start)
            except AeqaError as e:
                logger.info("%s: navigable area not asked of the simulator (%s)", scene, e)
                self._navigable[key] = None
        self._navigable.move_to_end(key)
        while len(self._navigable) > self.size:
            self._navigable.popitem(last=False)
        return self._navigable[key]


# --- what the agent saw, step by step --------------------------------------------------------


def first_seen_steps(
    occupancy: OccupancyMap, poses: Poses, hfov_deg: float, ray_spacing_deg: float = 0.5
) -> np.ndarray:
    """(rows, cols) int32 on the occupancy grid: the first step whose view fan reached each cell
    the final map knows (free or occupied); :data:`NEVER` for cells it does not know.

    See the module docstring for the view fans.
    """
    g = occupancy.grid
    state = occupancy.state
    first = np.full(state.shape, NEVER, dtype=np.int32)
    known = state != UNKNOWN
    if len(poses) == 0:
        return first
    occupied = state == OCCUPIED
    n_rays = max(2, int(math.ceil(hfov_deg / ray_spacing_deg)) + 1)
    offsets = np.radians(np.linspace(-hfov_deg / 2.0, hfov_deg / 2.0, n_rays))
    dists = np.arange(0.25, occupancy.max_range_m / (g.cell_m * 0.5)) * (g.cell_m * 0.5)
    for step, position, yaw in zip(poses.steps, poses.positions, poses.yaws_rad, strict=True):
        angles = yaw + offsets
        x = position[0] - np.sin(angles)[:, None] * dists[None, :]
        z = position[2] - np.cos(angles)[:, None] * dists[None, :]
        cols = np.floor((x - g.origin_x) / g.cell_m).astype(np.int64)
        rows = np.floor((z - g.origin_z) / g.cell_m).astype(np.int64)
        inside = (rows >= 0) & (rows < g.rows) & (cols >= 0) & (cols < g.cols)
        rows_c = np.clip(rows, 0, g.rows - 1)
        cols_c = np.clip(cols, 0, g.cols - 1)
        hit = occupied[rows_c, cols_c] & inside
        # Visible: inside the grid, and no occupied cell nor the grid's edge before it.
        blocked_before = (np.cumsum(hit, axis=1) - hit) > 0
        left_grid = np.cumsum(~inside, axis=1) > 0
        visible = inside & ~blocked_before & ~left_grid
        r, c = rows_c[visible], cols_c[visible]
        fresh = first[r, c] == NEVER
        first[r[fresh], c[fresh]] = int(step)
    first[known & (first == NEVER)] = int(poses.steps[-1])
    first[~known] = NEVER
    return first


def default_frontier_steps(last_step: int, count: int = 3) -> list[int]:
    """``count`` steps spread evenly over the episode, the last one included."""
    if last_step <= 0:
        return [0]
    return sorted({max(1, round(last_step * k / count)) for k in range(1, count + 1)})


# --- the map ---------------------------------------------------------------------------------


@dataclass
class _Layers:
    """What :meth:`TopDownMap.rgb` draws at every step, computed once."""

    solid: np.ndarray
    object_rgb: np.ndarray
    object_pale: np.ndarray
    first_seen_near: np.ndarray

    @classmethod
    def of(cls, topdown: TopDownMap) -> _Layers:
        from scipy import ndimage

        inst = topdown.instance
        shape = inst.shape
        object_rgb = np.zeros((*shape, 3), dtype=np.uint8)
        object_pale = np.zeros((*shape, 3), dtype=np.uint8)
        ids = np.unique(inst[inst > 0])
        if len(ids):
            lut = np.zeros((int(ids.max()) + 1, 3), dtype=np.uint8)
            for i in ids:
                lut[i] = colors.category_color(topdown.categories.get(int(i), ""))
            border = np.zeros(shape, dtype=bool)
            border[1:, :] |= inst[1:, :] != inst[:-1, :]
            border[:-1, :] |= inst[:-1, :] != inst[1:, :]
            border[:, 1:] |= inst[:, 1:] != inst[:, :-1]
            border[:, :-1] |= inst[:, :-1] != inst[:, 1:]
            edge = (lut.astype(np.float32) * 0.6).astype(np.uint8)
            object_rgb = np.where(border[..., None], edge[inst], lut[inst])
            object_pale = colors.blend(object_rgb, colors.BACKGROUND, 0.7)
        first_seen_near = ndimage.minimum_filter(topdown.first_seen, size=3, mode="nearest")
        return cls(topdown.walls | (inst > 0), object_rgb, object_pale, first_seen_near)


@dataclass
class TopDownMap:
    """An episode on one top-down display grid.

    Attributes:
        grid: the display grid (world x along columns, z along rows).
        navigable: (rows, cols) bool, the navigable island (the episode's record, else asked
            of a simulator; all False where neither could be had).
        walls: (rows, cols) bool, the scene's walls.
        instance: (rows, cols) int32, the scene's topmost object per cell (0: none).
        categories: instance id -> category.
        state: (rows, cols) uint8, the final occupancy map (UNKNOWN where no memory).
        first_seen: (rows, cols) int32, the step each known cell was first seen
            (:data:`NEVER`: not seen).
        last_step: the episode's last step.
        regions: named rooms of generated scenes.
        occupancy: the memory's occupancy map (for its parameters), or None.
        notes: what could not be drawn, and why.
        plan: the scene's walls and objects it was drawn from, or None.
        level_heights: heights (m) of the floor levels of the navigable area, lowest first
            (one entry, or none without a navigable area, for one level).
        level_of: (rows, cols) int16, the index in ``level_heights`` of each cell's level
            (the nearest navigable cell's), where there is more than one level; else None.
    """

    grid: GridSpec
    navigable: np.ndarray
    walls: np.ndarray
    instance: np.ndarray
    categories: dict[int, str]
    state: np.ndarray
    first_seen: np.ndarray
    last_step: int
    regions: list[Region] = field(default_factory=list)
    occupancy: OccupancyMap | None = None
    notes: list[str] = field(default_factory=list)
    plan: FloorPlan | None = None
    level_heights: list[float] = field(default_factory=list)
    level_of: np.ndarray | None = None
    _cache: _Layers | None = field(default=None, init=False, repr=False)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)`` world x / z for ``imshow`` with ``origin="upper"``."""
        g = self.grid
        return (
            g.origin_x,
            g.origin_x + g.cols * g.cell_m,
            g.origin_z + g.rows * g.cell_m,
            g.origin_z,
        )

    def state_at(self, step: int) -> np.ndarray:
        """(rows, cols) uint8 occupancy state as seen up to ``step``."""
        seen = self.first_seen <= step
        return np.where(seen, self.state, UNKNOWN).astype(np.uint8)

    def rgb(self, step: int | None = None) -> np.ndarray:
        """(rows, cols, 3) uint8 picture of the layers as of ``step`` (default: the last step):
        floor seen in blue, the scene's walls and objects dark and vivid where seen, pale where
        not, obstacles seen where the scene has none in navy."""
        step = self.last_step if step is None else step
        layers = self._layers()
        # A wall or object cell counts as seen where the agent saw it or a neighbour (the map's
        # obstacle cells and the scene's geometry can differ by a cell).
        seen = self.first_seen <= step
        seen_near = layers.first_seen_near <= step
        img = np.empty((*self.navigable.shape, 3), dtype=np.uint8)
        img[:] = colors.BACKGROUND
        img[self.navigable] = colors.NAVIGABLE
        solid = layers.solid
        img[seen & (self.state == FREE) & ~solid] = colors.SEEN_FREE
        objects = self.instance > 0
        img[objects] = np.where(
            seen_near[objects][:, None], layers.object_rgb[objects], layers.object_pale[objects]
        )
        img[self.walls] = np.where(
            seen_near[self.walls][:, None],
            np.asarray(colors.WALL, np.uint8),
            np.asarray(colors.WALL_UNSEEN, np.uint8),
        )
        img[seen & (self.state == OCCUPIED) & ~solid] = colors.SEEN_OBSTACLE
        return img

    def _layers(self) -> _Layers:
        if self._cache is None:
            self._cache = _Layers.of(self)
        return self._cache

    def to_pixels(self, xz: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(N, 2) float pixel coordinates (column, row) of world points (N, 2) x, z in a picture
        of the map scaled by ``scale`` pixels per cell."""
        g = self.grid
        p = np.asarray(xz, dtype=np.float64).reshape(-1, 2)
        return np.stack(
            [(p[:, 0] - g.origin_x) / g.cell_m * scale, (p[:, 1] - g.origin_z) / g.cell_m * scale],
            axis=1,
        )

    def frontiers(self, step: int, position: np.ndarray, min_size_m: float = 0.3) -> list[Frontier]:
        """The frontiers of the map as seen up to ``step``, from the agent at ``position``."""
        occupancy = _occupancy_on(self.grid, self.state_at(step), self.occupancy)
        return occupancy.frontiers(np.asarray(position, dtype=np.float64), min_size_m)


def _occupancy_on(grid: GridSpec, state: np.ndarray, template: OccupancyMap | None) -> OccupancyMap:
    """An :class:`OccupancyMap` holding ``state`` on ``grid``, with ``template``'s parameters."""
    base = template or OccupancyMap(cell_m=grid.cell_m)
    params = base.to_state()["params"]
    return OccupancyMap.from_state(
        {
            "state": state,
            "hits": np.zeros(state.shape, dtype=np.int32),
            "grid": np.array([grid.origin_x, grid.origin_z, grid.cell_m, grid.rows, grid.cols]),
            "params": params,
        }
    )


def resample(
    src: GridSpec, values: np.ndarray, dst: GridSpec, fill: Any, dtype: Any = None
) -> np.ndarray:
    """``values`` (src.rows, src.cols) looked up at the centres of ``dst``'s cells; ``fill``
    outside ``src``."""
    xs = dst.origin_x + (np.arange(dst.cols) + 0.5) * dst.cell_m
    zs = dst.origin_z + (np.arange(dst.rows) + 0.5) * dst.cell_m
    cols = np.floor((xs - src.origin_x) / src.cell_m).astype(np.int64)
    rows = np.floor((zs - src.origin_z) / src.cell_m).astype(np.int64)
    ok_c = (cols >= 0) & (cols < src.cols)
    ok_r = (rows >= 0) & (rows < src.rows)
    out = np.full((dst.rows, dst.cols), fill, dtype=dtype or values.dtype)
    out[np.ix_(ok_r, ok_c)] = values[np.ix_(rows[ok_r], cols[ok_c])]
    return out


def build_topdown(episode: EpisodeData, plans: FloorPlanCache | None = None) -> TopDownMap:
    """The top-down map of an episode from whatever its folder holds (and its scene, where its
    files are still there).

    Raises:
        AeqaError: nothing to draw (no trajectory, no memory, no navigable area and no scene).
    """
    notes: list[str] = []
    plans = plans or FloorPlanCache()
    plan, navigable_grid = _scene_layers_of(episode, plans, notes)
    occupancy = episode.occupancy
    poses = episode.poses
    boxes: list[tuple[float, float, float, float]] = []
    if navigable_grid is not None and navigable_grid.mask.any():
        boxes.append(_cells_box(navigable_grid.grid, navigable_grid.mask, pad_m=0.6))
    if occupancy is not None and np.any(occupancy.state != UNKNOWN):
        boxes.append(_cells_box(occupancy.grid, occupancy.state != UNKNOWN, pad_m=0.3))
    if poses is not None:
        xz = poses.positions[:, [0, 2]]
        boxes.append(
            (xz[:, 0].min() - 1, xz[:, 1].min() - 1, xz[:, 0].max() + 1, xz[:, 1].max() + 1)
        )
    for obj in episode.evidence:
        boxes.append((obj.bbox_min[0], obj.bbox_min[2], obj.bbox_max[0], obj.bbox_max[2]))
    if not boxes:
        raise AeqaError(
            f"{episode.folder}: nothing to draw ({', '.join(episode.problems) or 'empty'}); "
            "an episode needs a trajectory, a memory or a scene that exists"
        )
    x0 = min(b[0] for b in boxes)
    z0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    z1 = max(b[3] for b in boxes)
    cell = max(DISPLAY_CELL_M, max(x1 - x0, z1 - z0) / MAX_DISPLAY_CELLS)
    grid = GridSpec(
        x0, z0, cell, int(math.ceil((z1 - z0) / cell)), int(math.ceil((x1 - x0) / cell))
    )
    shape = (grid.rows, grid.cols)
    last_step = int(poses.steps[-1]) if poses is not None else 0
    if navigable_grid is not None:
        navigable = resample(navigable_grid.grid, navigable_grid.mask, grid, False)
    else:
        navigable = np.zeros(shape, dtype=bool)
    level_heights, level_of = _levels_of(navigable_grid, grid)
    if plan is not None:
        walls = resample(plan.grid, plan.walls, grid, False)
        instance = resample(plan.grid, plan.instance, grid, 0)
        categories, regions = dict(plan.categories), list(plan.regions)
        if level_of is not None:
            # Each level's walls and objects from the scene at that level's height.
            for index, height in enumerate(level_heights):
                other = _plan_at(episode, plans, height)
                if other is None:
                    continue
                here = level_of == index
                walls[here] = resample(other.grid, other.walls, grid, False)[here]
                instance[here] = resample(other.grid, other.instance, grid, 0)[here]
                categories.update(other.categories)
    else:
        walls = np.zeros(shape, dtype=bool)
        instance, categories, regions = np.zeros(shape, dtype=np.int32), {}, []
    if occupancy is not None:
        state = resample(occupancy.grid, occupancy.state, grid, UNKNOWN)
        recorded = episode.first_seen
        if recorded is not None and recorded.shape == occupancy.state.shape:
            first = recorded_first_seen(recorded, occupancy.state, last_step)
        elif poses is not None:
            first = first_seen_steps(occupancy, poses, episode.config.sim.hfov_deg)
        else:
            first = np.where(occupancy.state != UNKNOWN, last_step, NEVER).astype(np.int32)
            notes.append("no trajectory: seen area shown as of the end")
        first_seen = resample(occupancy.grid, first, grid, NEVER)
    else:
        state = np.zeros(shape, dtype=np.uint8)
        first_seen = np.full(shape, NEVER, dtype=np.int32)
        notes.append("no memory: seen area and frontiers not drawn")
    if poses is None:
        notes.append("no trajectory: path not drawn")
    return TopDownMap(
        grid=grid,
        navigable=navigable,
        walls=walls,
        instance=instance,
        categories=categories,
        state=state,
        first_seen=first_seen,
        last_step=last_step,
        regions=regions,
        occupancy=occupancy,
        notes=notes,
        plan=plan,
        level_heights=level_heights,
        level_of=level_of,
    )


def _levels_of(
    navigable: NavigableGrid | None, grid: GridSpec
) -> tuple[list[float], np.ndarray | None]:
    """The navigable area's floor levels and, where there are several, each display cell's
    level: that of the nearest navigable cell."""
    from scipy import ndimage

    if navigable is None:
        return [], None
    heights = navigable.levels()
    if len(heights) < 2:
        return heights, None
    label = np.full((grid.rows, grid.cols), -1, dtype=np.int16)
    for index, mask in enumerate(navigable.level_masks()):
        label[resample(navigable.grid, mask, grid, False)] = index
    if not np.any(label >= 0):
        return heights, None
    _, (ri, ci) = ndimage.distance_transform_edt(label < 0, return_indices=True)
    return heights, label[ri, ci]


def _plan_at(episode: EpisodeData, plans: FloorPlanCache, level_y: float) -> FloorPlan | None:
    """The episode's scene's walls and objects at ``level_y``, None where its files are gone."""
    scene_name = episode.result.scene if episode.result is not None else ""
    scene = resolve_scene(scene_name, episode.folder)
    return None if scene is None else plans.get(scene, episode.config.sim, level_y)


def _level_at(topdown: TopDownMap, x: float, z: float) -> int:
    """The level index of the display cell holding world x, z (0 off the grid or one level)."""
    if topdown.level_of is None:
        return 0
    row, col = topdown.grid.world_to_cell_xz(x, z)
    if not topdown.grid.contains(row, col):
        return 0
    return int(topdown.level_of[row, col])


def level_of_points(topdown: TopDownMap, points: np.ndarray) -> np.ndarray:
    """(N,) int index in ``topdown.level_heights`` of the level nearest each world point's
    height (N, 3); zeros for one level."""
    if len(topdown.level_heights) < 2:
        return np.zeros(len(points), dtype=np.int64)
    heights = np.asarray(topdown.level_heights)
    return np.argmin(np.abs(np.asarray(points)[:, 1:2] - heights[None, :]), axis=1)


def recorded_first_seen(first_seen: np.ndarray, state: np.ndarray, last_step: int) -> np.ndarray:
    """(rows, cols) int32 first-seen steps for the map from those the occupancy map recorded
    (-1: never): :data:`NEVER` where unseen, and the last step for cells known without a step
    (marked by other means than a frame)."""
    first = np.where(first_seen >= 0, first_seen, NEVER).astype(np.int32)
    first[(state != UNKNOWN) & (first == NEVER)] = last_step
    return first


def _scene_layers_of(
    episode: EpisodeData, plans: FloorPlanCache, notes: list[str]
) -> tuple[FloorPlan | None, NavigableGrid | None]:
    """The scene's walls and objects (None where its files are gone) and the navigable area:
    the episode's record, else asked of a simulator (None where neither can be had)."""
    scene_name = episode.result.scene if episode.result is not None else ""
    scene = resolve_scene(scene_name, episode.folder)
    sim = episode.config.sim
    poses = episode.poses
    navigable = episode.navigable
    plan = None
    if scene is not None:
        level = poses.positions[0, 1] if poses is not None else episode.floor_y
        plan = plans.get(scene, sim, float(level))
        if navigable is None and poses is not None:
            start = AgentState(poses.positions[0], poses.rotations[0])
            navigable = plans.navigable(scene, sim, start)
    missing = [] if plan is not None else ["walls", "objects"]
    if navigable is None:
        missing.append("navigable area")
    if missing:
        if scene is None:
            why = f"scene {scene_name} not found" if scene_name else "no scene recorded"
        else:
            why = f"scene {scene_name} unusable"
        what = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        notes.append(f"{why}: {what} not drawn")
    return plan, navigable


def _cells_box(grid: GridSpec, mask: np.ndarray, pad_m: float) -> tuple[float, float, float, float]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (
        grid.origin_x + cols[0] * grid.cell_m - pad_m,
        grid.origin_z + rows[0] * grid.cell_m - pad_m,
        grid.origin_x + (cols[-1] + 1) * grid.cell_m + pad_m,
        grid.origin_z + (rows[-1] + 1) * grid.cell_m + pad_m,
    )


# --- the picture -----------------------------------------------------------------------------


def nice_length(span_m: float) -> float:
    """A round scale-bar length (0.5, 1, 2, 5, 10 ... m) near a fifth of ``span_m``."""
    target = max(span_m / 5.0, 0.1)
    candidates = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    return min(candidates, key=lambda c: abs(math.log(c / target)))


def title_lines(
    episode: EpisodeData, score: float | None = None, width: int = 90
) -> tuple[str, str]:
    """The title (question, answer, the reference where one is known) and the subtitle
    (steps, path, coverage, stop)."""
    result = episode.result
    question = result.question if result is not None else "(question unknown)"
    answer = result.answer if result is not None else "(answer unknown)"
    if result is not None and result.error:
        answer = f"(failed: {result.error})"
    lines = textwrap.wrap(f"Q: {question}", width) or ["Q:"]
    parts = [f"A: {answer}"]
    if result is not None and not result.error:
        parts[0] += f" (confidence {result.confidence:.2f})"
    if episode.reference:
        parts.append(f"reference: {episode.reference}")
    if score is not None:
        parts.append(f"judge score: {score:g}/5")
    lines += textwrap.wrap("   ".join(parts), width)
    stats = [episode.name]
    if result is not None:
        stats += [
            f"{result.steps} steps",
            f"path {result.path_length_m:.1f} m",
            f"coverage {100 * result.coverage:.0f}%",
            f"stop: {result.stop_reason}",
        ]
    return "\n".join(lines), "   ".join(stats)


def render_topdown(
    episode: EpisodeData,
    topdown: TopDownMap,
    out_path: str | Path,
    frontier_steps: list[int] | None = None,
    score: float | None = None,
    dpi: int = 130,
) -> Path:
    """Draw the episode's top-down map as a PNG (:func:`topdown_figure`)."""
    fig = topdown_figure(episode, topdown, frontier_steps, score, dpi)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, facecolor="white")
    return out_path


def topdown_figure(
    episode: EpisodeData,
    topdown: TopDownMap,
    frontier_steps: list[int] | None = None,
    score: float | None = None,
    dpi: int = 130,
) -> Figure:
    """The episode's top-down map as a matplotlib figure (Agg canvas).

    Args:
        episode: the episode (trajectory, answer, evidence).
        topdown: its map (:func:`build_topdown`).
        frontier_steps: steps whose frontiers to draw (default: a third, two thirds and the
            end of the episode).
        score: the judge's score (1..5) to show in the title, if any.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    g = topdown.grid
    width_m, height_m = g.cols * g.cell_m, g.rows * g.cell_m
    # One panel per floor level where the navigable area spans several.
    panels = len(topdown.level_heights) if topdown.level_of is not None else 1
    longest_in = 7.5 if panels == 1 else 5.5
    map_w = longest_in * min(1.0, width_m / height_m)
    map_h = longest_in * min(1.0, height_m / width_m)
    fig_w = max(panels * map_w + 3.4, 7.0)
    fig_h = map_h + 1.6
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, k + 1) for k in range(panels)]
    handles: list[Any] = [
        Patch(facecolor=_rgb01(colors.NAVIGABLE), edgecolor="0.6", label="navigable, unseen"),
        Patch(facecolor=_rgb01(colors.SEEN_FREE), edgecolor="0.6", label="floor seen"),
        Patch(facecolor=_rgb01(colors.WALL), label="walls seen"),
        Patch(facecolor=_rgb01(colors.WALL_UNSEEN), label="walls unseen"),
        Patch(facecolor=_rgb01(colors.category_color("sofa")), label="objects seen"),
        Patch(
            facecolor=_rgb01(
                tuple(colors.blend(np.array(colors.category_color("sofa")), colors.BACKGROUND, 0.7))
            ),
            label="objects unseen",
        ),
        Patch(facecolor=_rgb01(colors.SEEN_OBSTACLE), label="other obstacles seen"),
    ]
    poses = episode.poses
    pose_level = (
        level_of_points(topdown, poses.positions)
        if poses is not None and len(poses) > 0
        else np.zeros(0, dtype=np.int64)
    )
    for k, ax in enumerate(axes):
        first, last = k == 0, k == panels - 1
        image = topdown.rgb()
        if panels > 1:
            assert topdown.level_of is not None
            other = topdown.level_of != k
            image[other] = colors.blend(image[other], colors.BACKGROUND, 0.85)
            ax.set_title(
                f"floor {k + 1} of {panels} (y {topdown.level_heights[k]:.1f} m)",
                fontsize=9,
                loc="right",
            )
        ax.imshow(image, extent=topdown.extent, origin="upper", interpolation="nearest")
        ax.set_xlim(topdown.extent[0], topdown.extent[1])
        ax.set_ylim(topdown.extent[2], topdown.extent[3])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for region in topdown.regions:
            x, z = (region.x_min + region.x_max) / 2, (region.z_min + region.z_max) / 2
            if panels > 1 and _level_at(topdown, x, z) != k:
                continue
            ax.text(
                x,
                z,
                region.name,
                ha="center",
                va="center",
                fontsize=8,
                color="0.35",
                style="italic",
                alpha=0.8,
                zorder=2,
            )
        _label_objects(ax, episode, topdown)
        if poses is not None and len(poses) > 0:
            vmax = max(int(poses.steps[-1]), 1)
            steps = frontier_steps if frontier_steps is not None else default_frontier_steps(vmax)
            drawn = _draw_frontiers(ax, topdown, poses, steps, k if panels > 1 else None)
            if first:
                handles += drawn
            on = pose_level == k
            xz = poses.positions[:, [0, 2]]
            if len(xz) > 1:
                keep = on[:-1] | on[1:]
                segments = np.stack([xz[:-1], xz[1:]], axis=1)[keep]
                lines = LineCollection(
                    list(segments),
                    cmap=colors.TIME_CMAP,
                    linewidths=2.2,
                    zorder=5,
                    capstyle="round",
                )
                lines.set_array(poses.steps[1:][keep].astype(float))
                lines.set_clim(0, vmax)
                ax.add_collection(lines)
                if last:
                    bar = fig.colorbar(
                        lines, ax=axes if panels > 1 else ax, shrink=0.55, pad=0.01, aspect=25
                    )
                    bar.set_label("step")
            collided = poses.collided & on
            if np.any(collided):
                ax.plot(xz[collided, 0], xz[collided, 1], "x", color="0.15", ms=4, mew=1, zorder=6)
            if first and np.any(poses.collided):
                handles.append(Line2D([], [], marker="x", ls="", color="0.15", label="collision"))
            if on[0]:
                _pose_marker(ax, poses, 0, colors.START, "o")
            if on[-1]:
                _pose_marker(ax, poses, len(poses) - 1, colors.STOP, "s")
            if first:
                handles.append(_marker_handle(colors.START, "o", "start"))
                stop = episode.result.stop_reason if episode.result is not None else ""
                label = f"stop ({stop})" if stop else "stop"
                handles.append(_marker_handle(colors.STOP, "s", label))
        for obj in episode.evidence:
            lo, hi = obj.bbox_min, obj.bbox_max
            if panels > 1 and level_of_points(topdown, np.array([lo]))[0] != k:
                continue
            ax.add_patch(
                Rectangle(
                    (lo[0], lo[2]),
                    hi[0] - lo[0],
                    hi[2] - lo[2],
                    fill=False,
                    edgecolor=_rgb01(colors.EVIDENCE),
                    linewidth=2.5,
                    zorder=7,
                )
            )
            ax.annotate(
                f"answer evidence:\n{obj.category} #{obj.object_id}",
                xy=(hi[0], lo[2]),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=8,
                fontweight="bold",
                color=_rgb01(colors.EVIDENCE),
                zorder=8,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
            )
        _scale_bar(ax, width_m)
    ax = axes[0]
    if episode.evidence:
        handles.append(
            Patch(fill=False, edgecolor=_rgb01(colors.EVIDENCE), lw=2.5, label="answer evidence")
        )
    missing = sorted(set(episode.evidence_ids) - {o.object_id for o in episode.evidence})
    notes = list(topdown.notes)
    if missing:
        notes.append(f"evidence object {', '.join(map(str, missing))} not in the memory")
    title, subtitle = title_lines(episode, score, width=int(fig_w * 11))
    fig.suptitle(title, fontsize=10, ha="left", x=0.01)
    ax.set_title(subtitle, fontsize=8, color="0.3", loc="left")
    if notes:
        ax.text(
            0.01,
            0.01,
            "\n".join(notes),
            transform=ax.transAxes,
            fontsize=7,
            color="#a00000",
            va="bottom",
            zorder=9,
            bbox={"fc": "white", "ec": "none", "alpha": 0.75},
        )
    fig.legend(
        handles=handles,
        loc="outside right upper",
        fontsize=7.5,
        frameon=False,
        ncols=legend_columns(len(handles), fig_h),
    )
    return fig


def _rgb01(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0)


def _marker_handle(color: tuple[int, int, int], marker: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D(
        [], [], marker=marker, ls="", ms=8, mfc=_rgb01(color), mec="white", mew=1.2, label=label
    )


def _pose_marker(
    ax: Axes, poses: Poses, index: int, color: tuple[int, int, int], marker: str
) -> None:
    x, z = poses.positions[index, 0], poses.positions[index, 2]
    yaw = float(poses.yaws_rad[index])
    ax.plot(x, z, marker, ms=10, mfc=_rgb01(color), mec="white", mew=1.5, zorder=9)
    ax.annotate(
        "",
        xy=(x - 0.45 * math.sin(yaw), z - 0.45 * math.cos(yaw)),
        xytext=(x, z),
        arrowprops={"arrowstyle": "-|>", "color": _rgb01(color), "lw": 1.6},
        zorder=9,
    )


#: frontier markers at the steps drawn, in order (one colour, :data:`colors.FRONTIER`)
FRONTIER_MARKERS = ("o", "^", "D")


def _draw_frontiers(
    ax: Axes, topdown: TopDownMap, poses: Poses, steps: list[int], level: int | None = None
) -> list[Any]:
    """Frontier cells and centres at ``steps``, all in :data:`colors.FRONTIER` (a colour the
    trajectory's colour map does not hold, so they never read as path), told apart by marker
    and by fading the earlier ones; with ``level``, only those on that floor level's cells."""
    from matplotlib.lines import Line2D

    handles: list[Any] = []
    if topdown.occupancy is None:
        return handles
    g = topdown.grid
    color = _rgb01(colors.FRONTIER)
    for i, step in enumerate(steps):
        index = int(np.searchsorted(poses.steps, step, side="right")) - 1
        index = min(max(index, 0), len(poses) - 1)
        frontiers = topdown.frontiers(int(poses.steps[index]), poses.positions[index])
        if level is not None and topdown.level_of is not None:
            level_of = topdown.level_of
            frontiers = [f for f in frontiers if level_of[f.cells[0, 0], f.cells[0, 1]] == level]
        if not frontiers:
            continue
        alpha = 0.35 + 0.65 * (i + 1) / len(steps)
        marker = FRONTIER_MARKERS[i % len(FRONTIER_MARKERS)]
        cells = np.concatenate([f.cells for f in frontiers])
        x = g.origin_x + (cells[:, 1] + 0.5) * g.cell_m
        z = g.origin_z + (cells[:, 0] + 0.5) * g.cell_m
        ax.scatter(x, z, s=4, color=color, alpha=alpha, marker="s", linewidths=0, zorder=4)
        centres = np.array([f.centroid for f in frontiers])
        ax.scatter(
            centres[:, 0],
            centres[:, 2],
            s=40,
            marker=marker,
            color=color,
            alpha=alpha,
            edgecolors="0.15",
            linewidths=0.8,
            zorder=6,
        )
        handles.append(
            Line2D(
                [],
                [],
                marker=marker,
                ls="",
                ms=6,
                mfc=color,
                mec="0.15",
                mew=0.8,
                alpha=alpha,
                label=f"frontiers at step {step} ({len(frontiers)})",
            )
        )
    return handles


def _label_objects(ax: Axes, episode: EpisodeData, topdown: TopDownMap) -> None:
    """Names of the objects the memory holds, at their centroids (largest first, no overlaps)."""
    evidence = set(episode.evidence_ids)
    taken: list[tuple[float, float]] = []
    spacing = max(topdown.grid.cols, topdown.grid.rows) * topdown.grid.cell_m / 30.0
    for obj in sorted(episode.objects, key=lambda o: -o.point_count):
        if obj.structural or obj.object_id in evidence or obj.point_count < 20:
            continue
        x, z = float(obj.centroid[0]), float(obj.centroid[2])
        if any(math.hypot(x - a, z - b) < spacing for a, b in taken):
            continue
        taken.append((x, z))
        ax.text(x, z, obj.category, fontsize=6, ha="center", va="center", color="0.1", zorder=3)


def _scale_bar(ax: Axes, width_m: float) -> None:
    """A scale bar in the margin under the map's lower right corner, never over the map."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(width_m)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        f"{length:g} m",
        "upper right",
        bbox_to_anchor=(1.0, 0.0),
        bbox_transform=ax.transAxes,
        borderpad=0.2,
        pad=0.1,
        color="black",
        frameon=False,
        size_vertical=max(width_m / 150.0, 0.02),
        fontproperties={"size": 8},
    )
    ax.add_artist(bar)


def legend_columns(entries: int, height_in: float, fontsize_pt: float = 7.5) -> int:
    """Columns a figure legend of ``entries`` needs to fit ``height_in`` inches top to bottom."""
    row_in = fontsize_pt * 1.55 / 72.0  # a row: the text and matplotlib's label spacing
    rows = max(1, int((height_in - 0.25) / row_in))
    return max(1, math.ceil(entries / rows))


# --- raster pictures (video frames, thumbnails) ------------------------------------------------


def map_picture(
    episode: EpisodeData,
    topdown: TopDownMap,
    index: int | None,
    scale: float,
    final: bool = True,
    frontiers: bool = False,
) -> Any:
    """A Pillow image of the map as of pose ``index`` (None: the end, without a trajectory):
    ``scale`` pixels per cell, the path so far coloured by time, the start, the agent with its
    heading, the frontiers of that step (orange) where ``frontiers``, and the evidence objects'
    boxes where ``final``."""
    from PIL import Image, ImageDraw

    from aeqa.mapping.occupancy import frontier_mask

    poses = episode.poses
    step = int(poses.steps[index]) if (poses is not None and index is not None) else None
    at = topdown.last_step if step is None else step
    rgb = topdown.rgb(at)
    if frontiers and topdown.occupancy is not None:
        rgb[frontier_mask(topdown.state_at(at))] = colors.FRONTIER
    size = (
        max(1, int(round(topdown.grid.cols * scale))),
        max(1, int(round(topdown.grid.rows * scale))),
    )
    image = Image.fromarray(rgb).resize(size, Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    if final:
        for obj in episode.evidence:
            corners = np.array(
                [[obj.bbox_min[0], obj.bbox_min[2]], [obj.bbox_max[0], obj.bbox_max[2]]]
            )
            (u0, v0), (u1, v1) = topdown.to_pixels(corners, scale)
            draw.rectangle((u0, v0, u1, v1), outline=colors.EVIDENCE, width=3)
    if poses is not None and index is not None:
        vmax = max(int(poses.steps[-1]), 1)
        time_rgb = colors.time_colors(poses.steps[: index + 1], vmax)
        uv = topdown.to_pixels(poses.positions[: index + 1][:, [0, 2]], scale)
        width = max(2, int(round(scale * 0.8)))
        for i in range(1, len(uv)):
            draw.line([tuple(uv[i - 1]), tuple(uv[i])], fill=tuple(time_rgb[i]), width=width)
        radius = max(3.0, min(6.0, 0.12 / topdown.grid.cell_m * scale))
        _dot(draw, uv[0], radius, colors.START)
        yaw = float(poses.yaws_rad[index])
        tip = uv[-1] + np.array([-math.sin(yaw), -math.cos(yaw)]) * radius * 2.4
        draw.line([tuple(uv[-1]), tuple(tip)], fill=colors.STOP, width=max(2, int(radius / 2)))
        _dot(draw, uv[-1], radius, colors.STOP if final else (255, 255, 255), outline=colors.STOP)
    return image


def _dot(
    draw: Any,
    centre: np.ndarray,
    radius: float,
    fill: tuple[int, int, int],
    outline: tuple[int, int, int] = (255, 255, 255),
) -> None:
    u, v = float(centre[0]), float(centre[1])
    draw.ellipse(
        (u - radius, v - radius, u + radius, v + radius), fill=fill, outline=outline, width=2
    )

"""``meshsim``: the embedded simulator. Renders a triangle mesh, moves a cylindrical agent on
its navigable floor with habitat's action space, and answers navigation queries."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import (
    T_world_camera_from_agent,
    forward_from_yaw,
    quat_from_yaw,
    quat_normalize,
    yaw_from_quat,
)
from aeqa.envs.meshsim.renderer import CameraSpec, Renderer, make_renderer, resolve_renderer
from aeqa.envs.navigation import NavGrid, NavSpec
from aeqa.envs.scene import SceneMesh, SceneSpec, load_scene, scene_spec_for
from aeqa.envs.semantic import instance_labels
from aeqa.envs.simulator import check_cell_m
from aeqa.envs.types import (
    LOOK_DOWN,
    LOOK_UP,
    MOVE_FORWARD,
    STOP,
    TURN_LEFT,
    TURN_RIGHT,
    AgentState,
    InstanceLabel,
    NavigableGrid,
    Observations,
)

logger = logging.getLogger(__name__)

_MAX_TILT_DEG = 90.0


#: how far above a navmesh height a floor surface may lie and still be the one under it
_FLOOR_ABOVE_NAV_M = 0.05


@dataclass
class _LoadedScene:
    spec: SceneSpec
    mesh: SceneMesh
    renderer: Renderer
    nav: NavGrid | None = None
    floors: _WalkableFaces | None = None


class _WalkableFaces:
    """The mesh's triangles an agent could stand on (sloped at most ``max_slope_deg``), for
    finding the surface under a point."""

    def __init__(self, mesh: SceneMesh, max_slope_deg: float) -> None:
        tri = mesh.vertices[mesh.faces].astype(np.float64)
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        length = np.linalg.norm(normal, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            up = normal[:, 1] / length
        keep = up >= math.cos(math.radians(max_slope_deg))
        self.tri = tri[keep]
        self.lo = self.tri[:, :, [0, 2]].min(axis=1)
        self.hi = self.tri[:, :, [0, 2]].max(axis=1)

    def height_below(self, x: float, z: float, top_y: float) -> float | None:
        """Height of the highest surface at (x, z) at or below ``top_y``, None where none is."""
        near = np.flatnonzero(
            (self.lo[:, 0] <= x)
            & (self.hi[:, 0] >= x)
            & (self.lo[:, 1] <= z)
            & (self.hi[:, 1] >= z)
        )
        if len(near) == 0:
            return None
        a, b, c = (self.tri[near, k] for k in range(3))
        # Barycentric coordinates of (x, z) in each triangle's floor-plane projection.
        e1, e2 = b - a, c - a
        det = e1[:, 0] * e2[:, 2] - e1[:, 2] * e2[:, 0]
        px, pz = x - a[:, 0], z - a[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (px * e2[:, 2] - pz * e2[:, 0]) / det
            t = (e1[:, 0] * pz - e1[:, 2] * px) / det
        eps = 1e-9
        inside = (np.abs(det) > 1e-12) & (s >= -eps) & (t >= -eps) & (s + t <= 1 + eps)
        y = a[:, 1] + s * e1[:, 1] + t * e2[:, 1]
        below = inside & (y <= top_y)
        return float(y[below].max()) if np.any(below) else None


def nav_spec_for(config: SimConfig) -> NavSpec:
    """The navigable-area settings (agent size, climb, cell) of a simulator config."""
    return NavSpec(
        agent_radius_m=config.agent.radius_m,
        agent_height_m=config.agent.height_m,
        max_climb_m=config.agent.max_climb_m,
        cell_m=config.nav_cell_m,
    )


def estimate_floor_level(mesh: SceneMesh) -> float:
    """Height (m) of the lowest large upward-facing surface: the main floor.

    Upward-facing triangle area is binned by height in 5 cm bins; the lowest bin holding at
    least 30% of the largest bin's area wins (a roof or ceiling top can be as large).
    """
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(normal, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = normal[:, 1] / np.maximum(area2, 1e-12)
    keep = up > 0.9
    if not np.any(keep):
        raise AeqaError(
            f"{mesh.source}: no upward-facing floor surface; check the scene's up axis (--up)"
        )
    heights = tri[keep, :, 1].mean(axis=1)
    bins = np.floor(heights / 0.05).astype(np.int64)
    _, inverse = np.unique(bins, return_inverse=True)
    areas = np.bincount(inverse.reshape(-1), weights=area2[keep] / 2.0)
    best = np.flatnonzero(areas >= 0.3 * areas.max())[0]
    return float(heights[inverse.reshape(-1) == best].max())


class MeshSim:
    """The embedded ``Simulator`` backend (see ``aeqa.envs.simulator.Simulator``)."""

    def __init__(self, config: SimConfig) -> None:
        self.renderer_name = resolve_renderer(config.renderer)
        # The config as run: ``auto`` resolved, so records name the renderer that drew.
        self.config = replace(config, renderer=self.renderer_name)
        self._camera = CameraSpec(config.width, config.height, config.hfov_deg, config.max_depth_m)
        self._nav_spec = nav_spec_for(config)
        self._loaded: _LoadedScene | None = None
        self._position = np.zeros(3)
        self._yaw = 0.0
        self._tilt_deg = config.camera_tilt_deg

    # --- scene and episode -------------------------------------------------------------------

    @property
    def renderer(self) -> str:
        return self.renderer_name

    @property
    def scene(self) -> SceneMesh:
        return self._require().mesh

    def instance_labels(self) -> dict[int, InstanceLabel]:
        mesh = self._require().mesh
        return instance_labels(mesh.instances, mesh.ground_truth)

    @property
    def nav(self) -> NavGrid:
        nav = self._require().nav
        assert nav is not None
        return nav

    def _require(self) -> _LoadedScene:
        if self._loaded is None:
            raise AeqaError("the simulator has no scene yet; call reset(scene) first")
        return self._loaded

    def reset(
        self, scene: SceneSpec | str | Path, start: AgentState | None = None, seed: int = 0
    ) -> Observations:
        spec = scene_spec_for(scene, self.config)
        if self._loaded is None or self._loaded.spec != spec:
            self.close()
            mesh = load_scene(spec)
            self._loaded = _LoadedScene(
                spec, mesh, make_renderer(self.renderer_name, mesh, self._camera)
            )
        loaded = self._loaded
        if start is None:
            start = _scene_start(loaded.mesh)
        nav = self._nav_for(loaded, start)
        if start is None:
            rng = np.random.default_rng(seed)
            start = AgentState(
                nav.sample(rng), quat_from_yaw(float(rng.uniform(-math.pi, math.pi)))
            )
        self._position = nav.snap(np.asarray(start.position, dtype=np.float64))
        self._yaw = yaw_from_quat(quat_normalize(start.rotation))
        self._tilt_deg = self.config.camera_tilt_deg
        return self.observe()

    def _nav_for(self, loaded: _LoadedScene, start: AgentState | None) -> NavGrid:
        """The navigable area of the start's level and island, rebuilt only when they change."""
        level = float(start.position[1]) if start is not None else estimate_floor_level(loaded.mesh)
        nav = loaded.nav
        # A navmesh over several levels serves a start on any of them.
        stale = (
            nav is None
            or (abs(nav.level_y - level) > 0.1 and not nav.multi_level)
            or (start is not None and not nav.on_island(start.position))
        )
        if stale:
            start_xz = (
                None if start is None else (float(start.position[0]), float(start.position[2]))
            )
            nav = NavGrid(
                loaded.mesh.vertices,
                loaded.mesh.faces,
                level,
                self._nav_spec,
                start_xz,
                str(loaded.spec.path),
            )
            loaded.nav = nav
        assert nav is not None
        return nav

    # --- agent -------------------------------------------------------------------------------

    def get_state(self) -> AgentState:
        return AgentState(self._position.copy(), quat_from_yaw(self._yaw))

    def set_state(self, state: AgentState) -> None:
        self._position = np.asarray(state.position, dtype=np.float64).copy()
        self._yaw = yaw_from_quat(quat_normalize(state.rotation))

    @property
    def camera_tilt_deg(self) -> float:
        return self._tilt_deg

    def T_world_camera(self) -> np.ndarray:
        return T_world_camera_from_agent(
            self._position, quat_from_yaw(self._yaw), self.config.camera_height_m, self._tilt_deg
        )

    def observe(self, collided: bool = False) -> Observations:
        loaded = self._require()
        T = self.T_world_camera()
        frame = loaded.renderer.render(T)
        return Observations(
            rgb=frame.rgb,
            depth=frame.depth,
            semantic=frame.semantic,
            T_world_camera=T,
            state=self.get_state(),
            collided=collided,
            hfov_deg=self.config.hfov_deg,
        )

    def step(self, action: str) -> Observations:
        self._require()
        collided = False
        if action == MOVE_FORWARD:
            collided = self._move(forward_from_yaw(self._yaw) * self.config.agent.forward_step_m)
        elif action == TURN_LEFT:
            self._yaw = _wrap(self._yaw + math.radians(self.config.agent.turn_angle_deg))
        elif action == TURN_RIGHT:
            self._yaw = _wrap(self._yaw - math.radians(self.config.agent.turn_angle_deg))
        elif action == LOOK_UP:
            self._tilt_deg = min(self._tilt_deg + self.config.agent.tilt_angle_deg, _MAX_TILT_DEG)
        elif action == LOOK_DOWN:
            self._tilt_deg = max(self._tilt_deg - self.config.agent.tilt_angle_deg, -_MAX_TILT_DEG)
        elif action != STOP:
            raise AeqaError(
                f"unknown action {action!r}; use move_forward, turn_left, turn_right, "
                "look_up, look_down or stop"
            )
        return self.observe(collided)

    def teleport(self, position: np.ndarray, rotation: np.ndarray) -> Observations:
        nav = self.nav
        self._position = nav.snap(np.asarray(position, dtype=np.float64))
        self._yaw = yaw_from_quat(quat_normalize(rotation))
        return self.observe()

    def _move(self, delta: np.ndarray) -> bool:
        """Move by ``delta`` (3,), sliding along the navigable border as habitat does.

        Returns whether the motion was blocked or deflected.
        """
        nav = self.nav
        position = self._position.copy()
        substeps = max(1, int(math.ceil(np.linalg.norm(delta) / (nav.cell_m * 0.5))))
        step = delta / substeps
        collided = False
        for _ in range(substeps):
            candidate = position + step
            if nav.clearance_m(candidate) >= 0.0:
                position = candidate
                continue
            collided = True
            normal = _inward_normal(nav, candidate)
            slide = step - min(0.0, float(step @ normal)) * normal
            candidate = position + slide
            if np.linalg.norm(slide) < 1e-6 or nav.clearance_m(candidate) < 0.0:
                break
            position = candidate
        self._position = nav.snap(position)
        return collided

    # --- navigation queries ------------------------------------------------------------------

    def is_navigable(self, point: np.ndarray) -> bool:
        return self.nav.is_navigable(np.asarray(point, dtype=np.float64))

    def snap_point(self, point: np.ndarray) -> np.ndarray:
        return self.nav.snap(np.asarray(point, dtype=np.float64))

    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.nav.geodesic_distance(np.asarray(a, float), np.asarray(b, float))

    def shortest_path(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        return self.nav.shortest_path(np.asarray(a, float), np.asarray(b, float))

    def sample_navigable_point(self, rng: np.random.Generator) -> np.ndarray:
        return self.nav.sample(rng)

    def floor_height(self, point: np.ndarray) -> float:
        loaded = self._require()
        spec = self._nav_spec
        if loaded.floors is None:
            loaded.floors = _WalkableFaces(loaded.mesh, spec.max_slope_deg)
        p = np.asarray(point, dtype=np.float64)
        y = loaded.floors.height_below(float(p[0]), float(p[2]), float(p[1]) + _FLOOR_ABOVE_NAV_M)
        # The navmesh rounds the surface up by less than a voxel; a surface further down is
        # another level seen through a hole in this one's mesh.
        if y is None or y < p[1] - spec.cell_height_m - spec.max_climb_m:
            return float(p[1])
        return y

    def navigable_area(self) -> float:
        return self.nav.island_area_m2

    def navigable_grid(self, cell_m: float) -> NavigableGrid:
        cell_m = check_cell_m(cell_m)
        nav = self.nav
        floor_y = self.floor_height(self._position)
        heights = np.where(nav.island, nav.floor_y, np.nan) if nav.multi_level else None
        if math.isclose(cell_m, nav.cell_m, rel_tol=1e-9):
            return NavigableGrid(
                nav.origin_x, nav.origin_z, nav.cell_m, nav.island.copy(), floor_y, heights
            )
        # Other sizes look up the navmesh's own cells at their centres, over the same extent.
        rows = max(1, math.ceil(nav.rows * nav.cell_m / cell_m))
        cols = max(1, math.ceil(nav.cols * nav.cell_m / cell_m))
        xs = (np.arange(cols) + 0.5) * cell_m / nav.cell_m
        zs = (np.arange(rows) + 0.5) * cell_m / nav.cell_m
        c = np.floor(xs).astype(np.int64)
        r = np.floor(zs).astype(np.int64)
        ok_c, ok_r = c < nav.cols, r < nav.rows
        mask = np.zeros((rows, cols), dtype=bool)
        mask[np.ix_(ok_r, ok_c)] = nav.island[np.ix_(r[ok_r], c[ok_c])]
        if heights is not None:
            resampled = np.full((rows, cols), np.nan, dtype=np.float32)
            resampled[np.ix_(ok_r, ok_c)] = heights[np.ix_(r[ok_r], c[ok_c])]
            heights = np.where(mask, resampled, np.nan)
        return NavigableGrid(nav.origin_x, nav.origin_z, cell_m, mask, floor_y, heights)

    def close(self) -> None:
        if self._loaded is not None:
            self._loaded.renderer.close()
            self._loaded = None


def _wrap(angle_rad: float) -> float:
    return math.atan2(math.sin(angle_rad), math.cos(angle_rad))


def _inward_normal(nav: NavGrid, point: np.ndarray) -> np.ndarray:
    """Unit vector (3,) on the floor plane pointing into the navigable area at ``point``."""
    h = nav.cell_m * 0.5
    dx = nav.clearance_m(point + [h, 0, 0]) - nav.clearance_m(point - [h, 0, 0])
    dz = nav.clearance_m(point + [0, 0, h]) - nav.clearance_m(point - [0, 0, h])
    g = np.array([dx, 0.0, dz])
    norm = float(np.linalg.norm(g))
    return g / norm if norm > 1e-9 else g


def _scene_start(mesh: SceneMesh) -> AgentState | None:
    """The start pose a generated scene's ground truth carries, if any."""
    start = (mesh.ground_truth or {}).get("start")
    if not isinstance(start, dict) or "position" not in start or "rotation" not in start:
        return None
    return AgentState(np.asarray(start["position"], float), np.asarray(start["rotation"], float))

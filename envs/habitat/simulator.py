"""``habitat``: the ``Simulator`` protocol on habitat-sim 0.3.x, rendering and navmesh its own.

habitat-sim keeps one OpenGL context per process and never makes it current again once
created: a second habitat-sim simulator renders in the first one's context (and aborts the
process once the first is closed), and any other OpenGL user of the thread (meshsim's
``raster`` renderer) would take the context away from it. So the process has one habitat-sim
simulator, and every call into it runs on one thread of its own. Every :class:`HabitatSim` uses
that simulator: the first to reset creates it (an OpenGL context and image-based-lighting maps,
seconds on a CPU), the last to close closes it, and each reconfigures it
(``Simulator.reconfigure``) to its own scene and sensors when it takes its turn, which does
nothing while one is used alone, and gets its agent's pose back. A batch worker thus keeps its
simulator across questions and reconfigures it between scenes. habitat-sim is imported only
here and only when a :class:`HabitatSim` is made.

Navigation follows meshsim's contract: the agent lives on one island of habitat-sim's navmesh
(the start's, or the main floor's), whose area is :meth:`HabitatSim.navigable_area`; the navmesh
is recomputed for our agent's radius, height and climb where the scene has none or one made for
another agent (``SimulatorConfiguration.navmesh_settings``). Sampling draws a seed for the
pathfinder's own generator from the caller's, so samples follow the caller's seed.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import logging
import math
import os
import queue
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw, quat_normalize
from aeqa.envs.habitat.convert import (
    DEPTH,
    FLOOR_ABOVE_NAV_M,
    FLOOR_PROBE,
    INSTALL_HINT,
    RGB,
    SEMANTIC,
    START_TOLERANCE_M,
    HabitatScene,
    SceneAnnotations,
    T_world_camera_from_pose,
    action_amounts,
    camera_settings,
    floor_island,
    ground_truth_start,
    habitat_coeffs,
    habitat_scene,
    navmesh_values,
    observation_arrays,
    scene_annotations,
    write_yup_scene,
    wxyz_from_habitat,
)
from aeqa.envs.meshsim.renderer import limit_software_gl_threads
from aeqa.envs.scene import SceneSpec, load_scene, scene_spec_for
from aeqa.envs.semantic import instance_labels
from aeqa.envs.simulator import check_cell_m
from aeqa.envs.types import STOP, AgentState, InstanceLabel, NavigableGrid, Observations

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

_SAMPLE_ATTEMPTS = 20
_AGENT = 0
_PROBE_AGENT = 1


def import_habitat_sim() -> Any:
    """The ``habitat_sim`` module, or an :class:`AeqaError` saying how to install it."""
    # habitat-sim and magnum print every OpenGL extension and asset warning otherwise
    os.environ.setdefault("HABITAT_SIM_LOG", "error")
    os.environ.setdefault("MAGNUM_LOG", "quiet")
    # llvmpipe honours OMP_NUM_THREADS, as it does for meshsim's rasteriser (batch workers)
    limit_software_gl_threads()
    try:
        import habitat_sim
    except ImportError as e:
        raise AeqaError(INSTALL_HINT) from e
    return habitat_sim


_EGL_CUDA_DEVICE_NV = 0x323A
_MAX_EGL_DEVICES = 64


def egl_cuda_devices() -> list[int] | None:
    """The CUDA device ids of this machine's EGL devices, which habitat-sim's
    ``gpu_device_id`` picks from; None where EGL cannot be asked.

    habitat-sim ends the whole process (exit code 1) when the id is not among them, so the
    choice is checked here first.
    """
    try:
        egl = ctypes.CDLL("libEGL.so.1")
        egl.eglGetProcAddress.restype = ctypes.c_void_p
        egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
        query_devices = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
        query_attribute = egl.eglGetProcAddress(b"eglQueryDeviceAttribEXT")
    except (OSError, AttributeError):
        return None
    if not query_devices or not query_attribute:
        return None
    devices_fn = ctypes.CFUNCTYPE(
        ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int)
    )(query_devices)
    attribute_fn = ctypes.CFUNCTYPE(
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_ssize_t)
    )(query_attribute)
    devices = (ctypes.c_void_p * _MAX_EGL_DEVICES)()
    count = ctypes.c_int(0)
    if not devices_fn(_MAX_EGL_DEVICES, devices, ctypes.byref(count)):
        return None
    ids = []
    for device in devices[: count.value]:
        value = ctypes.c_ssize_t(-1)
        if attribute_fn(device, _EGL_CUDA_DEVICE_NV, ctypes.byref(value)) and value.value >= 0:
            ids.append(int(value.value))
    return sorted(ids)


def check_gpu_device(gpu_device_id: int) -> None:
    """Refuse a ``gpu_device_id`` habitat-sim would end the process on."""
    if gpu_device_id < 0:
        return
    available = egl_cuda_devices()
    if available is not None and gpu_device_id not in available:
        listed = ", ".join(map(str, available)) if available else "none"
        raise AeqaError(
            f"sim.gpu_device_id={gpu_device_id}: no such GPU among this machine's EGL devices "
            f"(CUDA ids: {listed}); set sim.gpu_device_id=-1 to render on the CPU (llvmpipe)"
        )


class _ProcessSimulator:
    """The habitat-sim simulator of this process, the thread that runs every call into it, and
    which :class:`HabitatSim` holds it."""

    def __init__(self) -> None:
        self.sim: Any = None
        self.holder: HabitatSim | None = None
        self.configuration: Any = None
        self.users: weakref.WeakSet[HabitatSim] = weakref.WeakSet()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the habitat-sim thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return fn()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="habitat-sim", daemon=True)
                self._thread.start()
                atexit.register(self.shutdown)
        done: Future[T] = Future()
        self._calls.put((fn, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            fn, done = self._calls.get()
            try:
                done.set_result(fn())
            except BaseException as e:  # handed to the caller's thread
                done.set_exception(e)

    def close_simulator(self) -> None:
        if self.sim is not None:
            sim, self.sim = self.sim, None
            self.holder = self.configuration = None
            self.call(sim.close)

    def shutdown(self) -> None:
        """Close the simulator on its thread before the interpreter exits; closed elsewhere,
        it would free OpenGL objects without its context and abort."""
        self.close_simulator()


_PROCESS = _ProcessSimulator()
#: simulators a forked child inherited: never closed there, as that would touch the parent's
#: OpenGL context
_INHERITED: list[Any] = []


def _start_afresh_in_child() -> None:
    """A forked child has neither the habitat-sim thread nor a usable OpenGL context of its
    parent: it gets a new process simulator, and its exit waits on nothing."""
    global _PROCESS
    inherited = _PROCESS
    if inherited.sim is not None:
        _INHERITED.append(inherited.sim)
    inherited.sim = inherited.holder = inherited.configuration = None
    _PROCESS = _ProcessSimulator()


os.register_at_fork(after_in_child=_start_afresh_in_child)


def _on_habitat_thread(
    method: Callable[Concatenate[HabitatSim, P], T],
) -> Callable[Concatenate[HabitatSim, P], T]:
    """Run a :class:`HabitatSim` method on the habitat-sim thread."""

    @functools.wraps(method)
    def run(self: HabitatSim, *args: P.args, **kwargs: P.kwargs) -> T:
        return _PROCESS.call(lambda: method(self, *args, **kwargs))

    return run


class HabitatSim:
    """The habitat-sim ``Simulator`` backend (see ``aeqa.envs.simulator.Simulator``)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._hs = import_habitat_sim()
        check_gpu_device(config.gpu_device_id)
        self._camera = camera_settings(config)
        self._configuration: Any = None
        self._loaded: HabitatScene | None = None
        self._annotations: SceneAnnotations | None = None
        self._saved_state: Any = None
        self._island = -1
        self._island_vertices = np.zeros((0, 3))
        self._stage_dir: Path | None = None
        self._written = 0
        # Recast's voxel height (habitat-sim's default) plus the climb
        self._floor_drop_m = 0.2 + config.agent.max_climb_m
        _PROCESS.users.add(self)

    # --- scene and episode -------------------------------------------------------------------

    @property
    def renderer(self) -> str:
        return "habitat"

    def instance_labels(self) -> dict[int, InstanceLabel]:
        scene = self.scene
        return instance_labels(scene.instances, scene.ground_truth)

    @property
    def scene(self) -> SceneAnnotations:
        """Instance labels and generated ground truth of the loaded scene."""
        if self._annotations is None:
            raise AeqaError("the simulator has no scene yet; call reset(scene) first")
        return self._annotations

    @property
    def habitat_simulator(self) -> Any:
        """The underlying ``habitat_sim.Simulator``, configured for this one; call into it only
        through :meth:`on_habitat_thread`."""
        return _PROCESS.call(self._require)

    @staticmethod
    def on_habitat_thread(fn: Callable[[], T]) -> T:
        """Run ``fn`` on the thread that owns habitat-sim's OpenGL context."""
        return _PROCESS.call(fn)

    def _require(self) -> Any:
        """The process's habitat-sim simulator, holding this one's scene, sensors and agent."""
        if self._configuration is None:
            raise AeqaError("the simulator has no scene yet; call reset(scene) first")
        shared = _PROCESS
        if shared.holder is self and shared.configuration is self._configuration:
            return shared.sim
        if shared.holder is not None and shared.holder is not self:
            shared.holder._saved_state = shared.holder._agent_of(shared.sim).get_state()
        shared.holder = None
        if shared.sim is None:
            shared.sim = self._hs.Simulator(self._configuration)
        else:
            shared.sim.reconfigure(self._configuration)
        shared.holder, shared.configuration = self, self._configuration
        if self._saved_state is not None:
            # the sensors' own poses too: they keep the camera's tilt
            self._agent_of(shared.sim).set_state(
                self._saved_state, reset_sensors=False, infer_sensor_states=False
            )
            self._saved_state = None
        return shared.sim

    @_on_habitat_thread
    def reset(
        self, scene: SceneSpec | str | Path, start: AgentState | None = None, seed: int = 0
    ) -> Observations:
        target = habitat_scene(scene_spec_for(scene, self.config), self.config.scene_dataset_config)
        if target != self._loaded:
            self._load(target)
        sim = self._require()
        pathfinder = sim.pathfinder
        if start is None:
            own = ground_truth_start(self.scene.ground_truth)
            start = AgentState(*own) if own is not None else None
        if start is None:
            self._set_island(self._floor_island())
            rng = np.random.default_rng(seed)
            position = self.sample_navigable_point(rng)
            rotation = quat_from_yaw(float(rng.uniform(-math.pi, math.pi)))
        else:
            given = np.asarray(start.position, dtype=np.float64)
            snapped = np.asarray(pathfinder.snap_point(given.astype(np.float32)), dtype=np.float64)
            if not np.all(np.isfinite(snapped)) or (
                math.hypot(snapped[0] - given[0], snapped[2] - given[2]) > START_TOLERANCE_M
            ):
                raise AeqaError(
                    f"{target.source}: start position ({given[0]:.2f}, {given[1]:.2f}, "
                    f"{given[2]:.2f}) is not on the navigable area; give a start on free floor"
                )
            self._set_island(int(pathfinder.get_island(snapped.astype(np.float32))))
            position, rotation = snapped, quat_normalize(start.rotation)
        self._place(position, rotation, reset_sensors=True)
        return self.observe()

    def _load(self, target: HabitatScene) -> None:
        scene_id, annotations = self._scene_files(target)
        self._configuration = self._configuration_for(target, scene_id)
        _PROCESS.users.add(self)
        self._loaded = None
        self._saved_state = None
        try:
            sim = self._require()
        except Exception as e:
            self._configuration = None
            raise AeqaError(self._load_error(target, e)) from e
        self._loaded = target
        self._annotations = annotations
        pathfinder = sim.pathfinder
        if not pathfinder.is_loaded or pathfinder.num_islands == 0:
            raise AeqaError(
                f"{target.source}: habitat-sim found no navigable floor for an agent of radius "
                f"{self.config.agent.radius_m} m; check the scene has a floor and its up axis"
            )
        logger.info(
            "habitat-sim loaded %s: %d navmesh islands, %.1f m^2 navigable",
            target.source,
            pathfinder.num_islands,
            pathfinder.navigable_area,
        )

    def _load_error(self, target: HabitatScene, error: Exception) -> str:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if _PROCESS.sim is None and self.config.gpu_device_id >= 0:
            return (
                f"habitat-sim could not start on GPU {self.config.gpu_device_id} ({first}); "
                "set sim.gpu_device_id=-1 to render on the CPU"
            )
        return f"{target.source}: habitat-sim could not load the scene ({first}); check the file"

    def _scene_files(self, target: HabitatScene) -> tuple[str, SceneAnnotations]:
        """The scene id to give habitat-sim, after writing what it needs, and the labels.

        Written files get a new name per load, since habitat-sim keeps stage attributes and
        meshes by file name for the simulator's lifetime.
        """
        if target.scene_id:
            return target.scene_id, scene_annotations(target)
        if self._stage_dir is None:
            self._stage_dir = Path(tempfile.mkdtemp(prefix="aeqa-habitat-"))
        self._written += 1
        prefix = f"{self._written:04d}-"
        stage_json = target.stage_json
        if target.convert is not None:
            mesh = load_scene(target.convert)
            name = prefix + Path(target.convert.path).stem
            stage_json = write_yup_scene(mesh, self._stage_dir, name)
            annotations = SceneAnnotations(target.source, mesh.instances, mesh.ground_truth)
        else:
            annotations = scene_annotations(target)
        path = self._stage_dir / (prefix + target.stage_name)
        path.write_text(stage_json, encoding="utf-8")
        return str(path), annotations

    def _configuration_for(self, target: HabitatScene, scene_id: str) -> Any:
        import magnum as mn

        hs = self._hs
        config = self.config
        sim_cfg = hs.SimulatorConfiguration()
        sim_cfg.scene_id = scene_id
        sim_cfg.scene_dataset_config_file = target.dataset_config
        sim_cfg.gpu_device_id = int(config.gpu_device_id)
        sim_cfg.enable_physics = False
        sim_cfg.allow_sliding = True
        sim_cfg.random_seed = 0
        sim_cfg.use_semantic_textures = target.semantic_textures
        navmesh = hs.NavMeshSettings()
        navmesh.set_defaults()
        for name, value in navmesh_values(config).items():
            setattr(navmesh, name, value)
        sim_cfg.navmesh_settings = navmesh
        camera = self._camera
        sensors = []
        for uuid, sensor_type in (
            (RGB, hs.SensorType.COLOR),
            (DEPTH, hs.SensorType.DEPTH),
            (SEMANTIC, hs.SensorType.SEMANTIC),
        ):
            spec = hs.CameraSensorSpec()
            spec.uuid = uuid
            spec.sensor_type = sensor_type
            spec.sensor_subtype = hs.SensorSubType.PINHOLE
            spec.resolution = mn.Vector2i(*camera.resolution)
            spec.position = mn.Vector3(*camera.position_m)
            spec.orientation = mn.Vector3(*camera.orientation_rad)
            spec.hfov = mn.Deg(camera.hfov_deg)
            spec.far = camera.far_m
            sensors.append(spec)
        actions = {
            name: hs.agent.ActionSpec(name, hs.agent.ActuationSpec(amount=amount, constraint=limit))
            for name, (amount, limit) in action_amounts(config).items()
        }
        agent = hs.agent.AgentConfiguration(
            height=float(config.agent.height_m),
            radius=float(config.agent.radius_m),
            sensor_specifications=sensors,
            action_space=actions,
        )
        # A second, bodiless agent carries a one-pixel depth camera looking straight down:
        # floor_height measures with it, since habitat-sim casts rays only when built with
        # Bullet.
        probe = hs.CameraSensorSpec()
        probe.uuid = FLOOR_PROBE
        probe.sensor_type = hs.SensorType.DEPTH
        probe.sensor_subtype = hs.SensorSubType.PINHOLE
        probe.resolution = mn.Vector2i(1, 1)
        probe.position = mn.Vector3(0.0, 0.0, 0.0)
        probe.orientation = mn.Vector3(-math.pi / 2, 0.0, 0.0)
        probe.hfov = mn.Deg(1.0)
        probe.near = 0.001
        probe_agent = hs.agent.AgentConfiguration(sensor_specifications=[probe], action_space={})
        return hs.Configuration(sim_cfg, [agent, probe_agent])

    def _floor_island(self) -> int:
        pathfinder = self._require().pathfinder
        count = int(pathfinder.num_islands)
        areas = [float(pathfinder.island_area(i)) for i in range(count)]
        lowest = []
        for i in range(count):
            vertices = np.asarray(pathfinder.build_navmesh_vertices(i), dtype=np.float64)
            lowest.append(float(vertices[:, 1].min()) if len(vertices) else math.inf)
        return floor_island(areas, lowest)

    def _set_island(self, island: int) -> None:
        if island < 0:
            raise AeqaError(
                f"{self._loaded.source if self._loaded else 'scene'}: the start is on no island "
                "of habitat-sim's navmesh; give a start on free floor"
            )
        self._island = island
        vertices = self._require().pathfinder.build_navmesh_vertices(island)
        self._island_vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)

    # --- agent -------------------------------------------------------------------------------

    def _agent(self) -> Any:
        return self._agent_of(self._require())

    @staticmethod
    def _agent_of(sim: Any) -> Any:
        return sim.get_agent(_AGENT)

    def _place(self, position: np.ndarray, rotation: np.ndarray, reset_sensors: bool) -> None:
        state = self._hs.AgentState()
        state.position = np.asarray(position, dtype=np.float32)
        state.rotation = habitat_coeffs(rotation)
        # reset_sensors=False keeps the camera's tilt from look_up / look_down, as meshsim does
        self._agent().set_state(state, reset_sensors=reset_sensors)

    @_on_habitat_thread
    def get_state(self) -> AgentState:
        state = self._agent().get_state()
        return AgentState(
            np.asarray(state.position, dtype=np.float64), wxyz_from_habitat(state.rotation)
        )

    @_on_habitat_thread
    def set_state(self, state: AgentState) -> None:
        self._place(state.position, quat_normalize(state.rotation), reset_sensors=False)

    @_on_habitat_thread
    def T_world_camera(self) -> np.ndarray:
        sensor = self._agent().get_state().sensor_states[RGB]
        return T_world_camera_from_pose(sensor.position, wxyz_from_habitat(sensor.rotation))

    @_on_habitat_thread
    def observe(self, collided: bool = False) -> Observations:
        return self._observation(self._require().get_sensor_observations(), collided)

    def _observation(self, raw: dict[str, Any], collided: bool) -> Observations:
        rgb, depth, semantic = observation_arrays(raw, self.config.max_depth_m)
        return Observations(
            rgb=rgb,
            depth=depth,
            semantic=semantic,
            T_world_camera=self.T_world_camera(),
            state=self.get_state(),
            collided=collided,
            hfov_deg=self.config.hfov_deg,
        )

    @_on_habitat_thread
    def step(self, action: str) -> Observations:
        sim = self._require()
        if action == STOP:
            return self.observe()
        if action not in action_amounts(self.config):
            raise AeqaError(
                f"unknown action {action!r}; use move_forward, turn_left, turn_right, "
                "look_up, look_down or stop"
            )
        raw = sim.step(action)
        return self._observation(raw, bool(raw.get("collided", False)))

    @_on_habitat_thread
    def teleport(self, position: np.ndarray, rotation: np.ndarray) -> Observations:
        self._place(self.snap_point(position), quat_normalize(rotation), reset_sensors=False)
        return self.observe()

    # --- navigation queries ------------------------------------------------------------------

    @_on_habitat_thread
    def is_navigable(self, point: np.ndarray) -> bool:
        pathfinder = self._require().pathfinder
        p = np.asarray(point, dtype=np.float32).reshape(3)
        return bool(pathfinder.is_navigable(p)) and int(pathfinder.get_island(p)) == self._island

    @_on_habitat_thread
    def snap_point(self, point: np.ndarray) -> np.ndarray:
        """The nearest point of the agent's island (habitat-sim's ``snap_point``; from beyond
        its search box, the island's nearest navmesh vertex)."""
        p = np.asarray(point, dtype=np.float64).reshape(3)
        pathfinder = self._require().pathfinder
        snapped = np.asarray(
            pathfinder.snap_point(p.astype(np.float32), island_index=self._island),
            dtype=np.float64,
        )
        if np.all(np.isfinite(snapped)):
            return snapped
        nearest = int(np.argmin(np.linalg.norm(self._island_vertices - p, axis=1)))
        return self._island_vertices[nearest].copy()

    @_on_habitat_thread
    def shortest_path(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        pathfinder = self._require().pathfinder
        path = self._hs.ShortestPath()
        path.requested_start = self._on_surface(a)
        path.requested_end = self._on_surface(b)
        if not pathfinder.find_path(path) or len(path.points) == 0:
            return None
        points = np.asarray(path.points, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(points)):
            return None
        return points

    def _on_surface(self, point: np.ndarray) -> np.ndarray:
        """The point at the navmesh's height (x, z kept): Detour keeps the caller's heights at
        a path's ends, so a level floor gives a level path, as meshsim's."""
        p = np.asarray(point, dtype=np.float64).reshape(3)
        snapped = np.asarray(self._require().pathfinder.snap_point(p.astype(np.float32)))
        y = float(snapped[1]) if np.all(np.isfinite(snapped)) else p[1]
        return np.array([p[0], y, p[2]], dtype=np.float32)

    @_on_habitat_thread
    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        path = self.shortest_path(a, b)
        if path is None:
            return math.inf
        return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())

    @_on_habitat_thread
    def sample_navigable_point(self, rng: np.random.Generator) -> np.ndarray:
        pathfinder = self._require().pathfinder
        for _ in range(_SAMPLE_ATTEMPTS):
            pathfinder.seed(int(rng.integers(0, 2**31 - 1)))
            point = np.asarray(
                pathfinder.get_random_navigable_point(island_index=self._island), dtype=np.float64
            )
            if np.all(np.isfinite(point)):
                return point
        raise AeqaError(
            f"{self._loaded.source if self._loaded else 'scene'}: no navigable point found on "
            "the agent's island; check the scene's floor"
        )

    @_on_habitat_thread
    def floor_height(self, point: np.ndarray) -> float:
        sim = self._require()
        p = np.asarray(point, dtype=np.float64).reshape(3)
        top = p[1] + FLOOR_ABOVE_NAV_M
        state = self._hs.AgentState()
        state.position = np.array([p[0], top, p[2]], dtype=np.float32)
        sim.get_agent(_PROBE_AGENT).set_state(state)
        depth = float(np.asarray(sim.get_sensor_observations(_PROBE_AGENT)[FLOOR_PROBE]).flat[0])
        y = top - depth
        # The navmesh rounds the surface up by less than a voxel; a surface further down is
        # another level seen through a hole in this one's mesh.
        if not math.isfinite(depth) or depth <= 0 or y < p[1] - self._floor_drop_m:
            return float(p[1])
        return y

    @_on_habitat_thread
    def navigable_area(self) -> float:
        return float(self._require().pathfinder.island_area(self._island))

    @_on_habitat_thread
    def navigable_grid(self, cell_m: float) -> NavigableGrid:
        cell_m = check_cell_m(cell_m)
        pathfinder = self._require().pathfinder
        position = self.get_state().position
        islands = np.asarray(pathfinder.get_topdown_island_view(cell_m, float(position[1])))
        lo, _ = pathfinder.get_bounds()
        # habitat-sim probes cell (row, col) at the bounds' minimum + (col, row) cells: those
        # points are the cells' centres here.
        return NavigableGrid(
            float(lo[0]) - cell_m / 2,
            float(lo[2]) - cell_m / 2,
            cell_m,
            islands == self._island,
            self.floor_height(position),
        )

    @_on_habitat_thread
    def close(self) -> None:
        shared = _PROCESS
        shared.users.discard(self)
        if shared.holder is self:
            shared.holder = None
        if not shared.users:
            shared.close_simulator()
        self._configuration = None
        self._loaded = None
        self._annotations = None
        self._saved_state = None
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)
            self._stage_dir = None

"""``aeqa bench sim``: frame rates of each renderer against a bare open3d ray cast, and
habitat-sim's beside them where asked.

Every figure is measured in the same run on the same poses, so ratios stay meaningful on a
shared, noisy machine. Each rate is the best of several interleaved rounds.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import T_world_camera_from_agent, matrix_to_quat, quat_from_yaw
from aeqa.envs.meshsim.renderer import (
    RENDERERS,
    CameraSpec,
    Renderer,
    make_renderer,
    resolve_renderer,
)
from aeqa.envs.meshsim.simulator import estimate_floor_level, nav_spec_for
from aeqa.envs.navigation import NavGrid, NavSpec
from aeqa.envs.scene import SceneMesh, load_scene, scene_spec_for
from aeqa.envs.types import AgentState

logger = logging.getLogger(__name__)


def bench_poses(
    mesh: SceneMesh,
    count: int,
    seed: int,
    camera_height_m: float = 1.5,
    nav_spec: NavSpec | None = None,
) -> list[np.ndarray]:
    """Camera poses (4x4) at navigable floor points with seeded random headings, level."""
    nav = NavGrid(mesh.vertices, mesh.faces, estimate_floor_level(mesh), nav_spec or NavSpec())
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(count):
        position = nav.sample(rng)
        yaw = float(rng.uniform(-math.pi, math.pi))
        poses.append(T_world_camera_from_agent(position, quat_from_yaw(yaw), camera_height_m, 0.0))
    return poses


def _best_rate(run_once: Callable[[], None], frames: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        run_once()
        best = max(best, frames / (time.perf_counter() - start))
    return best


def bench_sim(
    scene: str | Path | None = None,
    frames: int = 40,
    rounds: int = 3,
    seed: int = 0,
    sim: SimConfig | None = None,
    habitat: bool = False,
) -> dict[str, Any]:
    """Render RGB + depth + semantic with the camera of ``sim`` (default: the ``discrete``
    preset's 640x480, HFOV 90) and time it.

    Without ``scene`` a generated apartment is used; a given scene is read with ``sim``'s up
    axis and units (``scene_up``, ``scene_metres_per_unit``). Returns ``renderer`` (what ``auto``
    picks), ``fps`` (its full frame rate), ``renderers`` (fps of each renderer that works
    here), ``raw_fps`` (a bare ``RaycastingScene.cast_rays`` on the same rays) and ``ratio``
    (raycast fps / raw fps). With ``habitat``, habitat-sim renders the same views of the same
    scene in the same rounds (``habitat``: its fps and GPU, ``habitat_vs_meshsim``: its fps
    over ``fps``).
    """
    import open3d as o3d

    from aeqa.envs.meshsim.raycast import PinholeRays, build_raycasting_scene

    config = sim or SimConfig()
    with tempfile.TemporaryDirectory() as tmp:
        if scene is None:
            from aeqa.envs.scenegen import generate_scene

            generated = generate_scene(Path(tmp), "bench_apartment", seed=seed, num_rooms=5)
            mesh = load_scene(generated)
        else:
            mesh = load_scene(scene_spec_for(str(scene), config))
        # habitat-sim reads the files while they are here
        habitat_sim = (
            _open_habitat(generated if scene is None else scene, config) if habitat else None
        )
    camera = CameraSpec(config.width, config.height, config.hfov_deg)
    poses = bench_poses(mesh, frames, seed, config.camera_height_m, nav_spec_for(config))

    # The baseline: rays prepared beforehand, only the cast is timed.
    raw_scene = build_raycasting_scene(mesh.vertices, mesh.faces)
    prepared = []
    for T in poses:
        rays = PinholeRays(camera)
        rays.fill(T)
        prepared.append(rays.tensor)

    def run_raw() -> None:
        for rays_tensor in prepared:
            raw_scene.cast_rays(rays_tensor)

    renderers: dict[str, Renderer] = {}
    errors: dict[str, str] = {}
    for name in RENDERERS:
        try:
            renderers[name] = make_renderer(name, mesh, camera)
        except (AeqaError, RuntimeError, ImportError) as e:
            errors[name] = str(e)
            logger.warning("renderer %s does not work here: %s", name, e)

    def runner(renderer: Renderer) -> Callable[[], None]:
        def run() -> None:
            for T in poses:
                renderer.render(T)

        return run

    run_raw()  # warm-up
    for renderer in renderers.values():
        renderer.render(poses[0])
    rates: dict[str, float] = {name: 0.0 for name in renderers}
    raw_fps = 0.0
    habitat_fps = 0.0
    run_habitat = None
    if habitat_sim is not None:
        run_habitat = _habitat_runner(habitat_sim, poses, config.camera_height_m)
        run_habitat()  # warm-up
    try:
        for _ in range(rounds):  # interleaved, so load changes hit every contender alike
            raw_fps = max(raw_fps, _best_rate(run_raw, frames, 1))
            for name, renderer in renderers.items():
                rates[name] = max(rates[name], _best_rate(runner(renderer), frames, 1))
            if run_habitat is not None:
                habitat_fps = max(habitat_fps, _best_rate(run_habitat, frames, 1))
    finally:
        if habitat_sim is not None:
            habitat_sim.close()
    for renderer in renderers.values():
        renderer.close()
    del o3d

    chosen = resolve_renderer("auto")
    result: dict[str, Any] = {
        "renderer": chosen,
        "fps": round(rates.get(chosen, 0.0), 2),
        "renderers": {name: round(rate, 2) for name, rate in rates.items()},
        "raw_fps": round(raw_fps, 2),
        "ratio": round(rates["raycast"] / raw_fps, 3) if "raycast" in rates else None,
        "width": config.width,
        "height": config.height,
        "hfov_deg": config.hfov_deg,
        "frames": frames,
        "rounds": rounds,
        "triangles": len(mesh.faces),
        "scene": str(mesh.source) if scene is not None else "generated",
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    if "raster" in renderers:
        result["raster_device"] = getattr(renderers["raster"], "device", "")
    if habitat_sim is not None:
        result["habitat"] = {"fps": round(habitat_fps, 2), "gpu_device_id": config.gpu_device_id}
        chosen_fps = rates.get(chosen, 0.0)
        result["habitat_vs_meshsim"] = round(habitat_fps / chosen_fps, 3) if chosen_fps else None
    if errors:
        result["errors"] = errors
    return result


def _open_habitat(scene: str | Path, config: SimConfig) -> Any:
    """habitat-sim on ``scene`` with the benchmark's camera, level like :func:`bench_poses`."""
    from aeqa.envs.habitat.simulator import HabitatSim

    habitat = HabitatSim(replace(config, type="habitat", camera_tilt_deg=0.0))
    try:
        habitat.reset(scene_spec_for(str(scene), config), None, seed=0)
    except BaseException:
        habitat.close()
        raise
    return habitat


def _habitat_runner(
    habitat: Any, poses: list[np.ndarray], camera_height_m: float
) -> Callable[[], None]:
    """Render RGB + depth + semantic at each camera pose; the loop runs on habitat-sim's own
    thread, so no call crosses threads while timed."""
    lift = np.array([0.0, camera_height_m, 0.0])
    states = [AgentState(T[:3, 3] - lift, matrix_to_quat(T[:3, :3])) for T in poses]

    def render_all() -> None:
        for state in states:
            habitat.set_state(state)
            habitat.observe()

    return lambda: habitat.on_habitat_thread(render_all)

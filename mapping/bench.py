"""``aeqa bench mapping``: memory integration rate against a bare open3d voxel down-sampling
of the same points, measured in the same run."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import backproject_world, quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, Observations
from aeqa.mapping.memory import MemoryConfig, SemanticMemory
from aeqa.mapping.objects import InstanceLabel
from aeqa.mapping.voxels import pack_axes


def record_frames(
    scene: str | Path, count: int, seed: int, width: int, height: int
) -> tuple[list[Observations], dict[int, InstanceLabel]]:
    """Frames of a look-around at seeded navigable spots: 12 turns per spot."""
    sim = make_simulator(SimConfig(renderer="raycast", width=width, height=height))
    rng = np.random.default_rng(seed)
    frames: list[Observations] = []
    obs = sim.reset(scene, seed=seed)
    labels = scene_labels(sim)
    while len(frames) < count:
        for _ in range(12):
            frames.append(obs)
            obs = sim.step(TURN_LEFT)
        position = sim.sample_navigable_point(rng)
        obs = sim.teleport(position, quat_from_yaw(float(rng.uniform(-math.pi, math.pi))))
    sim.close()
    return frames[:count], labels


def scene_labels(sim: Any) -> dict[int, InstanceLabel]:
    """Instance labels from a meshsim scene's annotations and ground-truth region names."""
    regions = {
        int(r["region_id"]): str(r["name"])
        for r in (sim.scene.ground_truth or {}).get("regions", [])
    }
    return {
        i: InstanceLabel(info.category, regions.get(info.region_id, ""))
        for i, info in sim.scene.instances.items()
    }


def bench_mapping(
    scene: str | Path | None = None,
    frames: int = 36,
    rounds: int = 3,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
) -> dict[str, Any]:
    """Integrate a recorded sequence and time it against ``voxel_down_sample``.

    Returns at least ``fps``, ``points_per_s``, ``raw_points_per_s``, ``ratio``, ``points``
    (the memory's voxels after the sequence) and ``bound`` (the voxels the explored volume
    allows: distinct voxels of every point integrated).
    """
    import open3d as o3d

    with tempfile.TemporaryDirectory() as tmp:
        if scene is None:
            from aeqa.envs.scenegen import generate_scene

            scene = generate_scene(Path(tmp), "bench_apartment", seed=seed, num_rooms=5)
        recorded, labels = record_frames(scene, frames, seed, width, height)
    config = MemoryConfig()
    # The baseline gets the same points (valid depth, in range) already in open3d.
    clouds = []
    total_points = 0
    all_keys = []
    for obs in recorded:
        valid = (obs.depth > config.min_depth_m) & (obs.depth < config.max_depth_m)
        px, py, pz = backproject_world(obs.depth, obs.T_world_camera, obs.hfov_deg)
        points = np.stack([px[valid], py[valid], pz[valid]], axis=1).astype(np.float64)
        colors = np.ascontiguousarray(obs.rgb)[valid].astype(np.float64) / 255.0
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        cloud.colors = o3d.utility.Vector3dVector(colors)
        clouds.append(cloud)
        total_points += len(points)
        scale = np.float32(1.0 / config.voxel_m)
        coords = [np.floor(axis[valid] * scale).astype(np.int64) for axis in (px, py, pz)]
        all_keys.append(np.unique(pack_axes(*coords)))
    bound = len(np.unique(np.concatenate(all_keys)))

    best_memory = 0.0
    best_raw = 0.0
    memory = SemanticMemory(config, labels)
    for _ in range(rounds):  # interleaved so machine load hits both alike
        start = time.perf_counter()
        for cloud in clouds:
            cloud.voxel_down_sample(config.voxel_m)
        best_raw = max(best_raw, total_points / (time.perf_counter() - start))
        memory = SemanticMemory(config, labels)
        start = time.perf_counter()
        for step, obs in enumerate(recorded):
            memory.integrate(obs, step)
        elapsed = time.perf_counter() - start
        best_memory = max(best_memory, total_points / elapsed)
    fps = best_memory / (total_points / len(recorded))
    return {
        "fps": round(fps, 2),
        "points_per_s": round(best_memory),
        "raw_points_per_s": round(best_raw),
        "ratio": round(best_memory / best_raw, 3),
        "points": len(memory),
        "bound": bound,
        "frames": len(recorded),
        "width": width,
        "height": height,
        "voxel_m": config.voxel_m,
        "input_points": total_points,
        "objects": len(memory.objects()),
    }

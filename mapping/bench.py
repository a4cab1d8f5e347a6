"""``aeqa bench mapping``: memory integration rate against a bare open3d voxel down-sampling
of the same points, measured in the same run. The frames come recorded (see
``aeqa.agents.recording``): the memory never calls a simulator."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import backproject_world
from aeqa.envs.types import InstanceLabel, Observations
from aeqa.mapping.memory import MemoryConfig, SemanticMemory
from aeqa.mapping.voxels import pack_axes


def bench_mapping(
    recorded: Sequence[Observations], labels: dict[int, InstanceLabel], rounds: int = 3
) -> dict[str, Any]:
    """Integrate a recorded sequence and time it against ``voxel_down_sample``.

    Args:
        recorded: the frames, in order (all of one size).
        labels: the scene's instance labels, as the memory takes them.
        rounds: timed repetitions; the fastest counts.

    Returns at least ``fps``, ``points_per_s``, ``raw_points_per_s``, ``ratio``, ``points``
    (the memory's voxels after the sequence) and ``bound`` (the voxels the explored volume
    allows: distinct voxels of every point integrated).

    Raises:
        AeqaError: no frames.
    """
    import open3d as o3d

    if not recorded:
        raise AeqaError("the mapping benchmark needs at least one frame; give --frames 1 or more")
    height, width = np.asarray(recorded[0].depth).shape
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
        "width": int(width),
        "height": int(height),
        "voxel_m": config.voxel_m,
        "input_points": total_points,
        "objects": len(memory.objects()),
    }

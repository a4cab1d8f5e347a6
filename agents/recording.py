"""Frame sequences recorded from a simulator, for benchmarks that replay them into the memory
(``aeqa bench mapping``): the simulator and the memory meet here, not in ``aeqa.mapping``."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, InstanceLabel, Observations

#: turns of a look-around at one spot (30 degrees each: a full circle)
TURNS_PER_SPOT = 12


def record_frames(
    scene: str | Path, count: int, seed: int, width: int, height: int
) -> tuple[list[Observations], dict[int, InstanceLabel]]:
    """``count`` frames of look-arounds at seeded navigable spots (:data:`TURNS_PER_SPOT`
    turns per spot), drawn by meshsim's ray caster, and the scene's instance labels."""
    sim = make_simulator(SimConfig(renderer="raycast", width=width, height=height))
    try:
        rng = np.random.default_rng(seed)
        frames: list[Observations] = []
        obs = sim.reset(scene, seed=seed)
        labels = sim.instance_labels()
        while len(frames) < count:
            for _ in range(TURNS_PER_SPOT):
                frames.append(obs)
                obs = sim.step(TURN_LEFT)
            position = sim.sample_navigable_point(rng)
            obs = sim.teleport(position, quat_from_yaw(float(rng.uniform(-math.pi, math.pi))))
    finally:
        sim.close()
    return frames[:count], labels


def bench_mapping_on_scene(
    scene: str | Path | None = None,
    frames: int = 36,
    rounds: int = 3,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
) -> dict[str, Any]:
    """``aeqa bench mapping``: record ``frames`` frames in ``scene`` (None: a generated
    five-room apartment) and time the memory on them (``aeqa.mapping.bench.bench_mapping``)."""
    from aeqa.mapping.bench import bench_mapping

    with tempfile.TemporaryDirectory() as tmp:
        if scene is None:
            from aeqa.envs.scenegen import generate_scene

            scene = generate_scene(Path(tmp), "bench_apartment", seed=seed, num_rooms=5)
        recorded, labels = record_frames(scene, frames, seed, width, height)
    return bench_mapping(recorded, labels, rounds)

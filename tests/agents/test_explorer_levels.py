"""The explorer over two floor levels: it climbs stairs, and coverage counts both levels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aeqa.agents.bench import run_policy
from aeqa.agents.episode import EpisodeConfig, coverage_points, seen_fraction
from aeqa.envs.scenegen import generate_scene
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import AgentState
from tests.scenes import Box, write_boxes

GREY = (150, 150, 150)


def small_config() -> EpisodeConfig:
    config = EpisodeConfig()
    config.sim.width, config.sim.height = 160, 120
    return config


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return make_simulator(small_config().sim)


def _stairs_hall() -> list[Box]:
    """A 3 x 8 m hall: floor at y = 0 for x < 0, five treads of 0.15 m up to a platform
    0.75 m high from x = 1.5 to 4, with a box on the platform to look at."""
    boxes = [
        Box("floor", "floor", (-4.1, -0.1, -1.6), (4.1, 0.0, 1.6), (90, 90, 90)),
        Box("platform", "floor", (1.5, 0.0, -1.5), (4.0, 0.75, 1.5), (120, 100, 80)),
        Box("wall_n", "wall", (-4.1, 0.0, -1.6), (4.1, 2.8, -1.5), (200, 190, 180)),
        Box("wall_s", "wall", (-4.1, 0.0, 1.5), (4.1, 2.8, 1.6), (200, 190, 181)),
        Box("wall_w", "wall", (-4.1, 0.0, -1.5), (-4.0, 2.8, 1.5), (200, 190, 182)),
        Box("wall_e", "wall", (4.0, 0.0, -1.5), (4.1, 2.8, 1.5), (200, 190, 183)),
        Box("crate", "box", (3.0, 0.75, 0.6), (3.6, 1.2, 1.2), (40, 120, 200)),
    ]
    for k in range(1, 5):
        x0 = (k - 1) * 0.3
        boxes.append(Box(f"tread{k}", "stairs", (x0, 0.0, -1.5), (x0 + 0.3, 0.15 * k, 1.5), GREY))
    return boxes


def _levels_covered(sim: Simulator, run_memory: object, split_y: float) -> tuple[float, float]:
    points = coverage_points(sim, 2000, 0)
    upper = points[:, 1] > split_y
    assert upper.any() and (~upper).any()
    return (
        seen_fraction(run_memory, points[~upper]),  # type: ignore[arg-type]
        seen_fraction(run_memory, points[upper]),  # type: ignore[arg-type]
    )


def test_explorer_climbs_to_a_platform(tmp_path: Path, sim: Simulator) -> None:
    scene = write_boxes(tmp_path, "hall", _stairs_hall())
    start = AgentState(np.array([-3.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.0]))
    run = run_policy(sim, scene, small_config(), checkpoints=(100,), max_steps=200, start=start)
    assert run.positions[:, 1].max() > 0.6  # the navmesh height of the platform
    lower, upper = _levels_covered(sim, run.memory, 0.5)
    assert lower >= 0.9 and upper >= 0.9, (lower, upper)


@pytest.mark.slow
def test_explorer_covers_both_levels_of_a_split_level_house(tmp_path: Path, sim: Simulator) -> None:
    scene = generate_scene(tmp_path, "split", seed=3, size="split-level")
    truth = json.loads(scene.with_name("split.scene.json").read_text())
    rise = max(r["floor_y"] for r in truth["regions"])
    run = run_policy(sim, scene, small_config(), checkpoints=(500,))
    assert run.positions[:, 1].max() > rise - 0.1
    lower, upper = _levels_covered(sim, run.memory, rise / 2)
    assert lower >= 0.9 and upper >= 0.9, (lower, upper)
    assert run.final_coverage >= 0.9

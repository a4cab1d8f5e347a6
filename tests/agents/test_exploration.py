"""The frontier explorer covers generated apartments and stops by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeqa.agents.episode import Episode, EpisodeSpec, resolve_episode_config
from aeqa.envs.scenegen import generate_scene, generate_scenes
from aeqa.envs.simulator import make_simulator


def _run(scene: Path, overrides: list[str]) -> tuple[float, str, int]:
    config = resolve_episode_config("discrete", "memory", overrides)
    sim = make_simulator(config.sim)
    try:
        result = Episode(sim, config).run(EpisodeSpec("How many chairs are there?", str(scene)))
    finally:
        sim.close()
    return result.coverage, result.stop_reason, result.steps


def test_small_apartment_is_covered(tmp_path: Path) -> None:
    scene = generate_scene(tmp_path, "apt", seed=5, num_rooms=3)
    coverage, stop, steps = _run(scene, ["sim.width=160", "sim.height=120"])
    assert coverage >= 0.9
    assert stop == "explored" and steps < 500


@pytest.mark.slow
def test_five_apartments_reach_95_percent_in_500_steps(tmp_path: Path) -> None:
    for scene in generate_scenes(tmp_path, 5, seed=11):
        coverage, _, steps = _run(scene, [])
        assert coverage >= 0.95, scene
        assert steps <= 500

"""The explorer as a habitat-lab agent (``aeqa.agents.habitat_lab``).

habitat-lab's observations are made here from a real simulator the way its sensors make them
(``EpisodicGPSSensor``, ``EpisodicCompassSensor``, ``DepthSensor`` with ``normalize_depth``), so
the adapter runs everywhere; where habitat-lab imports, the agent is also its ``Agent``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeqa.agents.episode import resolve_episode_config
from aeqa.agents.habitat_lab import (
    HabitatLabExplorer,
    HabitatLabSensors,
    depth_in_metres,
    make_habitat_lab_agent,
    pose_from_gps_compass,
)
from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw, quat_to_matrix, yaw_from_quat
from aeqa.envs.simulator import Simulator
from aeqa.envs.types import ACTIONS, AgentState, Observations

QUESTION = "What is on the table?"
SMALL = ["sim.width=96", "sim.height=72", "explorer.max_steps=40"]


def _habitat_lab_error() -> str | None:
    try:
        import habitat.core.agent  # noqa: F401
    except Exception as e:  # habitat-lab 0.3 raises ValueError on Python 3.11
        return f"habitat-lab does not import here ({type(e).__name__}: {str(e)[:120]})"
    return None


HABITAT_LAB_ERROR = _habitat_lab_error()


def habitat_lab_observations(obs: Observations, start: AgentState, gps_dims: int = 2) -> dict:
    """What habitat-lab's sensors report for ``obs``, in the episode frame of ``start``."""
    relative = quat_to_matrix(start.rotation).T @ (obs.state.position - start.position)
    gps = np.array([-relative[2], relative[0]] if gps_dims == 2 else relative, dtype=np.float32)
    heading = yaw_from_quat(obs.state.rotation) - yaw_from_quat(start.rotation)
    heading = math.atan2(math.sin(heading), math.cos(heading))
    depth = np.clip(obs.depth, 0.0, 10.0) / 10.0
    return {
        "rgb": np.asarray(obs.rgb),
        "depth": depth[..., None].astype(np.float32),
        "semantic": obs.semantic[..., None],
        "gps": gps,
        "compass": np.array([heading], dtype=np.float32),
    }


def run_agent(agent: Any, sim: Simulator, scene: Path, gps_dims: int = 2) -> list[str]:
    """One habitat-lab style episode: reset, then act until stop."""
    obs = sim.reset(scene, None, seed=0)
    start = obs.state
    agent.reset()
    actions = []
    while True:
        action = agent.act(habitat_lab_observations(obs, start, gps_dims))["action"]
        actions.append(action)
        if action == "stop":
            return actions
        obs = sim.step(action)


def test_pose_from_episodic_gps_and_compass() -> None:
    start = AgentState(np.array([1.0, 0.1, -2.0]), quat_from_yaw(0.8))
    here = AgentState(np.array([2.5, 0.1, -0.5]), quat_from_yaw(-1.1))
    obs = Observations(
        rgb=np.zeros((2, 2, 3), np.uint8),
        depth=np.zeros((2, 2), np.float32),
        semantic=np.zeros((2, 2), np.int32),
        T_world_camera=np.eye(4),
        state=here,
    )
    expected = quat_to_matrix(start.rotation).T @ (here.position - start.position)
    for dims in (2, 3):
        lab = habitat_lab_observations(obs, start, dims)
        pose = pose_from_gps_compass(lab["gps"], lab["compass"])
        assert np.allclose(pose.position[[0, 2]], expected[[0, 2]], atol=1e-5)
        assert yaw_from_quat(pose.rotation) == pytest.approx(-1.9, abs=1e-6)
    with pytest.raises(AeqaError, match="gps observation has 4 values"):
        pose_from_gps_compass(np.zeros(4), [0.0])


def test_depth_in_metres() -> None:
    normalised = np.array([[[0.0], [0.25]], [[0.5], [1.0]]], dtype=np.float32)
    metres = depth_in_metres(normalised, HabitatLabSensors())
    assert metres.shape == (2, 2)
    assert np.allclose(metres, [[0.0, 2.5], [5.0, 0.0]])  # at the far end: nothing in range
    raw = HabitatLabSensors(normalize_depth=False, min_depth_m=0.5, max_depth_m=5.0)
    assert np.allclose(depth_in_metres(np.array([[1.5, 7.0]]), raw), [[1.5, 0.0]])


def test_explorer_drives_a_simulator_through_habitat_lab_observations(
    box_room: Path, shared_sims: Any, backend: str
) -> None:
    config = resolve_episode_config("discrete", "memory", SMALL)
    sim = shared_sims(SimConfig(type=backend, width=96, height=72))
    agent = HabitatLabExplorer(QUESTION, config)
    actions = run_agent(agent, sim, box_room)
    assert actions[-1] == "stop" and set(actions) <= set(ACTIONS)
    assert agent.done_reason in ("explored", "budget")
    assert len(actions) <= config.explorer.max_steps + 1
    assert "move_forward" in actions
    assert agent.memory.occupancy.seen_area_m2 > 10.0  # most of the 6 m x 4 m room
    answer = agent.answer()
    assert answer.text
    # a new episode starts from an empty memory, and the same seed acts the same
    again = run_agent(agent, sim, box_room, gps_dims=3)
    assert again == actions


def test_waypoint_preset_is_refused() -> None:
    config = resolve_episode_config("aeqa", "memory", [])
    with pytest.raises(AeqaError, match="use the discrete preset"):
        HabitatLabExplorer(QUESTION, config)


def test_missing_sensors_are_named() -> None:
    agent = HabitatLabExplorer(QUESTION, resolve_episode_config("discrete", "memory", SMALL))
    agent.reset()
    with pytest.raises(AeqaError, match="lack gps, compass"):
        agent.act({"rgb": np.zeros((4, 4, 3), np.uint8), "depth": np.zeros((4, 4, 1))})


@pytest.mark.skipif(HABITAT_LAB_ERROR is not None, reason=str(HABITAT_LAB_ERROR))
def test_is_a_habitat_lab_agent(box_room: Path, shared_sims: Any) -> None:
    from habitat.core.agent import Agent

    config = resolve_episode_config("discrete", "memory", SMALL)
    agent = make_habitat_lab_agent(QUESTION, config)
    assert isinstance(agent, Agent)
    actions = run_agent(agent, shared_sims(SimConfig(width=96, height=72)), box_room)
    assert actions[-1] == "stop"


@pytest.mark.skipif(HABITAT_LAB_ERROR is None, reason="habitat-lab imports here")
def test_without_habitat_lab_the_error_says_why() -> None:
    with pytest.raises(AeqaError) as error:
        make_habitat_lab_agent(QUESTION)
    message = str(error.value)
    assert message.startswith("habitat-lab does not import here (") and "\n" not in message

"""Fixtures of the agents' tests: a real memory of the box room, and no model hub."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, AgentState
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import InstanceLabel
from tests.agents.tiny_vlm import force_hub_offline
from tests.scenes import write_box_scene


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    force_hub_offline(monkeypatch)


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> SemanticMemory:
    """The box room seen from (-2, 0, 0) over a full turn (12 frames at 160x120)."""
    scene = write_box_scene(tmp_path_factory.mktemp("scene"))
    sim = make_simulator(SimConfig(width=160, height=120))
    obs = sim.reset(scene, AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2)))
    labels = {i: InstanceLabel(v.category) for i, v in sim.scene.instances.items()}
    memory = SemanticMemory(labels=labels)
    for step in range(12):
        memory.integrate(obs, step)
        obs = sim.step(TURN_LEFT)
    sim.close()
    return memory

"""Episodes record the perception they ran with: ``gt`` (the semantic sensor) or ``detector``
(an open-vocabulary detector on the RGB frames, here a tiny random OWLv2 built offline)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aeqa.agents.episode import Episode, EpisodeSpec, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import AgentState
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import InstanceLabel
from aeqa.mapping.perception import HOUSEHOLD_CATEGORIES
from aeqa.mapping.tiny_detector import build_tiny_owlv2

START = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))
SMALL = [
    "sim.width=160",
    "sim.height=120",
    "sim.renderer=raycast",
    "explorer.max_steps=4",
    "coverage_samples=50",
]


def test_perception_type_is_checked_with_its_key() -> None:
    with pytest.raises(
        AeqaError,
        match=r"^perception\.type=yolo is not a choice; use one of gt, detector, "
        r"e\.g\. perception\.type=gt$",
    ):
        resolve_episode_config("discrete", "memory", ["perception.type=yolo"])
    config = resolve_episode_config("discrete", "memory", ["perception.vocabulary=question"])
    assert config.perception.type == "gt" and config.perception.vocabulary == "question"


def test_the_run_device_reaches_the_detector_unless_it_has_its_own() -> None:
    assert resolve_episode_config("discrete", "memory", ["device=cpu"]).perception.device == "cpu"
    own = resolve_episode_config("discrete", "memory", ["device=cpu", "perception.device=cuda:1"])
    assert own.perception.device == "cuda:1" and own.answerer.device == "cpu"


def test_episodes_record_their_perception(box_room: Path, tmp_path: Path) -> None:
    model = build_tiny_owlv2(tmp_path / "owlv2", seed=0)
    detector_config = resolve_episode_config(
        "discrete",
        "memory",
        [
            *SMALL,
            "perception.type=detector",
            f"perception.model={model}",
            "perception.device=cpu",
            "perception.box_threshold=0.5",
        ],
    )
    gt_config = resolve_episode_config("discrete", "memory", SMALL)
    spec = EpisodeSpec("Where is the table?", str(box_room), "q", START)
    sim = make_simulator(gt_config.sim)
    try:
        gt = Episode(sim, gt_config).run(spec, tmp_path / "gt")
        episode = Episode(sim, detector_config)
        detected = episode.run(spec, tmp_path / "detector")
        again = episode.reanswer(spec, tmp_path / "detector")
    finally:
        sim.close()
    assert gt.perception == "gt" and detected.perception == "detector"
    assert again.perception == "detector"
    for name, mode in (("gt", "gt"), ("detector", "detector")):
        record = json.loads((tmp_path / name / "episode.json").read_text())
        assert record["perception"] == mode
        assert SemanticMemory.load(tmp_path / name / "memory").perception == mode
    # The detector's memory holds its tracks as labels, none of the scene's annotations.
    memory = SemanticMemory.load(tmp_path / "detector" / "memory")
    tracks = episode.perceiver.tracks if episode.perceiver is not None else {}
    assert memory.labels and memory.labels == {
        t.track_id: InstanceLabel(t.category, "", round(t.confidence, 4)) for t in tracks.values()
    }
    assert {o.category for o in memory.objects()} <= set(HOUSEHOLD_CATEGORIES)
    assert all(o.confidence < 1.0 for o in memory.objects())
    gt_memory = SemanticMemory.load(tmp_path / "gt" / "memory")
    assert {o.category for o in gt_memory.objects()} >= {"table"}
    assert all(o.confidence == 1.0 for o in gt_memory.objects())
    # Same frames either way: the perception does not change where the agent went.
    assert (gt.steps, gt.path_length_m) == (detected.steps, detected.path_length_m)

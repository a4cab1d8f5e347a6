"""``explorer.score=vlm``: the answering head picks frontiers from a view of each, or answers
and ends the episode; with the offline ``memory`` head, a tiny offline VLM and a local
chat-completions server."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import pytest

from aeqa.agents.answerers.base import Answer
from aeqa.agents.episode import (
    Episode,
    EpisodeResult,
    EpisodeSpec,
    resolve_episode_config,
    start_state,
)
from aeqa.agents.explorer import ExplorerConfig, FrontierExplorer
from aeqa.agents.guide import FrameBuffer, make_guide, nearby_relevance, parse_guide_reply
from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.scenegen import generate_scenes
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import AgentState
from aeqa.evaluation.questions import Question, generate_questions
from aeqa.mapping.memory import SemanticMemory
from tests.agents.tiny_vlm import build_tiny_vlm
from tests.chat_server import Reply

SMALL = ["sim.width=160", "sim.height=120"]


def test_reads_a_frontier_an_answer_or_neither() -> None:
    chosen = parse_guide_reply("Frontier: 2", 3)
    assert (chosen.frontier, chosen.answer) == (1, None)
    answered = parse_guide_reply("Answer: a red sofa\nConfidence: 0.9", 3)
    assert answered.frontier is None and answered.answer is not None
    assert (answered.answer.text, answered.answer.confidence) == ("a red sofa", 0.9)
    both = parse_guide_reply("Answer: red\nConfidence: 30%\nFrontier #1", 3)
    assert both.frontier == 0 and both.answer is not None and both.answer.confidence == 0.3
    assert parse_guide_reply("Frontier: 4", 3).frontier is None  # out of range
    assert parse_guide_reply("go left", 3) == parse_guide_reply("go left", 3)
    assert parse_guide_reply("go left", 3).frontier is None
    assert parse_guide_reply("go left", 3).answer is None


def test_frontier_views_come_from_frames_that_show_them(box_room: Path) -> None:
    """A point in front of the camera and in sight gets the latest frame with a red ring on it;
    one behind every kept frame, or behind a wall, gets none."""
    sim = make_simulator(SimConfig(width=160, height=120, renderer="raycast"))
    try:
        # Facing -X from the room's east half: the table (0.5 to 1 m) stands in between.
        obs = sim.reset(box_room, AgentState(np.array([2.0, 0.0, 0.0]), quat_from_yaw(math.pi / 2)))
    finally:
        sim.close()
    frames = FrameBuffer(capacity=4, max_side=80)
    frames.add(obs)
    ahead = frames.view_of(np.array([0.5, 0.5, 0.6]))
    assert ahead is not None and ahead.shape == (60, 80, 3)
    red = (ahead == [255, 0, 0]).all(axis=2)
    assert 0 < red.sum() < 200
    assert frames.view_of(np.array([2.8, 0.5, 0.0])) is None  # behind the camera
    assert frames.view_of(np.array([0.2, 0.3, 0.0])) is None  # behind the table
    for _ in range(5):
        frames.add(obs)
    assert len(frames.frames) == 4


def test_vlm_score_needs_a_head() -> None:
    with pytest.raises(AeqaError, match="needs an answering head"):
        FrontierExplorer(ExplorerConfig(score="vlm"))

    class Judge:
        name = "judge"

        def answer(self, question: str, memory: object) -> Answer:
            return Answer("x", 1.0)

    with pytest.raises(AeqaError, match="hf, openai or memory"):
        make_guide(Judge(), ExplorerConfig(score="vlm"), 2)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def apartment_question(tmp_path_factory: pytest.TempPathFactory) -> Question:
    """A generated question about the colour of one object of a generated apartment (the
    memory head is sure of a colour it has seen; of a material it only guesses, with 0.6)."""
    scenes = generate_scenes(tmp_path_factory.mktemp("guide_scenes"), 1, seed=3)
    questions = generate_questions(scenes, 28, seed=0)
    return next(q for q in questions if "colour" in q.question)


def _spec(q: Question) -> EpisodeSpec:
    return EpisodeSpec(
        q.question, q.scene, q.question_id, start_state(q.start_position, q.start_rotation)
    )


@pytest.mark.slow
def test_memory_head_stops_once_it_has_seen_the_answer(apartment_question: Question) -> None:
    """The offline stand-in: the same right answer as full exploration, in far fewer steps,
    with its calls counted."""
    q = apartment_question
    full = resolve_episode_config("discrete", "memory", [*SMALL, "explorer.score=info_gain"])
    guided = resolve_episode_config("discrete", "memory", [*SMALL, "explorer.score=vlm"])
    sim = make_simulator(full.sim)
    try:
        explored = Episode(sim, full).run(_spec(q))
        answered = Episode(sim, guided).run(_spec(q))
    finally:
        sim.close()
    assert explored.answer == answered.answer == q.answer
    assert answered.stop_reason == "confident" and answered.confidence >= 0.85
    assert answered.steps < 0.7 * explored.steps
    assert answered.model_calls >= 1 and answered.model_time_s > 0
    # Full exploration asks the head once, at the end.
    assert explored.model_calls == 1


def _guided_in_box_room(
    box_room: Path, question: str, head: str, overrides: list[str]
) -> EpisodeResult:
    """An ``explorer.score=vlm`` episode in the box room with ``head`` (one keyframe sent)."""
    config = resolve_episode_config(
        "discrete",
        head,
        [*SMALL, "explorer.score=vlm", "answerer.max_images=1", *overrides],
    )
    sim = make_simulator(config.sim)
    start = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))
    try:
        return Episode(sim, config).run(EpisodeSpec(question, str(box_room), "q", start))
    finally:
        sim.close()


def test_chat_endpoint_picks_a_frontier_then_answers(serve: Callable, box_room: Path) -> None:
    """Over real HTTP: the first decision names a frontier and shows the frontiers' views, the
    second answers with confidence and ends the episode (no further call for the answer)."""
    replies = {1: Reply(content="Frontier: 1"), 2: Reply(content="Answer: brown\nConfidence: 0.95")}
    server = serve(lambda call: replies.get(call, Reply(content="Frontier: 1")))
    result = _guided_in_box_room(
        box_room,
        "What colour is the table?",
        "openai",
        [
            "explorer.replan_every=2",
            f"answerer.base_url={server.base_url}",
            "answerer.api_key=sk-test",
            "answerer.model=vlm-test",
        ],
    )
    assert (result.answer, result.stop_reason) == ("brown", "confident")
    assert result.model_calls == server.calls == 2
    content = server.requests[0]["messages"][1]["content"]
    text = content[0]["text"]
    assert (
        "Frontier 1" in text and "What colour is the table?" in text and "Frontier: <number" in text
    )
    images = [p for p in content if p["type"] == "image_url"]
    assert len(images) >= 2  # a keyframe and at least one frontier's view
    assert "marked with a red ring" in text


def test_tiny_vlm_guides_an_episode(tmp_path: Path, box_room: Path) -> None:
    """The hf head's real generate path as the guide: its gibberish names no frontier, so the
    explorer's own choice stands, and every call is counted."""
    model = build_tiny_vlm(tmp_path / "tiny_vlm")
    result = _guided_in_box_room(
        box_room,
        "Is there a table?",
        "hf",
        [
            "explorer.max_steps=30",
            f"answerer.model={model}",
            "answerer.device=cpu",
            "answerer.max_new_tokens=8",
        ],
    )
    assert result.stop_reason in ("explored", "budget")
    assert result.model_calls >= 2 and result.model_time_s > 0


def test_frontiers_near_related_objects_score_higher(memory: SemanticMemory) -> None:
    """Relevance (``explorer.score=question`` and the memory guide): the question's similarity to
    the objects remembered near a frontier; nothing near, nothing related."""
    from aeqa.agents.answerers.matching import TextEmbedder

    embedder = TextEmbedder()
    table = np.array([0.75, 0.0, 0.0])  # the table in the middle of the box room
    near = nearby_relevance(embedder, "What colour is the table?", memory, table, 1.0)
    far = nearby_relevance(embedder, "What colour is the table?", memory, table - [3.5, 0, 0], 1.0)
    other = nearby_relevance(embedder, "Where is the toothbrush?", memory, table, 1.0)
    assert near > 0.5 and far == 0.0 and other < near

"""The offline ``memory`` head on questions generated from scene ground truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from aeqa.agents.answerers.base import AnswererConfig
from aeqa.agents.answerers.memory_head import MemoryAnswerer
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.questions import generate_questions
from aeqa.mapping.memory import SemanticMemory
from tests.scenes import look_around_everywhere

CATEGORIES = 7


def _accuracy(
    scenes: list[Path],
    per_scene: int,
    phrasing: str = "templates",
    spots: int = 30,
    turns: int = 12,
) -> tuple[float, Counter[str]]:
    head = MemoryAnswerer(AnswererConfig())
    questions = generate_questions(scenes, per_scene, seed=0, phrasing=phrasing)
    right, by_category = 0, Counter()
    for scene in scenes:
        memory, _, sim = look_around_everywhere(scene, spots=spots, turns=turns)
        sim.close()
        for q in (q for q in questions if q.scene == str(scene)):
            answer = head.answer(q.question, memory).text.lower()
            ok = answer in [q.answer.lower(), *(e.lower() for e in q.extra_answers)]
            right += ok
            by_category[q.category] += 1
    return right / sum(by_category.values()), by_category


def test_answers_generated_questions(tmp_path: Path) -> None:
    scenes = generate_scenes(tmp_path, 1, seed=21)
    accuracy, categories = _accuracy(scenes, 28)
    assert len(categories) == CATEGORIES
    assert accuracy >= 0.85


def test_answers_paraphrased_questions(tmp_path: Path) -> None:
    """The same facts in wording the head's tables were not written from: its keyword parsing
    recognises far fewer of these (the README reports both figures)."""
    scenes = generate_scenes(tmp_path, 1, seed=21)
    accuracy, categories = _accuracy(scenes, 28, phrasing="paraphrased")
    assert len(categories) == CATEGORIES
    assert accuracy >= 0.3


@pytest.mark.slow
def test_answers_generated_questions_on_four_apartments(tmp_path: Path) -> None:
    """112 questions over four apartments, each seen from 20 spots by looks that just close
    the circle (10 views): 56% of the frames of the one-apartment tests, and the same
    accuracy (104 of 112 right against 103 from 30 spots of 12 views)."""
    scenes = generate_scenes(tmp_path, 4, seed=22)
    accuracy, categories = _accuracy(scenes, 28, spots=20, turns=10)
    assert len(categories) == CATEGORIES
    assert accuracy >= 0.85


def test_no_evidence_says_unknown(tmp_path: Path) -> None:
    from tests.scenes import write_box_scene

    memory, _, sim = look_around_everywhere(write_box_scene(tmp_path), spots=1, width=160)
    sim.close()
    head = MemoryAnswerer(AnswererConfig())
    answer = head.answer("What color is the piano?", memory)
    assert answer.text == "unknown" and answer.confidence < 0.2
    table = head.answer("What color is the table?", memory)
    assert table.text == "brown" and table.object_ids
    with pytest.raises(AeqaError, match="empty"):
        head.answer("  ", memory)


def test_a_room_not_seen_yet_holds_nothing_known(memory: SemanticMemory) -> None:
    """Asked about the table in a room the memory has not seen, the head does not answer about
    a table elsewhere (early in an episode that would end the exploration with the wrong one)."""
    head = MemoryAnswerer(AnswererConfig())
    assert head.answer("What colour is the table?", memory).text == "brown"
    objects = [replace(o, region="living room") for o in memory.objects()]
    for question in (
        "What colour is the table in the bedroom 4?",
        "Is there a table in the kitchen?",
    ):
        answer = head.answer(question, memory)
        assert answer.text in ("unknown", "no") and answer.confidence < 0.85, question
    # A room seen is not the room of that kind numbered apart.
    assert head.parse("What colour is the sofa in the living room 2?", objects).room == (
        "living room 2"
    )
    # A room word inside an object's name is not a room.
    assert head.parse("What colour is the bathroom sink?", []).room is None


def test_relation_about_nothing_remembered_says_unknown() -> None:
    """A memory without labelled objects (an episode history read without instance ids) names
    nothing a relation question could be about: the answer is unknown, not a crash."""
    from aeqa.mapping.memory import SemanticMemory

    head = MemoryAnswerer(AnswererConfig())
    for question in ("What is on the wall?", "What is next to the door?"):
        answer = head.answer(question, SemanticMemory())
        assert answer.text == "unknown" and answer.object_ids == []

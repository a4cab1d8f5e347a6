"""The held-out wording of generated questions: every question reworded, the same facts, and
none of the phrases the ``memory`` head's tables or the generator's templates were written in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aeqa.agents.answerers.knowledge import AFFORDANCES
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.paraphrase import (
    KNOWLEDGE_REWRITES,
    PURPOSE_REWRITES,
    ROOM_REWRITES,
    paraphrase,
)
from aeqa.evaluation.questions import (
    KNOWLEDGE,
    PURPOSES,
    ROOM_USES,
    generate_questions,
    load_questions,
    write_questions,
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_scenes(tmp_path_factory.mktemp("scenes"), 3, seed=5)


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z' ]+", " ", text.lower()) + " "


def test_every_question_is_reworded_with_the_same_facts(scenes: list[Path]) -> None:
    plain = generate_questions(scenes, 28, seed=0)
    reworded = generate_questions(scenes, 28, seed=0, phrasing="paraphrased")
    assert len(reworded) == len(plain) > 60
    for a, b in zip(plain, reworded, strict=True):
        assert (b.question_id, b.answer, b.extra_answers, b.category, b.scene) == (
            a.question_id,
            a.answer,
            a.extra_answers,
            a.category,
            a.scene,
        )
        assert (a.phrasing, b.phrasing) == ("templates", "paraphrased")
        assert b.question != a.question
    assert {q.category for q in reworded} == {q.category for q in plain}


def test_no_phrase_of_the_head_tables_or_templates_survives(scenes: list[Path]) -> None:
    reworded = generate_questions(scenes, 28, seed=0, phrasing="paraphrased")
    # single words ("sleep", "sit") are the language itself, not a table's wording
    table_phrases = {p for phrases in AFFORDANCES.values() for p in phrases if " " in p}
    template_phrases = {p.phrase for p in PURPOSES}
    template_questions = {t for k in KNOWLEDGE for t in k.questions}
    template_questions |= {t for texts in ROOM_USES.values() for t in texts}
    for q in reworded:
        words = _words(q.question)
        assert not [p for p in table_phrases | template_phrases if _words(p) in words], q.question
        assert q.question not in template_questions
    # every rewrite is itself new wording, not a table phrase in disguise
    for rewrite in [*PURPOSE_REWRITES.values(), *KNOWLEDGE_REWRITES.values()]:
        assert not [p for p in table_phrases if _words(p) in _words(rewrite)], rewrite
    assert {p.phrase for p in PURPOSES} <= set(PURPOSE_REWRITES)
    assert {k.answer for k in KNOWLEDGE} <= set(KNOWLEDGE_REWRITES)
    assert set(ROOM_USES) <= set(ROOM_REWRITES)


def test_rewrites_keep_the_object_and_the_yes_no_sense() -> None:
    assert paraphrase("What colour is the lamp in the bedroom?") == (
        "Tell me the shade of the lamp in the bedroom."
    )
    assert paraphrase("Is the oven left open?") == "Has someone left the oven ajar?"
    assert paraphrase("How many TVs are in the apartment?") == (
        "What is the total number of TVs in the home?"
    )
    assert paraphrase("In total, how many plants does the apartment have?") == (
        "What is the total number of plants in the home?"
    )
    assert paraphrase("Which room should I go to if I want to keep the milk cold?") == (
        "Which room is the place to chill a bottle of juice?"
    )
    assert paraphrase("How is the weather?") is None


def test_phrasing_round_trips_and_is_checked(scenes: list[Path], tmp_path: Path) -> None:
    reworded = generate_questions(scenes[:1], 5, seed=0, phrasing="paraphrased")
    path = write_questions(tmp_path / "q.json", reworded)
    assert [q.phrasing for q in load_questions(path)] == ["paraphrased"] * len(reworded)
    with pytest.raises(AeqaError, match="phrasing"):
        generate_questions(scenes[:1], 5, seed=0, phrasing="fancy")

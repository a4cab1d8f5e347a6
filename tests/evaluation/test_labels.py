"""Results on generated questions or with ``gt`` perception say so (``summary.json``,
``aeqa score`` and the run report: tests/viz/test_report.py)."""

from __future__ import annotations

from aeqa.evaluation.labels import (
    BENCHMARK,
    GENERATED_PARAPHRASED,
    GENERATED_TEMPLATES,
    label_results,
    question_set_of,
)
from aeqa.evaluation.questions import Question


def _question(qid: str, history: str, phrasing: str = "") -> Question:
    return Question(qid, "What is it?", "a mug", "object recognition", history, phrasing=phrasing)


def test_question_sets_and_perception_decide_comparability() -> None:
    benchmark = _question("q1", "hm3d-v0/000-hm3d-BFRyYbPCCPE")
    templates = _question("q2", "generated/apartment_000", "templates")
    paraphrased = _question("q3", "generated/apartment_000", "paraphrased")
    assert [question_set_of(q) for q in (benchmark, templates, paraphrased)] == [
        BENCHMARK,
        GENERATED_TEMPLATES,
        GENERATED_PARAPHRASED,
    ]
    # benchmark questions answered without privileged labels: comparable
    clean = label_results([benchmark], ["detector"])
    assert clean.comparable_with_published and clean.notes == []
    # the same questions with labels read off the semantic sensor: not comparable
    gt = label_results([benchmark], ["gt"])
    assert not gt.comparable_with_published
    assert gt.perception == {"gt": 1} and "semantic sensor" in gt.notes[0]
    mixed = label_results([templates, paraphrased], ["gt", "gt"])
    assert mixed.question_sets == {GENERATED_PARAPHRASED: 1, GENERATED_TEMPLATES: 1}
    assert len(mixed.notes) == 3 and not mixed.comparable_with_published
    assert "template wording" in mixed.notes[0]

"""What a set of results may be compared with.

Scores on generated question sets, or from an agent that read object labels off the
simulator's semantic sensor, are not comparable with published A-EQA / OpenEQA scores.
Summaries, score files and run reports carry these labels so nobody compares them by mistake.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aeqa.evaluation.questions import GENERATED_PREFIX, Question

#: question-set kinds (see :func:`question_set_of`)
GENERATED_TEMPLATES = "generated/templates"
GENERATED_PARAPHRASED = "generated/paraphrased"
BENCHMARK = "benchmark"

_NOTES = {
    GENERATED_TEMPLATES: (
        "generated questions in the generator's template wording, which the memory head's "
        "tables share: accuracy overstates what the head does on real questions (compare "
        "--phrasing paraphrased)"
    ),
    GENERATED_PARAPHRASED: (
        "generated questions (held-out wording) on generated scenes: not comparable with "
        "A-EQA / OpenEQA scores"
    ),
    "gt": (
        "gt perception: object labels read off the simulator's semantic sensor, information a "
        "robot does not have; not comparable with published detector-based scores"
    ),
}


def question_set_of(question: Question) -> str:
    """``generated/templates``, ``generated/paraphrased`` or ``benchmark`` (any other file:
    OpenEQA, A-EQA, a user's own)."""
    if question.episode_history.startswith(GENERATED_PREFIX):
        return GENERATED_PARAPHRASED if question.phrasing == "paraphrased" else GENERATED_TEMPLATES
    return BENCHMARK


@dataclass
class ResultLabels:
    """Where results came from, and whether they compare with published scores.

    Attributes:
        question_sets: question-set kind -> questions of that kind.
        perception: perception mode (``gt``; "unknown" where no episode record says) ->
            episodes.
        comparable_with_published: True only for benchmark questions answered without
            privileged labels.
        notes: one line per reason they are not comparable.
    """

    question_sets: dict[str, int] = field(default_factory=dict)
    perception: dict[str, int] = field(default_factory=dict)
    comparable_with_published: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def label_results(questions: Sequence[Question], perceptions: Iterable[str]) -> ResultLabels:
    """Labels for results on ``questions`` whose episodes used ``perceptions`` (one entry per
    episode record; none where only predictions are known)."""
    sets = Counter(question_set_of(q) for q in questions)
    modes = Counter(p or "unknown" for p in perceptions)
    notes = [_NOTES[kind] for kind in (GENERATED_TEMPLATES, GENERATED_PARAPHRASED) if sets[kind]]
    if modes["gt"]:
        notes.append(_NOTES["gt"])
    comparable = set(sets) == {BENCHMARK} and "gt" not in modes
    return ResultLabels(dict(sorted(sets.items())), dict(sorted(modes.items())), comparable, notes)

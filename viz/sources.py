"""Where the reference answers and judge scores of a run come from.

The reference answers (and categories) come from ``--questions``, else from the
``questions.json`` that ``aeqa evaluate`` writes into the run folder.
Judge scores come from ``--scores``, else from ``scores.json`` in the run folder (where
``aeqa score --predictions RUN/predictions.json`` writes them), else, where the questions are
known, from the offline judge (``aeqa.evaluation.judges.OfflineJudge``), computed for the pictures
and written nowhere; otherwise the run shows as not scored.

A scores file is used only where it scores every answer the run holds now. With its judged log
beside it (``scores.jsonl``, written by ``aeqa score``), each score must be tied to the very
answer it scored, so scores judged before a resumed run added or changed answers are not shown
as the run's; a scores file in the run folder without its log cannot be matched to the answers
and is not used. A file that is not used is named, with why, in :attr:`RunSources.scores_note`,
and the offline judge scores the run instead (where the questions are known).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from aeqa.envs.errors import AeqaError
from aeqa.evaluation.questions import Question, load_questions
from aeqa.evaluation.results import QUESTIONS_FILE

logger = logging.getLogger(__name__)

SCORES_FILE = "scores.json"


@dataclass
class RunSources:
    """The questions and scores a run is shown with.

    Attributes:
        questions: question id -> question (empty where no question file is known).
        questions_path: the question file, or None.
        scores: question id -> judge score (1..5) of the answered questions.
        scores_source: how the scores were obtained ("" where not scored).
        scores_note: why a scores file that was found or given is not used ("" where none).
    """

    questions: dict[str, Question] = field(default_factory=dict)
    questions_path: Path | None = None
    scores: dict[str, float] = field(default_factory=dict)
    scores_source: str = ""
    scores_note: str = ""


def find_questions_file(run: Path | None, given: str | Path | None) -> Path | None:
    """The question file: ``given``, else the run folder's ``questions.json``.

    Raises:
        AeqaError: ``given`` does not exist.
    """
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise AeqaError(f"{path}: no such question file; check --questions")
        return path
    if run is None:
        return None
    if (run / QUESTIONS_FILE).is_file():
        return run / QUESTIONS_FILE
    return None


def find_scores_file(run: Path | None, given: str | Path | None) -> Path | None:
    """The scores file: ``given``, else ``scores.json`` in the run folder.

    Raises:
        AeqaError: ``given`` does not exist.
    """
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise AeqaError(f"{path}: no such scores file; check --scores")
        return path
    if run is not None and (run / SCORES_FILE).is_file():
        return run / SCORES_FILE
    return None


def load_sources(
    run: Path | None,
    answers: dict[str, str | None],
    questions_path: str | Path | None = None,
    scores_path: str | Path | None = None,
    judge: bool = True,
) -> RunSources:
    """The questions and scores for a run (or an episode's run).

    Args:
        run: the run folder, or None.
        answers: question id -> answer of the episodes shown (None where the episode failed).
        questions_path: ``--questions``, or None to look in the run folder.
        scores_path: ``--scores``, or None to look in the run folder.
        judge: score with the offline judge where no scores file is found.

    Raises:
        AeqaError: a given file is missing or unreadable. Files found in the run folder that
            are unreadable are skipped with a warning.
    """
    from aeqa.evaluation.scoring import JudgedLog, judged_log_path, load_scores, tie_scores

    sources = RunSources()
    path = find_questions_file(run, questions_path)
    if path is not None:
        try:
            sources.questions = {q.question_id: q for q in load_questions(path)}
            sources.questions_path = path
        except AeqaError as e:
            if questions_path is not None:
                raise
            logger.warning("%s: not used (%s)", path, e)
    scores_file = find_scores_file(run, scores_path)
    if scores_file is not None:
        try:
            scores = load_scores(scores_file)
            log_path = judged_log_path(scores_file)
            answered = {k: v for k, v in answers.items() if v is not None}
            scores = {k: v for k, v in scores.items() if k in answered}
            why = ""
            if log_path.is_file():
                scores, untied = tie_scores(scores, JudgedLog(log_path).entries(), answered)
                if untied:
                    why = (
                        f"{len(untied)} of its scores are for answers that changed since they "
                        f"were judged ({_ids_text(untied)}; see {log_path.name})"
                    )
            elif scores_path is None:
                why = (
                    f"it has no judged log ({log_path.name}) beside it, so its scores cannot be "
                    "matched to the answers"
                )
            unscored = [k for k in answered if k not in scores]
            if unscored and not why:
                why = f"{len(unscored)} answers have no score ({_ids_text(unscored)})"
            if why:
                sources.scores_note = (
                    f"{scores_file}: not used: {why}; run aeqa score --predictions on the run's "
                    "predictions.json again (it judges only what is not scored yet)"
                )
                logger.warning("%s", sources.scores_note)
            else:
                sources.scores = scores
                sources.scores_source = str(scores_file)
        except AeqaError as e:
            if scores_path is not None:
                raise
            logger.warning("%s: not used (%s)", scores_file, e)
    if not sources.scores_source and judge and sources.questions:
        sources.scores = offline_scores(sources.questions, answers)
        if sources.scores:
            sources.scores_source = "offline judge (computed for this report, not saved)"
    return sources


def _ids_text(ids: list[str], shown: int = 3) -> str:
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")


def offline_scores(
    questions: dict[str, Question], answers: dict[str, str | None]
) -> dict[str, float]:
    """Offline-judge scores of the answered questions that the question file holds."""
    from aeqa.evaluation.judges import OfflineJudge

    judge = OfflineJudge()
    scores: dict[str, float] = {}
    for question_id, answer in answers.items():
        question = questions.get(question_id)
        if question is None or answer is None:
            continue
        scores[question_id] = float(judge.score(question, answer).score)
    return scores

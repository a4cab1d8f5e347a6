"""Scores: LLM-Match and LLM-SPL from judge scores, overall and per category.

The definitions (OpenEQA's, and the efficiency-weighted variant A-EQA papers report):

- a judge scores each answer ``s`` in 1..5; its normalised score is ``100 * (clip(s, 1, 5) - 1)
  / 4`` (0..100);
- **LLM-Match** is the mean normalised score over the questions;
- **LLM-SPL** is the mean over the questions of the normalised score times
  ``L_gt / max(L_gt, L_agent)``, where ``L_gt`` is the reference path length (A-EQA's
  ``gt_path_length.json``; for generated question sets, the geodesic distance from the start to
  where the answer can be seen, which the question file carries as ``gt_path_length_m``) and
  ``L_agent`` the agent's path length (``path_length_m`` in the per-episode ``results.jsonl``).
  ``0 / 0`` counts as 1.

Every question of the scored set counts. A question **fails** when it has no prediction (absent,
or ``answer`` null), its ``results.jsonl`` entry has an ``error``, or (when re-aggregating) the
scores file has no score for it. A failed question scores 1 (normalised 0) and weighs 0 in
LLM-SPL, unless a fallback score file gives its score, which then counts for LLM-Match (its
LLM-SPL weight stays 0: a failed episode has no valid path).

File formats:

- predictions (OpenEQA's): ``[{"question_id": str, "answer": str | null}, ...]``, extra fields
  ignored;
- scores and fallback scores: ``{question_id: number}`` (OpenEQA's ``*-metrics.json``);
- the judged log beside a scores file that ``aeqa score`` writes (``scores.jsonl`` beside
  ``scores.json``, :class:`JudgedLog`): JSON lines, one per question judged, appended and
  flushed the moment the judge answers: ``question_id``, ``prediction_sha256`` (SHA-256 of the
  UTF-8 answer text judged), ``judge`` (:func:`judge_id` of the judge's ``info()``), and
  ``score`` with the judge's ``reason``, or ``error`` where the judge failed. It ties each score
  to the prediction it scored: judging again with the same judge reuses the scores of
  unchanged predictions, and a score whose prediction changed since is not used (re-aggregating
  with ``--predictions``, and the run report);
- path lengths: ``{question_id: metres}``;
- results: JSON lines, each an object with at least ``question_id``, ``path_length_m`` (metres,
  or null where the episode failed) and ``error`` (null or a message). As
  :class:`~aeqa.evaluation.results.ResultsLog` reads it: where an id repeats, the first line
  wins, and a torn last line (no newline, not JSON: a crash mid-write) is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.errors import AeqaError, redact
from aeqa.evaluation.judges import MAX_SCORE, MIN_SCORE, Judge
from aeqa.evaluation.labels import ResultLabels, label_results
from aeqa.evaluation.questions import (
    CATEGORIES,
    Question,
    load_questions,
    read_json_file,
    select_split,
)

logger = logging.getLogger(__name__)

#: ids named in an error message before "and N more"
IDS_SHOWN = 5


# --- the formulas ------------------------------------------------------------------------------


def normalized_score(score: float) -> float:
    """``100 * (clip(score, 1, 5) - 1) / 4``: 0 for a 1, 100 for a 5."""
    clipped = min(max(float(score), MIN_SCORE), MAX_SCORE)
    return 100.0 * (clipped - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)


def spl_weight(path_length_gt_m: float, agent_path_length_m: float) -> float:
    """``L_gt / max(L_gt, L_agent)`` in 0..1; 1 where both are 0, 0 where ``L_agent`` is inf."""
    longest = max(path_length_gt_m, agent_path_length_m)
    if longest <= 0.0:
        return 1.0
    return path_length_gt_m / longest


def llm_match(scores: Iterable[float]) -> float:
    """Mean of ``100 * (clip(s, 1, 5) - 1) / 4`` over the scores.

    Raises:
        ValueError: no scores.
    """
    values = [normalized_score(s) for s in scores]
    if not values:
        raise ValueError("llm_match of no scores")
    return float(np.mean(values))


def llm_spl(
    scores: Sequence[float],
    path_lengths_gt_m: Sequence[float],
    agent_path_lengths_m: Sequence[float],
) -> float:
    """Mean over questions of ``100 * (clip(s, 1, 5) - 1) / 4 * L_gt / max(L_gt, L_agent)``.

    A failed question passes ``L_agent = math.inf`` (weight 0).

    Raises:
        ValueError: no scores, or sequences of different lengths.
    """
    if not len(scores) == len(path_lengths_gt_m) == len(agent_path_lengths_m):
        raise ValueError("llm_spl needs one path length of each kind per score")
    if not scores:
        raise ValueError("llm_spl of no scores")
    terms = [
        normalized_score(s) * spl_weight(gt, agent)
        for s, gt, agent in zip(scores, path_lengths_gt_m, agent_path_lengths_m, strict=True)
    ]
    return float(np.mean(terms))


# --- the summary -------------------------------------------------------------------------------


@dataclass
class CategoryScore:
    """LLM-Match and LLM-SPL (None where path lengths are unknown) of one set of questions."""

    llm_match: float
    llm_spl: float | None
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "llm_match": round(self.llm_match, 4),
            "llm_spl": None if self.llm_spl is None else round(self.llm_spl, 4),
            "count": self.count,
        }


@dataclass
class JudgeFailure:
    """A question the judge gave no score: its id and the error, on one line."""

    question_id: str
    error: str


@dataclass
class ScoreSummary:
    """The scores of a question set.

    Attributes:
        llm_match: overall LLM-Match (0..100).
        llm_spl: overall LLM-SPL (0..100), or None where path lengths are unknown.
        by_category: per OpenEQA category present, in OpenEQA's order.
        count: questions scored.
        failed: how many of them failed (score 1 or a fallback score, SPL weight 0).
        failed_ids: their ids, in question order.
        fallback_used: how many failed questions took a fallback score.
        judge: the judge's ``info()`` where scores were judged here, else {}.
        sources: the files the scores came from (``questions``, ``predictions``, ...).
        judge_failures: questions the judge failed on (they count as failed), with its error.
        labels: what the scores may be compared with (generated questions, gt perception).
    """

    llm_match: float
    llm_spl: float | None
    by_category: dict[str, CategoryScore]
    count: int
    failed: int
    failed_ids: list[str] = field(default_factory=list)
    fallback_used: int = 0
    judge: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    judge_failures: list[JudgeFailure] = field(default_factory=list)
    labels: ResultLabels = field(default_factory=ResultLabels)

    def to_json(self) -> dict[str, Any]:
        return {
            "llm_match": round(self.llm_match, 4),
            "llm_spl": None if self.llm_spl is None else round(self.llm_spl, 4),
            "by_category": {k: v.to_json() for k, v in self.by_category.items()},
            "count": self.count,
            "failed": self.failed,
            "failed_ids": list(self.failed_ids),
            "fallback_used": self.fallback_used,
            "judge": dict(self.judge),
            "sources": dict(self.sources),
            "judge_failures": [
                {"question_id": f.question_id, "error": f.error} for f in self.judge_failures
            ],
            "labels": self.labels.to_json(),
        }


@dataclass(frozen=True)
class Sources:
    """How error messages name each input (a file path where there is one)."""

    scores: str = "the scores"
    path_lengths_gt: str = "the ground-truth path lengths"
    agent_path_lengths: str = "the agent path lengths"
    fallback_scores: str = "the fallback scores"


def _ids_text(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:IDS_SHOWN])
    more = len(ids) - IDS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def aggregate(
    questions: Sequence[Question],
    scores: Mapping[str, float],
    path_lengths_gt: Mapping[str, float] | None = None,
    agent_path_lengths: Mapping[str, float] | None = None,
    failed: Collection[str] = frozenset(),
    fallback_scores: Mapping[str, float] | None = None,
    sources: Sources = Sources(),
) -> ScoreSummary:
    """LLM-Match and LLM-SPL of ``questions``, overall and per category.

    Args:
        questions: the scored set; every one counts.
        scores: judge scores (1..5, clipped) by question id; a question without one fails.
            Ids outside ``questions`` are an error.
        path_lengths_gt: ``L_gt`` in metres by question id (extra ids are ignored), or None.
        agent_path_lengths: ``L_agent`` in metres by question id, or None. LLM-SPL needs both.
        failed: ids of failed questions (no prediction, or an episode error).
        fallback_scores: scores that replace the 1 of failed questions (extra ids ignored).
        sources: names of the inputs for error messages.

    Raises:
        AeqaError: no questions; a score id not among the questions; a score or path length
            that is not a finite number (or a negative length); a question that did not fail
            but lacks a path length while both path-length inputs are given.
    """
    if not questions:
        raise AeqaError("no questions to score; check the question file (and --split)")
    known = {q.question_id for q in questions}
    unknown = [qid for qid in scores if qid not in known]
    if unknown:
        raise AeqaError(
            f"{sources.scores}: {len(unknown)} question ids are not among the {len(known)} "
            f"questions scored: {_ids_text(unknown)}; pass the question file they belong to"
        )
    for name, given in (("scores", scores), ("fallback_scores", fallback_scores or {})):
        bad = [qid for qid, v in given.items() if not _finite_number(v)]
        if bad:
            where = getattr(sources, name)
            raise AeqaError(
                f"{where}: the scores of {_ids_text(bad)} are not finite numbers "
                f"(e.g. {given[bad[0]]!r}); each score is a number, 1 to 5"
            )
    failed_set = set(failed) | (known - set(scores))
    with_spl = path_lengths_gt is not None and agent_path_lengths is not None
    if with_spl:
        assert path_lengths_gt is not None and agent_path_lengths is not None
        _check_lengths(path_lengths_gt, sources.path_lengths_gt)
        _check_lengths(agent_path_lengths, sources.agent_path_lengths)
        scored = [q.question_id for q in questions if q.question_id not in failed_set]
        for lengths, where in (
            (path_lengths_gt, sources.path_lengths_gt),
            (agent_path_lengths, sources.agent_path_lengths),
        ):
            missing = [qid for qid in scored if qid not in lengths]
            if missing:
                raise AeqaError(
                    f"{where}: no path length for {len(missing)} scored questions: "
                    f"{_ids_text(missing)}; give a length (metres) for every question"
                )

    fallback = fallback_scores or {}
    values: dict[str, float] = {}
    weights: dict[str, float] = {}
    failed_ids: list[str] = []
    fallback_used = 0
    for q in questions:
        qid = q.question_id
        if qid in failed_set:
            failed_ids.append(qid)
            if qid in fallback:
                fallback_used += 1
            values[qid] = float(fallback.get(qid, MIN_SCORE))
            weights[qid] = 0.0
        else:
            values[qid] = float(scores[qid])
            if with_spl:
                assert path_lengths_gt is not None and agent_path_lengths is not None
                weights[qid] = spl_weight(
                    float(path_lengths_gt[qid]), float(agent_path_lengths[qid])
                )

    def summarise(subset: Sequence[Question]) -> CategoryScore:
        ids = [q.question_id for q in subset]
        match = llm_match(values[i] for i in ids)
        spl = None
        if with_spl:
            spl = float(np.mean([normalized_score(values[i]) * weights[i] for i in ids]))
        return CategoryScore(match, spl, len(ids))

    overall = summarise(questions)
    by_category: dict[str, CategoryScore] = {}
    for category in CATEGORIES:
        subset = [q for q in questions if q.category == category]
        if subset:
            by_category[category] = summarise(subset)
    return ScoreSummary(
        llm_match=overall.llm_match,
        llm_spl=overall.llm_spl,
        by_category=by_category,
        count=overall.count,
        failed=len(failed_ids),
        failed_ids=failed_ids,
        fallback_used=fallback_used,
    )


def _check_lengths(lengths: Mapping[str, float], where: str) -> None:
    bad = [qid for qid, v in lengths.items() if not _finite_number(v) or float(v) < 0]
    if bad:
        raise AeqaError(
            f"{where}: the path lengths of {_ids_text(bad)} are not non-negative numbers "
            f"(e.g. {lengths[bad[0]]!r}); give metres"
        )


# --- loading files -----------------------------------------------------------------------------


@dataclass
class EpisodeOutcome:
    """What scoring reads from one line of ``results.jsonl``."""

    question_id: str
    path_length_m: float | None
    error: str | None
    #: where the episode's object labels came from (``gt``); "" where the line does not say
    perception: str = ""
    #: ``aeqa`` (explored) or ``em`` (answered from an episode history: no path of its own)
    mode: str = "aeqa"


PREDICTIONS_SHAPE = 'a JSON list of {"question_id": ..., "answer": ...} (OpenEQA\'s format)'


def load_predictions(path: str | Path) -> dict[str, str | None]:
    """A predictions file in OpenEQA's format, as ``{question_id: answer}`` in file order
    (``None`` where the answer is null).

    Raises:
        AeqaError: missing or not JSON; not a list; an entry that is not an object, lacks
            ``question_id`` or ``answer``, or has a non-string one; a repeated question_id.
    """
    path = Path(path)
    data = read_json_file(path, "predictions", PREDICTIONS_SHAPE)
    if not isinstance(data, list):
        raise AeqaError(f"{path}: expected {PREDICTIONS_SHAPE}, got a JSON {type(data).__name__}")
    predictions: dict[str, str | None] = {}
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict):
            raise AeqaError(f"{where}: expected an object with 'question_id' and 'answer'")
        for key in ("question_id", "answer"):
            if key not in entry:
                raise AeqaError(
                    f"{where}: missing field {key!r}; every prediction needs "
                    "'question_id' and 'answer'"
                )
        qid, answer = entry["question_id"], entry["answer"]
        if not isinstance(qid, str) or not qid:
            raise AeqaError(f"{where}: field 'question_id' must be a non-empty string, got {qid!r}")
        if answer is not None and not isinstance(answer, str):
            raise AeqaError(
                f"{where} (question_id {qid!r}): field 'answer' must be a string or null, "
                f"got {answer!r}"
            )
        if qid in first_index:
            raise AeqaError(
                f"{where}: question_id {qid!r} repeats entry {first_index[qid]}; "
                "give one prediction per question"
            )
        first_index[qid] = index
        predictions[qid] = answer
    logger.info("loaded %d predictions from %s", len(predictions), path)
    return predictions


def load_scores(path: str | Path, what: str = "scores") -> dict[str, float]:
    """A ``{question_id: score}`` file (OpenEQA's ``*-metrics.json``).

    Raises:
        AeqaError: missing or not JSON; not an object; a value that is not a number from 1
            to 5, or 0 (OpenEQA's mark of a missing prediction): a file on another scale, such
            as 0-100, would be clipped into nonsense.
    """
    path = Path(path)
    data = read_json_file(path, what, "a JSON object {question_id: score}")
    if not isinstance(data, dict):
        raise AeqaError(
            f"{path}: expected a JSON object {{question_id: score}}, got a JSON "
            f"{type(data).__name__}"
        )
    bad = [qid for qid, v in data.items() if not _finite_number(v)]
    if bad:
        raise AeqaError(
            f"{path}: the scores of {_ids_text(bad)} are not numbers (e.g. {data[bad[0]]!r}); "
            "each score is a number, 1 to 5"
        )
    # OpenEQA's own files hold 0 for a missing prediction (it counts as 1).
    outside = [qid for qid, v in data.items() if not (MIN_SCORE <= float(v) <= MAX_SCORE or v == 0)]
    if outside:
        raise AeqaError(
            f"{path}: the scores of {_ids_text(outside)} are outside 1 to 5 (e.g. "
            f"{data[outside[0]]!r}); give judge scores on the 1-5 scale (0: no prediction)"
        )
    return {str(qid): float(v) for qid, v in data.items()}


def load_path_lengths(path: str | Path) -> dict[str, float]:
    """A ``{question_id: metres}`` file (A-EQA's ``gt_path_length.json``).

    Raises:
        AeqaError: missing or not JSON; not an object; a value that is not a number >= 0.
    """
    path = Path(path)
    data = read_json_file(path, "path-length", "a JSON object {question_id: metres}")
    if not isinstance(data, dict):
        raise AeqaError(
            f"{path}: expected a JSON object {{question_id: metres}}, got a JSON "
            f"{type(data).__name__}"
        )
    _check_lengths(data, str(path))
    return {str(qid): float(v) for qid, v in data.items()}


def load_results(path: str | Path) -> dict[str, EpisodeOutcome]:
    """Per-episode results (``results.jsonl``) by question id; the first line of an id wins,
    and a torn last line (no newline) and lines that are not JSON (broken on disk) are skipped
    with a warning naming them.

    Raises:
        AeqaError: missing; a line that is not a JSON object; a missing or mistyped
            ``question_id``, ``path_length_m`` or ``error`` (the line is named).
    """
    path = Path(path)
    if not path.is_file():
        raise AeqaError(f"{path}: no such results file; check --results")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AeqaError(f"{path}: cannot read the results file ({e})") from e
    lines = data.split(b"\n")  # bytes: a line broken on disk breaks only itself
    torn = lines[-1]  # b"" where the file ends with a newline
    outcomes: dict[str, EpisodeOutcome] = {}
    corrupt: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            entry = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            if number == len(lines) and torn:
                logger.warning("%s: skipping a torn last line (%d bytes)", where, len(torn))
                break
            # A line broken on disk: its question counts as having no result (an error below
            # names it where it is scored), the others still score.
            corrupt.append(number)
            continue
        if not isinstance(entry, dict):
            raise AeqaError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        for key in ("question_id", "path_length_m", "error"):
            if key not in entry:
                raise AeqaError(
                    f"{where}: missing field {key!r}; each result needs question_id, "
                    "path_length_m and error"
                )
        qid, length, error = entry["question_id"], entry["path_length_m"], entry["error"]
        if not isinstance(qid, str) or not qid:
            raise AeqaError(f"{where}: field 'question_id' must be a non-empty string")
        if error is not None and not isinstance(error, str):
            raise AeqaError(f"{where}: field 'error' must be null or a message, got {error!r}")
        if length is not None and (not _finite_number(length) or float(length) < 0):
            raise AeqaError(
                f"{where}: field 'path_length_m' must be metres (a number >= 0) or null, "
                f"got {length!r}"
            )
        if length is None and error is None:
            raise AeqaError(
                f"{where}: field 'path_length_m' is null but 'error' is too; a finished "
                "episode records its path length"
            )
        if qid in outcomes:
            logger.info("%s: question %s repeats; the first line wins", where, qid)
            continue
        perception = entry.get("perception", "")
        mode = entry.get("mode", "aeqa")
        outcomes[qid] = EpisodeOutcome(
            qid,
            None if length is None else float(length),
            error,
            perception if isinstance(perception, str) else "",
            mode if isinstance(mode, str) else "aeqa",
        )
    if corrupt:
        numbers = ", ".join(str(n) for n in corrupt[:10]) + (" ..." if len(corrupt) > 10 else "")
        logger.warning(
            "%s: skipped %s %s (not JSON), so %s no result here (`aeqa evaluate "
            "--resume` on the run moves such lines to %s.corrupt)",
            path,
            "line" if len(corrupt) == 1 else "lines",
            numbers,
            "its question has" if len(corrupt) == 1 else "their questions have",
            path.name,
        )
    logger.info("loaded %d episode results from %s", len(outcomes), path)
    return outcomes


def check_known(ids: Iterable[str], known: Collection[str], source: str, questions: str) -> None:
    """Raise where ``ids`` (from the file ``source``) are not question ids of ``questions``.

    Raises:
        AeqaError: naming ``source``, the first few unknown ids and ``questions``.
    """
    unknown = [qid for qid in ids if qid not in known]
    if unknown:
        raise AeqaError(
            f"{source}: {len(unknown)} question ids are not in the question file "
            f"{questions}: {_ids_text(unknown)}; pass the question file these belong to"
        )


# --- the judged log ----------------------------------------------------------------------------


def judged_log_path(scores_path: str | Path) -> Path:
    """The judged log of a scores file: ``scores.jsonl`` beside ``scores.json``."""
    path = Path(scores_path)
    return path.with_suffix(".jsonl") if path.suffix == ".json" else Path(f"{path}.jsonl")


def prediction_sha256(prediction: str) -> str:
    """SHA-256 (hex) of a prediction's UTF-8 text: what a judged score is tied to."""
    return hashlib.sha256(prediction.encode("utf-8")).hexdigest()


def judge_id(info: Mapping[str, Any]) -> str:
    """A short hash of a judge's ``info()``: scores are reused only from the same judge."""
    text = json.dumps(dict(info), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class JudgedEntry:
    """One line of a judged log: the score a judge gave one prediction, or why it gave none.

    Attributes:
        question_id: the question.
        prediction_sha256: :func:`prediction_sha256` of the answer judged.
        judge: :func:`judge_id` of the judge.
        score: 1..5, or None where the judge failed.
        reason: the judge's reason for the score.
        error: the judge's error on one line (``score`` is then None).
    """

    question_id: str
    prediction_sha256: str
    judge: str
    score: int | None = None
    reason: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "question_id": self.question_id,
            "prediction_sha256": self.prediction_sha256,
            "judge": self.judge,
        }
        if self.score is not None:
            entry["score"] = self.score
            entry["reason"] = self.reason
        else:
            entry["error"] = self.error or "no score"
        return entry

    @classmethod
    def from_json(cls, data: Any) -> JudgedEntry:
        """Raises ValueError where ``data`` is not a judged-log entry."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        qid, sha, judge = data.get("question_id"), data.get("prediction_sha256"), data.get("judge")
        if not (isinstance(qid, str) and isinstance(sha, str) and isinstance(judge, str)):
            raise ValueError("needs question_id, prediction_sha256 and judge (strings)")
        if not (qid and sha and judge):
            raise ValueError("question_id, prediction_sha256 and judge must not be empty")
        score, error = data.get("score"), data.get("error")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5
        ):
            raise ValueError(f"score must be an integer 1..5, got {score!r}")
        if (score is None) == (error is None):
            raise ValueError("needs either a score or an error")
        return cls(qid, sha, judge, score, str(data.get("reason", "")), error and str(error))


class JudgedLog:
    """The judged log beside a scores file (see the module docstring), appended one line per
    judged question and flushed to disk at once, so scores judged before a crash or a failing
    judge are kept."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[JudgedEntry]:
        """The entries in file order; lines that are not entries (a torn last line after a
        crash, a line edited by hand) are skipped with a warning. A missing log has none.

        Raises:
            AeqaError: the log exists but cannot be read.
        """
        if not self.path.is_file():
            return []
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise AeqaError(f"{self.path}: cannot read the judged log ({e})") from e
        entries: list[JudgedEntry] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                entries.append(JudgedEntry.from_json(json.loads(line)))
            except ValueError as e:  # JSONDecodeError is a ValueError
                logger.warning(
                    "%s: line %d is not a judged entry (%s); skipped", self.path, number, e
                )
        return entries

    def append(self, entry: JudgedEntry) -> None:
        """Append ``entry`` as one line and flush it to disk.

        Raises:
            AeqaError: the log cannot be written.
        """
        line = (json.dumps(entry.to_json(), separators=(",", ":")) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # after a torn last line: start a line of our own
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise AeqaError(
                f"{self.path}: cannot append to the judged log ({e}); check --out"
            ) from e


def tie_scores(
    scores: Mapping[str, float],
    entries: Iterable[JudgedEntry],
    predictions: Mapping[str, str | None],
) -> tuple[dict[str, float], list[str]]:
    """The scores that a judged-log entry ties to the current prediction of their question
    (the same answer text, the same score), and the ids of the others, in ``scores`` order.

    A score of a question without a prediction (absent or null) is not tied.
    """
    tied_to: set[tuple[str, str, float]] = {
        (e.question_id, e.prediction_sha256, float(e.score)) for e in entries if e.score is not None
    }
    kept: dict[str, float] = {}
    untied: list[str] = []
    for qid, value in scores.items():
        prediction = predictions.get(qid)
        if prediction is not None and (qid, prediction_sha256(prediction), float(value)) in tied_to:
            kept[qid] = value
        else:
            untied.append(qid)
    return kept, untied


# --- judging and scoring -----------------------------------------------------------------------


def failed_ids(
    questions: Sequence[Question],
    predictions: Mapping[str, str | None] | None,
    results: Mapping[str, EpisodeOutcome] | None,
) -> set[str]:
    """Questions with no prediction (where predictions are given) or an episode error."""
    failed: set[str] = set()
    for q in questions:
        qid = q.question_id
        if predictions is not None and predictions.get(qid) is None:
            failed.add(qid)
        outcome = results.get(qid) if results is not None else None
        if outcome is not None and outcome.error is not None:
            failed.add(qid)
    return failed


def agent_lengths(
    questions: Sequence[Question],
    results: Mapping[str, EpisodeOutcome],
    failed: Collection[str],
    source: str = "the results",
) -> dict[str, float]:
    """``L_agent`` of every question that did not fail, from the episode results.

    Raises:
        AeqaError: a question that did not fail has no result (ids and ``source`` named).
    """
    lengths: dict[str, float] = {}
    missing: list[str] = []
    for q in questions:
        qid = q.question_id
        if qid in failed:
            continue
        outcome = results.get(qid)
        if outcome is None or outcome.path_length_m is None:
            missing.append(qid)
        else:
            lengths[qid] = outcome.path_length_m
    if missing:
        raise AeqaError(
            f"{source}: no episode result for {len(missing)} scored questions: "
            f"{_ids_text(missing)}; pass the results.jsonl of the same run"
        )
    return lengths


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split()) or "no message"
    if not isinstance(error, AeqaError):
        text = f"{type(error).__name__}: {text}"
    return redact(text)


def judge_predictions(
    questions: Sequence[Question],
    predictions: Mapping[str, str | None],
    judge: Judge,
    skip: Collection[str] = frozenset(),
    progress: bool = False,
    log: JudgedLog | None = None,
) -> tuple[dict[str, int], list[JudgeFailure]]:
    """Judge every question with a prediction, except those in ``skip``.

    A question the judge fails on (an unreachable endpoint, no score after the retries) is
    recorded and the rest are judged. With ``log``, each verdict and failure is appended to it
    the moment it is known, and a score the log already holds for the same prediction from the
    same judge is reused, not asked again.

    Returns:
        ``{question_id: score}`` of the judged questions, and the failures in question order.

    Raises:
        AeqaError: the log cannot be read or written.
    """
    from tqdm import tqdm

    todo = [
        q
        for q in questions
        if predictions.get(q.question_id) is not None and q.question_id not in skip
    ]
    this_judge = judge_id(judge.info())
    known: dict[tuple[str, str], int] = {}
    if log is not None:
        for entry in log.entries():
            if entry.judge == this_judge and entry.score is not None:
                known[(entry.question_id, entry.prediction_sha256)] = entry.score
    scores: dict[str, int] = {}
    failures: list[JudgeFailure] = []
    reused = 0
    for q in tqdm(todo, desc="judging", unit="answer", disable=None if progress else True):
        prediction = predictions[q.question_id]
        assert prediction is not None
        sha = prediction_sha256(prediction)
        if (q.question_id, sha) in known:
            scores[q.question_id] = known[(q.question_id, sha)]
            reused += 1
            continue
        try:
            verdict = judge.score(q, prediction)
        except Exception as e:  # one failing question must not cost the others their scores
            failure = JudgeFailure(q.question_id, _one_line(e))
            logger.warning("judge failed on %s: %s", q.question_id, failure.error)
            failures.append(failure)
            if log is not None:
                log.append(JudgedEntry(q.question_id, sha, this_judge, error=failure.error))
            continue
        logger.debug("%s: %d (%s)", q.question_id, verdict.score, verdict.reason)
        scores[q.question_id] = verdict.score
        if log is not None:
            reason = redact(" ".join(verdict.reason.split()))
            log.append(JudgedEntry(q.question_id, sha, this_judge, verdict.score, reason))
    if reused:
        logger.info("reused %d scores of unchanged predictions from %s", reused, log and log.path)
    return scores, failures


def score_predictions(
    questions: Sequence[Question],
    predictions: Mapping[str, str | None],
    judge: Judge,
    path_lengths_gt: Mapping[str, float] | None = None,
    results: Mapping[str, EpisodeOutcome] | None = None,
    fallback_scores: Mapping[str, float] | None = None,
    progress: bool = False,
    sources: Sources = Sources(),
    log: JudgedLog | None = None,
) -> tuple[dict[str, int], ScoreSummary]:
    """Judge the predictions and aggregate: the per-question scores and the summary.

    Questions without a prediction or with an episode error (in ``results``) fail and are not
    judged. Questions the judge fails on fail too and are listed in the summary's
    ``judge_failures``; the others are still judged. LLM-SPL is computed where both
    ``path_lengths_gt`` and ``results`` are given. ``log``: see :func:`judge_predictions`.

    Raises:
        AeqaError: prediction or result ids not among the questions; the log cannot be
            written; and :func:`aggregate`'s errors.
    """
    known = {q.question_id for q in questions}
    check_known(predictions, known, "the predictions", "of the scored questions")
    if results is not None:
        check_known(results, known, sources.agent_path_lengths, "of the scored questions")
    failed = failed_ids(questions, predictions, results)
    agent = (
        agent_lengths(questions, results, failed, sources.agent_path_lengths)
        if results is not None and path_lengths_gt is not None
        else None
    )
    scores, failures = judge_predictions(
        questions, predictions, judge, skip=failed, progress=progress, log=log
    )
    summary = aggregate(questions, scores, path_lengths_gt, agent, failed, fallback_scores, sources)
    summary.judge = judge.info()
    summary.judge_failures = failures
    return scores, summary


@dataclass
class ScoreRun:
    """What :func:`score_files` did: the summary, and the scores file and judged log it wrote
    (None when re-aggregating)."""

    summary: ScoreSummary
    scores_path: Path | None
    log_path: Path | None = None


def score_files(
    questions_path: str | Path,
    predictions_path: str | Path | None = None,
    judge: Judge | None = None,
    scores_path: str | Path | None = None,
    path_lengths_path: str | Path | None = None,
    results_path: str | Path | None = None,
    fallback_scores_path: str | Path | None = None,
    out_path: str | Path | None = None,
    split: str = "all",
    subset_ids_path: str | Path | None = None,
    progress: bool = False,
) -> ScoreRun:
    """Score from files: judge ``predictions_path`` with ``judge`` and write the scores, or,
    with ``scores_path``, re-aggregate an existing ``{question_id: score}`` file (no judge).

    Args:
        questions_path: the question file (any format :func:`load_questions` reads).
        predictions_path: OpenEQA-format predictions; needed to judge; when re-aggregating,
            optional (questions without a prediction then fail).
        judge: the judge (needed unless ``scores_path`` is given).
        scores_path: an existing scores file to re-aggregate.
        path_lengths_path: ``{question_id: metres}`` of ``L_gt``; default: the questions'
            own ``gt_path_length_m`` where every question of the split has one.
        results_path: ``results.jsonl`` with ``L_agent`` and episode errors.
        fallback_scores_path: scores for failed questions.
        out_path: where to write the judged scores (default: ``scores.json`` beside the
            predictions); beside it, its judged log (``scores.jsonl``) is appended as the judge
            answers, and a score it holds for the same prediction from the same judge is
            reused. Unused when re-aggregating.
        split: ``all``, ``aeqa`` or ``aeqa-184`` (see :func:`select_split`).
        subset_ids_path: the id list of ``aeqa-184`` (``open-eqa-v0-184-questions.json``).

    Ids in the predictions, scores or results that are not in the question file are an error;
    ids in the file but outside the split are left out. Questions the judge fails on are
    recorded in the summary's ``judge_failures`` and the log, and count as failed; everything
    else is still judged and written.

    Re-aggregating with ``predictions_path`` where the scores file has its judged log beside
    it: a score whose prediction changed since it was judged is left out (the question fails)
    with a warning.

    Raises:
        AeqaError: a bad or missing file, unknown ids, a missing judge or predictions.
    """
    all_questions = load_questions(questions_path)
    questions = select_split(all_questions, split, subset_ids_path)
    in_file = {q.question_id for q in all_questions}
    in_split = {q.question_id for q in questions}
    sources_used = {"questions": str(questions_path), "split": split}
    where_questions = str(questions_path)

    def restrict(values: Mapping[str, Any], source: Path) -> dict[str, Any]:
        check_known(values, in_file, str(source), where_questions)
        kept = {k: v for k, v in values.items() if k in in_split}
        if len(kept) < len(values):
            logger.info(
                "%s: %d of %d ids are outside split %s and are left out",
                source,
                len(values) - len(kept),
                len(values),
                split,
            )
        return kept

    predictions: dict[str, str | None] | None = None
    if predictions_path is not None:
        predictions = restrict(load_predictions(predictions_path), Path(predictions_path))
        sources_used["predictions"] = str(predictions_path)
    results: dict[str, EpisodeOutcome] | None = None
    if results_path is not None:
        results = restrict(load_results(results_path), Path(results_path))
        sources_used["results"] = str(results_path)
    gt: dict[str, float] | None = None
    if path_lengths_path is not None:
        gt = load_path_lengths(path_lengths_path)
        sources_used["path_lengths"] = str(path_lengths_path)
    elif questions and all(q.path_length_m is not None for q in questions):
        # Generated sets carry their reference path lengths (gt_path_length_m).
        gt = {q.question_id: q.path_length_m for q in questions if q.path_length_m is not None}
        path_lengths_path = f"{questions_path} (gt_path_length_m)"
        sources_used["path_lengths"] = str(path_lengths_path)
    fallback: dict[str, float] | None = None
    if fallback_scores_path is not None:
        fallback = load_scores(fallback_scores_path, "fallback scores")
        sources_used["fallback_scores"] = str(fallback_scores_path)
    sources = Sources(
        scores=str(scores_path or "the judged scores"),
        path_lengths_gt=str(path_lengths_path),
        agent_path_lengths=str(results_path),
        fallback_scores=str(fallback_scores_path),
    )
    em_results = results is not None and any(r.mode == "em" for r in results.values())
    if gt is not None and em_results:
        # EM-EQA answers from a recorded history: the agent walked no path of its own.
        logger.info("results answered from episode histories (EM-EQA): LLM-SPL left out")
        gt = None
    if gt is not None and results is None:
        logger.warning("path lengths given without --results: LLM-SPL needs both; left out")
    if results is not None and gt is None and not em_results:
        logger.warning("results given without --path-lengths: LLM-SPL needs both; left out")

    if scores_path is not None:
        scores = restrict(load_scores(scores_path), Path(scores_path))
        sources_used["scores"] = str(scores_path)
        log_path = judged_log_path(scores_path)
        if predictions is not None and log_path.is_file():
            scores, untied = tie_scores(scores, JudgedLog(log_path).entries(), predictions)
            if untied:
                logger.warning(
                    "%s: %d scores are not for the current predictions (%s; the answer changed "
                    "or is missing since %s); they count as failed: run aeqa score "
                    "--predictions again to judge them",
                    scores_path,
                    len(untied),
                    _ids_text(untied),
                    log_path,
                )
        failed = failed_ids(questions, predictions, results)
        failed |= in_split - set(scores)
        agent = (
            agent_lengths(questions, results, failed, str(results_path))
            if results is not None and gt is not None
            else None
        )
        summary = aggregate(questions, scores, gt, agent, failed, fallback, sources)
        summary.sources = sources_used
        summary.labels = _labels(questions, results)
        return ScoreRun(summary, None)

    if predictions is None or predictions_path is None:
        raise AeqaError("nothing to score: pass --predictions FILE (or --scores FILE)")
    if judge is None:
        raise AeqaError("judging predictions needs a judge; pass --judge offline or openai")
    out = Path(out_path) if out_path is not None else Path(predictions_path).parent / "scores.json"
    log = JudgedLog(judged_log_path(out))
    judged, summary = score_predictions(
        questions, predictions, judge, gt, results, fallback, progress, sources, log
    )
    write_scores(out, judged)
    sources_used["scores"] = str(out)
    sources_used["judged_log"] = str(log.path)
    summary.sources = sources_used
    summary.labels = _labels(questions, results)
    return ScoreRun(summary, out, log.path)


def _labels(
    questions: Sequence[Question], results: Mapping[str, EpisodeOutcome] | None
) -> ResultLabels:
    return label_results(questions, (r.perception for r in (results or {}).values()))


def write_scores(path: str | Path, scores: Mapping[str, int | float]) -> Path:
    """Write ``{question_id: score}`` (indent 2, as OpenEQA's metrics files).

    Raises:
        AeqaError: an unwritable path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(scores), indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise AeqaError(f"{path}: cannot write the scores file ({e}); check --out") from e
    logger.info("wrote %d scores to %s", len(scores), path)
    return path


__all__ = [
    "CategoryScore",
    "EpisodeOutcome",
    "JudgeFailure",
    "JudgedEntry",
    "JudgedLog",
    "ScoreRun",
    "ScoreSummary",
    "Sources",
    "agent_lengths",
    "aggregate",
    "check_known",
    "failed_ids",
    "judge_id",
    "judge_predictions",
    "judged_log_path",
    "llm_match",
    "llm_spl",
    "load_path_lengths",
    "load_predictions",
    "load_results",
    "load_scores",
    "normalized_score",
    "prediction_sha256",
    "score_files",
    "score_predictions",
    "spl_weight",
    "tie_scores",
    "write_scores",
]

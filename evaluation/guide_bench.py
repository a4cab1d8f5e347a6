"""Guided-exploration benchmark: answers and steps of ``explorer.score=vlm`` against full
exploration, on generated questions about generated scenes.

Both modes answer the same questions from the same start poses with the same answering head
(the offline ``memory`` head by default) and are judged by the offline judge:

- ``full``: the ``info_gain`` explorer explores until nothing is left or the budget is spent,
  then the head answers. Its path does not depend on the question, so one episode per scene
  serves all that scene's questions (each question is answered from that episode's memory and
  counts that episode's steps), exactly as separate episodes with the same seed would.
- ``guided``: one episode per question with ``explorer.score=vlm``: the head chooses frontiers
  and ends the episode once it answers with ``explorer.vlm_confidence``.

The figures that compare the modes are LLM-Match (offline judge), the share of answers the judge
gives full marks, and the mean steps, with the guided / full ratio of steps.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.episode import Episode, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.envs.simulator import make_simulator
from aeqa.evaluation.batch import episode_spec, explore_once
from aeqa.evaluation.judges import MAX_SCORE, OfflineJudge
from aeqa.evaluation.questions import CATEGORIES, Question, generate_questions
from aeqa.evaluation.scoring import llm_match

logger = logging.getLogger(__name__)

#: OpenEQA's categories whose generated questions are about one object (its colour, material,
#: size, state, or where it is)
SINGLE_OBJECT_CATEGORIES: tuple[str, ...] = (
    "attribute recognition",
    "object state recognition",
    "object localization",
)
MODES = ("full", "guided")


def bench_guide(
    size: str = "house",
    scenes: int = 5,
    seed: int = 0,
    per_scene: int = 14,
    categories: Sequence[str] = SINGLE_OBJECT_CATEGORIES,
    answerer: str = "memory",
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Answers and steps of guided against full exploration.

    Args:
        size: generated scene size (``apartment`` or ``house``).
        scenes: generated scenes (seeded with ``seed``).
        per_scene: questions generated per scene over all seven categories, of which those in
            ``categories`` are asked.
        answerer: the head (a name or YAML file, as ``aeqa explore --answerer``).
        overrides: ``key=value`` overrides of the ``discrete`` preset, for both modes.
        out_dir: keep the episodes here (default: a temporary folder, removed).

    Returns:
        A JSON-able dict: per mode ``llm_match``, ``full_marks`` (share of answers scored 5),
        ``steps`` (mean), ``model_calls`` and ``model_time_s`` (means per question),
        ``stop_reasons``; ``steps_ratio`` (guided / full), ``questions``, ``per_category`` and
        ``per_question`` records, ``wall_s`` per mode.

    Raises:
        AeqaError: an unknown category, or no generated question in ``categories``.
    """
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise AeqaError(
            f"unknown question categories {unknown}; use OpenEQA's: {', '.join(CATEGORIES)}"
        )
    common = [f"seed={seed}", "save_memory=true", *overrides]
    configs = {
        "full": resolve_episode_config("discrete", answerer, [*common, "explorer.score=info_gain"]),
        "guided": resolve_episode_config("discrete", answerer, [*common, "explorer.score=vlm"]),
    }
    judge = OfflineJudge(configs["full"].answerer.embedding_model)
    records: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    walls = dict.fromkeys(MODES, 0.0)
    with tempfile.TemporaryDirectory(prefix="aeqa-bench-guide-") as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)
        paths = generate_scenes(root / "scenes", scenes, seed, size=size)
        questions = [
            q for q in generate_questions(paths, per_scene, seed) if q.category in categories
        ]
        if not questions:
            raise AeqaError(
                f"no generated question in {', '.join(categories)}; raise per_scene ({per_scene})"
            )
        sim = make_simulator(configs["full"].sim)
        try:
            full = Episode(sim, configs["full"])
            guided = Episode(sim, configs["guided"], full.answerer)
            for path in paths:
                asked = [q for q in questions if q.scene == str(path)]
                if not asked:
                    continue
                started = time.perf_counter()
                records["full"] += _full(full, asked, root / "full" / path.name, judge)
                walls["full"] += time.perf_counter() - started
                started = time.perf_counter()
                for q in asked:
                    result = guided.run(episode_spec(q))
                    records["guided"].append(_record(q, result.to_json(), judge))
                walls["guided"] += time.perf_counter() - started
        finally:
            sim.close()
    summary: dict[str, Any] = {mode: _summary(records[mode]) for mode in MODES}
    full_steps = summary["full"]["steps"]
    summary["steps_ratio"] = (
        round(summary["guided"]["steps"] / full_steps, 3) if full_steps > 0 else None
    )
    summary["per_category"] = {
        category: {
            mode: _summary([r for r in records[mode] if r["category"] == category])
            for mode in MODES
        }
        for category in categories
        if any(r["category"] == category for r in records["full"])
    }
    summary.update(
        size=size,
        scenes=scenes,
        seed=seed,
        questions=len(questions),
        categories=list(categories),
        answerer=configs["full"].answerer.type,
        perception=configs["full"].perception.type,
        max_steps=configs["full"].explorer.max_steps,
        vlm_confidence=configs["guided"].explorer.vlm_confidence,
        wall_s={mode: round(walls[mode], 1) for mode in MODES},
        per_question={mode: records[mode] for mode in MODES},
    )
    return summary


def _full(
    episode: Episode, questions: list[Question], folder: Path, judge: OfflineJudge
) -> list[dict[str, Any]]:
    """One full exploration for the scene of ``questions`` (they share its start), then every
    question answered from its memory."""
    shared = explore_once(episode, questions, folder)
    explored = shared.result.to_json()
    records = []
    for q, answer, answer_s in zip(questions, shared.answers, shared.answer_s, strict=True):
        entry = dict(
            explored,
            question_id=q.question_id,
            answer=answer.text,
            confidence=answer.confidence,
            # The exploration's own calls (none for info_gain) and this question's answer.
            model_calls=explored["model_calls"],
            model_time_s=round(answer_s, 3),
        )
        records.append(_record(q, entry, judge))
    return records


def _record(question: Question, result: dict[str, Any], judge: OfflineJudge) -> dict[str, Any]:
    verdict = judge.score(question, str(result["answer"]))
    return {
        "question_id": question.question_id,
        "category": question.category,
        "question": question.question,
        "reference": question.answer,
        "answer": result["answer"],
        "confidence": result["confidence"],
        "score": verdict.score,
        "steps": result["steps"],
        "stop_reason": result["stop_reason"],
        "model_calls": result["model_calls"],
        "model_time_s": result["model_time_s"],
    }


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    if not records:
        return {"questions": 0}
    reasons: dict[str, int] = {}
    for r in records:
        reasons[r["stop_reason"]] = reasons.get(r["stop_reason"], 0) + 1
    return {
        "questions": len(records),
        "llm_match": round(llm_match(r["score"] for r in records), 2),
        "full_marks": round(float(np.mean([r["score"] == MAX_SCORE for r in records])), 3),
        "steps": round(float(np.mean([r["steps"] for r in records])), 1),
        "model_calls": round(float(np.mean([r["model_calls"] for r in records])), 2),
        "model_time_s": round(float(np.mean([r["model_time_s"] for r in records])), 3),
        "stop_reasons": dict(sorted(reasons.items())),
    }

"""EM-EQA batches: questions answered from recorded episode histories instead of exploring.

OpenEQA's ``episode_history`` names each question's history folder under a histories root
(``hm3d-v0/000-hm3d-BFRyYbPCCPE``, ``scannet-v0/002-scannet-scene0709_00``, ``generated/NAME``
for generated sets, as ``aeqa explore --export-history`` writes them). :func:`plan_histories`
groups the questions by history, so a worker reads each history into memory once, and
:class:`HistoryWorker` answers them; :func:`aeqa.evaluation.batch.run_batch` runs them with
``mode="em"`` on the same engines, results files, resume and summary as explored runs.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from aeqa.envs.errors import AeqaError
from aeqa.evaluation.batch import (
    EpisodeTimeout,
    SceneGroup,
    WorkItem,
    describe_failure,
    failed_result,
    time_limit,
    timeout_error,
    write_error_details,
)
from aeqa.evaluation.questions import Question, hm3d_scene_name
from aeqa.evaluation.results import episode_dir_name

if TYPE_CHECKING:
    from aeqa.agents.episode import EpisodeConfig, EpisodeResult

logger = logging.getLogger(__name__)

#: the run modes of a batch: ``aeqa`` explores each question's scene, ``em`` answers from its
#: episode history
MODES: tuple[str, ...] = ("aeqa", "em")
_HM3D_FOLDER_RE = re.compile(r"^\d{5}-[A-Za-z0-9]{11}$")


def resolve_history(question: Question, histories_root: Path) -> Path | None:
    """The history folder of a question: ``root/<episode_history>``; for a 3D-Mem entry (its
    ``episode_history`` the HM3D folder ``00826-HASH``), OpenEQA's ``root/hm3d-v0/NNN-hm3d-HASH``;
    None where there is none."""
    direct = histories_root / question.episode_history
    if question.episode_history and direct.is_dir():
        return direct
    if _HM3D_FOLDER_RE.match(question.episode_history):
        name = hm3d_scene_name(question.episode_history)
        found = sorted((histories_root / "hm3d-v0").glob(f"*-hm3d-{name}"))
        if found:
            return found[0]
    return None


def plan_histories(
    questions: Sequence[Question], histories_root: str | Path
) -> tuple[list[SceneGroup], list[tuple[Question, str]]]:
    """Find every question's history and group the questions by it.

    Returns:
        The groups (``SceneGroup.scene`` and ``WorkItem.scene`` hold the history folder,
        absolute), sorted by folder and each by question id, and the questions whose history
        is missing, with the reason.

    Raises:
        AeqaError: repeated question ids, or a histories root that does not exist.
    """
    ids = [q.question_id for q in questions]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise AeqaError(f"question ids repeat ({', '.join(repeated[:5])}); ids must be unique")
    for qid in ids:
        episode_dir_name(qid)  # raises for an id too long to be a folder name
    root = Path(histories_root)
    if not root.is_dir():
        raise AeqaError(
            f"{root}: the histories root does not exist; point --histories-root at the folder "
            "holding the episode histories (OpenEQA's data/frames, with hm3d-v0/ and "
            "scannet-v0/ in it)"
        )
    by_history: dict[str, list[WorkItem]] = {}
    missing: list[tuple[Question, str]] = []
    for q in questions:
        folder = resolve_history(q, root)
        if folder is None:
            missing.append(
                (
                    q,
                    f"episode history {q.episode_history!r} not found under {root} (looked for "
                    f"{root / q.episode_history}); extract it with OpenEQA's extract-frames.py "
                    "or write it with aeqa explore --export-history",
                )
            )
            continue
        history = str(folder.absolute())
        by_history.setdefault(history, []).append(WorkItem(q, history))
    groups = [
        SceneGroup(h, tuple(sorted(items, key=lambda item: item.question.question_id)))
        for h, items in sorted(by_history.items())
    ]
    return groups, missing


class HistoryWorker:
    """An answering head and the memory of the last history it read, reused across questions
    (:class:`aeqa.agents.em_episode.HistoryEpisode`); the counterpart of
    :class:`aeqa.evaluation.batch.EpisodeWorker` that needs no simulator."""

    def __init__(self, config: EpisodeConfig, history_format: str = "auto") -> None:
        from aeqa.agents.em_episode import HistoryEpisode

        self.config = config
        #: set after a timeout interrupted a question somewhere: the objects may be broken
        self.tainted = False
        self.episode = HistoryEpisode(config, history_format=history_format)

    def run(self, item: WorkItem, out_dir: Path | None, timeout_s: float | None) -> EpisodeResult:
        """Answer one question from its history (``item.scene``); never raises for a failed
        question (the record carries ``error``)."""
        from aeqa.agents.em_episode import HistorySpec

        q = item.question
        t0 = time.perf_counter()
        if out_dir is not None and out_dir.exists():
            shutil.rmtree(out_dir)  # a run that died mid-question may have left a partial folder
        answered: EpisodeResult | None = None
        try:
            with time_limit(timeout_s):
                return self.episode.run(HistorySpec(q.question, item.scene, q.question_id), out_dir)
        except EpisodeTimeout:
            self.tainted = True
            error = timeout_error(timeout_s)
            details = error + "\n"
        except Exception as e:
            error, details, answered = describe_failure(e)
        logger.warning("question %s failed: %s", q.question_id, error)
        write_error_details(out_dir, details)
        if answered is not None:
            return replace(answered, error=error)
        return replace(failed_result(q, item.scene, error, time.perf_counter() - t0), mode="em")

    def close(self) -> None:
        """Nothing to release (no simulator)."""


__all__ = ["MODES", "HistoryWorker", "plan_histories", "resolve_history"]

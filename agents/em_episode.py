"""EM-EQA episodes: answer a question from a recorded episode history, without exploring.

OpenEQA's episodic-memory setting: the agent is given the frames of an earlier episode (an
episode history, :mod:`aeqa.mapping.history`) instead of a scene to explore. The history is
read into the same :class:`SemanticMemory` an exploring episode builds, frame by frame, and the
answering head answers from it as it would after exploring; the ``hf`` and ``openai`` heads see
the keyframes the memory chose for the question.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from aeqa.agents.answerers.base import Answerer, check_question, make_answerer
from aeqa.agents.episode import EpisodeConfig, EpisodeResult, answer_episode
from aeqa.mapping.history import EpisodeHistory, memory_from_history
from aeqa.mapping.memory import SemanticMemory

logger = logging.getLogger(__name__)

#: ``stop_reason`` of an episode answered from a history
FROM_HISTORY = "history"


@dataclass
class HistorySpec:
    """What to answer: a question about the episode recorded in ``history`` (a folder)."""

    question: str
    history: str
    question_id: str = "episode"


@dataclass
class _Recalled:
    """A history read into memory, kept for the next question about the same history."""

    key: tuple[str, str]
    memory: SemanticMemory
    frames: int
    perception: str
    renderer: str
    start_position: list[float]
    start_rotation: list[float]
    read_s: float


class HistoryEpisode:
    """Answers questions from episode histories with one answering head, keeping the memory of
    the last history read (questions about one history come in a row in a batch).

    Args:
        config: the episode config: ``memory`` says how frames are fused, ``sim.agent`` is the
            agent of the occupancy map where a history's sidecar names none, ``answerer`` the
            head (unless ``answerer`` is given).
        history_format: ``auto``, ``hm3d`` or ``scannet`` (see :class:`EpisodeHistory`).
    """

    def __init__(
        self,
        config: EpisodeConfig,
        answerer: Answerer | None = None,
        history_format: str = "auto",
    ) -> None:
        self.config = config
        self.history_format = history_format
        self.answerer = answerer or make_answerer(config.answerer)
        self._recalled: _Recalled | None = None

    def recall(self, history: str | Path) -> SemanticMemory:
        """The memory built from ``history`` (read once, then reused while it is the last).

        Raises:
            AeqaError: the history is missing or malformed (the file and the fix named).
        """
        return self._recall(history).memory

    def _recall(self, history: str | Path) -> _Recalled:
        key = (str(Path(history).absolute()), self.history_format)
        if self._recalled is not None and self._recalled.key == key:
            return self._recalled
        self._recalled = None  # a failed read must not leave the previous history in place
        t0 = time.perf_counter()
        opened = EpisodeHistory(history, self.history_format)
        memory = memory_from_history(opened, self.config.memory, self.config.sim.agent)
        side = opened.sidecar
        sim = side.source.sim if side is not None else {}
        renderer = str(sim.get("renderer", "")) if sim.get("type") == "meshsim" else ""
        self._recalled = _Recalled(
            key=key,
            memory=memory,
            frames=memory.frames_integrated,
            perception="gt" if opened.has_semantic else "none",
            renderer=renderer or str(sim.get("type", "")),
            start_position=list(side.source.start_position) if side is not None else [],
            start_rotation=list(side.source.start_rotation) if side is not None else [],
            read_s=time.perf_counter() - t0,
        )
        return self._recalled

    def run(self, spec: HistorySpec, out_dir: Path | None = None) -> EpisodeResult:
        """Read the history (or reuse its memory) and answer; with ``out_dir``, the record is
        written to its ``episode.json``.

        The record's ``steps`` counts the frames read, ``stop_reason`` is ``history``, and there
        is no path or coverage (0): nothing was explored.

        Raises:
            AeqaError: a bad question, or a history that is missing or malformed.
            AnswerError: the answering head failed (``result`` carries the record).
        """
        t0 = time.perf_counter()
        question = check_question(spec.question)
        fresh = self._recalled is None or self._recalled.key != (
            str(Path(spec.history).absolute()),
            self.history_format,
        )
        recalled = self._recall(spec.history)
        # The read is counted for the first question of a history; the rest reuse it.
        times = {"read_history": round(recalled.read_s if fresh else 0.0, 3)}
        read = EpisodeResult(
            question_id=spec.question_id,
            question=question,
            answer="",
            confidence=0.0,
            object_ids=[],
            frame_ids=[],
            stop_reason=FROM_HISTORY,
            steps=recalled.frames,
            path_length_m=0.0,
            coverage=0.0,
            seen_area_m2=round(recalled.memory.occupancy.seen_area_m2, 3),
            wall_time_s=times,
            scene=str(spec.history),
            start_position=recalled.start_position,
            start_rotation=recalled.start_rotation,
            renderer=recalled.renderer,
            perception=recalled.perception,
            mode="em",
        )
        return answer_episode(
            self.answerer,
            question,
            recalled.memory,
            read,
            None,
            out_dir,
            time.perf_counter() - t0,
        )


__all__ = ["FROM_HISTORY", "HistoryEpisode", "HistorySpec"]

"""``aeqa visualize``'s work: pictures of an episode folder, or the report of a run folder.

Nothing here writes into the folders it reads except where ``out`` points (by default a
``viz/`` folder inside an episode, and the one file ``report.html`` inside a run);
result files are only ever read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aeqa.envs.errors import AeqaError
from aeqa.evaluation.results import RESULTS_FILE, SUMMARY_FILE
from aeqa.viz.data import is_episode_folder, load_episode, run_folder_of

logger = logging.getLogger(__name__)

#: files whose presence makes a folder a batch run (or an ``aeqa explore`` output)
RUN_MARKERS = (RESULTS_FILE, SUMMARY_FILE, "episodes")
EPISODE_OUT = "viz"


@dataclass
class VisualizeOptions:
    """What to draw and where.

    Attributes:
        out: output folder (default: ``EPISODE/viz`` or the run folder).
        questions: a question file for reference answers and categories.
        scores: a ``{question_id: score}`` file.
        video: write the episode video (episodes only).
        gif: write it as a GIF as well.
        fps: video frames per second.
        memory: write the memory renders (episodes only).
        judge: score with the offline judge where no scores file is found (runs).
        progress: show a progress bar (runs).
    """

    out: Path | None = None
    questions: Path | None = None
    scores: Path | None = None
    video: bool = True
    gif: bool = False
    fps: int = 8
    memory: bool = True
    judge: bool = True
    progress: bool = True


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def visualize(path: str | Path, options: VisualizeOptions | None = None) -> list[Path]:
    """Draw an episode folder's pictures and video, or a run folder's report.

    Returns:
        The files written.

    Raises:
        AeqaError: ``path`` does not exist or is neither an episode nor a run folder, or an
            option names a file that does not exist.
    """
    options = options or VisualizeOptions()
    path = Path(path)
    if not path.exists():
        raise AeqaError(
            f"{path}: no such file or folder; give an episode folder (with episode.json, "
            "trajectory.json or memory/) "
            "or a run folder (with results.jsonl and episodes/)"
        )
    if is_episode_folder(path):
        return visualize_episode(path, options)
    if is_run_folder(path):
        from aeqa.viz.report import write_report

        return write_report(path, options)
    what = "a file" if path.is_file() else "a folder"
    raise AeqaError(
        f"{path}: {what} that is neither an episode folder (episode.json, trajectory.json, "
        "memory/) nor a run folder (results.jsonl, summary.json, episodes/); pass "
        "RUN/episodes/<question_id> or RUN"
    )


def visualize_episode(folder: Path, options: VisualizeOptions) -> list[Path]:
    """``topdown.png``, ``episode.mp4`` (and ``.gif``), ``memory_top.png`` and
    ``memory_oblique.png`` of one episode, in ``options.out`` (default ``EPISODE/viz``).

    Raises:
        AeqaError: nothing of the episode can be drawn.
    """
    from aeqa.viz.sources import load_sources
    from aeqa.viz.topdown import build_topdown, render_topdown

    episode = load_episode(folder)
    if episode.problems:
        logger.warning("%s: %s; drawn without it", folder, "; ".join(episode.problems))
    run = run_folder_of(folder)
    answers = {episode.name: None if episode.result is None else episode.result.answer}
    sources = load_sources(run, answers, options.questions, options.scores, options.judge)
    question = sources.questions.get(episode.name)
    if question is not None:
        episode.reference = question.answer
        episode.category = question.category
    out = options.out or folder / EPISODE_OUT
    out.mkdir(parents=True, exist_ok=True)
    topdown = build_topdown(episode)
    written = [
        render_topdown(
            episode, topdown, out / "topdown.png", score=sources.scores.get(episode.name)
        )
    ]
    if options.video:
        from aeqa.viz.video import write_episode_video

        written.append(write_episode_video(episode, topdown, out / "episode.mp4", options.fps))
        if options.gif:
            written.append(write_episode_video(episode, topdown, out / "episode.gif", options.fps))
    if options.memory:
        from aeqa.viz.memory_render import render_memory

        if episode.memory_folder is None:
            logger.warning("%s: no memory to render", folder)
        else:
            try:
                written += render_memory(
                    episode.memory_folder, out, episode.evidence_ids, title=episode.name
                )
            except AeqaError as e:
                logger.warning("%s: memory not rendered (%s)", folder, e)
    return written

"""``aeqa visualize``: pictures of an episode (top-down map, video, memory renders) or the HTML
report of a batch run. The work is done by :func:`aeqa.viz.visualize.visualize`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from aeqa.envs.errors import AeqaError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``visualize`` command to ``subparsers`` (from ``add_subparsers``); returns its
    parser, whose ``handler`` default is :func:`run_visualize`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "visualize",
        help="draw an episode (map, video, memory) or a run's HTML report",
        description=(
            "For an episode folder (RUN/episodes/<question_id>): topdown.png, episode.mp4, "
            "memory_top.png and memory_oblique.png (default: in EPISODE/viz). For a run folder "
            "(aeqa evaluate or aeqa explore output): report.html with every episode's map "
            "(default: in the run folder). Result files are only read, never changed."
        ),
    )
    parser.add_argument("path", metavar="RUN_OR_EPISODE_DIR", help="a run or an episode folder")
    parser.add_argument(
        "--out", default=None, help="output folder (default: EPISODE/viz, or the run folder)"
    )
    parser.add_argument(
        "--questions",
        default=None,
        help="question file for reference answers and categories (default: one the run names)",
    )
    parser.add_argument(
        "--scores",
        default=None,
        help="{question_id: score} file (default: RUN/scores.json, else the offline judge "
        "where the questions are known)",
    )
    parser.add_argument("--gif", action="store_true", help="write the episode video as GIF too")
    parser.add_argument("--no-video", action="store_true", help="no episode video")
    parser.add_argument("--no-memory", action="store_true", help="no memory renders")
    parser.add_argument(
        "--no-judge", action="store_true", help="do not score with the offline judge"
    )
    parser.add_argument("--fps", type=int, default=8, help="video frames per second (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_visualize)
    return parser


def run_visualize(args: argparse.Namespace) -> int:
    """The ``visualize`` command: prints the files it wrote.

    Raises:
        AeqaError: a path that does not exist or is neither an episode nor a run folder, a
            bad option, or an unwritable output folder.
    """
    from aeqa.launch.config import check_output_dir
    from aeqa.viz.visualize import VisualizeOptions, visualize

    if not 1 <= args.fps <= 60:
        raise AeqaError(f"--fps must be between 1 and 60, got {args.fps}")
    if args.out:
        check_output_dir(Path(args.out))
    options = VisualizeOptions(
        out=Path(args.out) if args.out else None,
        questions=Path(args.questions) if args.questions else None,
        scores=Path(args.scores) if args.scores else None,
        video=not args.no_video,
        gif=args.gif,
        fps=args.fps,
        memory=not args.no_memory,
        judge=not args.no_judge,
        progress=not args.no_progress,
    )
    written = visualize(args.path, options)
    for path in written:
        sys.stdout.write(f"{path}\n")
    return 0

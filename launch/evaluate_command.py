"""``aeqa evaluate``: run a question set as a batch of episodes, resumable, locally or on Ray."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from aeqa.envs.errors import AeqaError

logger = logging.getLogger("aeqa")


def build_overrides(args: argparse.Namespace) -> list[str]:
    """The ``key=value`` config overrides the options stand for, after the user's own."""
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.max_steps is not None:
        overrides.append(f"explorer.max_steps={args.max_steps}")
    return overrides


def output_dir(args: argparse.Namespace, name: str) -> Path:
    """The run folder: ``--out``, or a new ``outputs/evaluate/<date>/<time>_<name>/``.

    Raises:
        AeqaError: ``--resume`` without ``--out`` (``run_batch`` checks that it holds a run).
    """
    from aeqa.launch.config import run_dir

    if args.resume:
        if not args.out:
            raise AeqaError(
                "--resume needs --out, the folder of the run to continue "
                "(outputs/evaluate/<date>/<time>_<name>)"
            )
        return Path(args.out)
    if args.out:
        return Path(args.out)
    return run_dir("evaluate", name)


def _say(line: str, stream: Any = None) -> None:
    """A line for the person at the terminal (the command's output, not a log record)."""
    (stream or sys.stdout).write(line + "\n")


def run_evaluate(args: argparse.Namespace) -> int:
    """The handler of ``aeqa evaluate``: prints where the results are and the counts; 1 where
    an episode failed (after every result file is written), else 0."""
    from aeqa.agents.episode import resolve_episode_config
    from aeqa.evaluation.batch import run_batch
    from aeqa.evaluation.questions import load_questions, select_split
    from aeqa.launch.config import check_episode_options, check_output_dir

    if args.limit is not None and args.limit < 1:
        raise AeqaError(f"--limit must be at least 1, got {args.limit}")
    if args.episode_timeout is not None and args.episode_timeout < 0:
        raise AeqaError(f"--episode-timeout must be positive (0: none), got {args.episode_timeout}")
    if args.ray_address and args.engine != "ray":
        raise AeqaError("--ray-address needs --engine ray")
    if args.mode == "em" and not args.histories_root:
        raise AeqaError(
            "--mode em answers from episode histories: pass --histories-root, the folder holding "
            "them (OpenEQA's data/frames, or folders written by aeqa explore --export-history)"
        )
    if args.mode != "em" and (args.histories_root or args.history_format != "auto"):
        raise AeqaError(
            "--histories-root and --history-format are for --mode em (answering from episode "
            "histories); add --mode em"
        )
    if args.mode == "em" and args.scenes_root:
        raise AeqaError("--scenes-root is for exploring; --mode em reads --histories-root")
    if args.retry_failed and not args.resume:
        raise AeqaError(
            "--retry-failed runs the failed episodes of an earlier run again: add --resume "
            "and that run's --out"
        )
    check_episode_options(args.seed, args.max_steps)
    if args.out:
        check_output_dir(Path(args.out))
    config = resolve_episode_config(
        args.preset, args.answerer, build_overrides(args), args.sim_preset, args.agent_preset
    )
    questions = select_split(load_questions(args.questions), args.split, args.subset_ids)
    if args.limit is not None:
        questions = questions[: args.limit]
    if not questions:
        raise AeqaError(f"{args.questions}: no questions in split {args.split!r}")
    name = f"{Path(args.questions).stem}_{args.split}" + ("_em" if args.mode == "em" else "")
    out = output_dir(args, name)
    try:
        summary = run_batch(
            questions,
            config,
            out,
            engine=args.engine,
            workers=args.workers,
            resume=args.resume,
            scenes_root=args.scenes_root,
            episode_timeout_s=args.episode_timeout or None,
            ray_address=args.ray_address,
            progress=not args.no_progress,
            gpus_per_worker=args.ray_gpus,
            retry_failed=args.retry_failed,
            mode=args.mode,
            histories_root=args.histories_root,
            history_format=args.history_format,
        )
    except BaseException:
        if not args.out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the new run folder, left empty by a run that failed before any episode
        raise
    if summary.mode == "em":
        _say("mode:     em (answered from episode histories, nothing explored)")
    _say(
        f"episodes: {summary.finished} of {summary.questions} recorded "
        f"({summary.succeeded} answered, {summary.failed} failed; {summary.ran} run now, "
        f"{summary.resumed} from before)"
    )
    if summary.ran:
        _say(
            f"time:     {summary.elapsed_s:.1f} s, {summary.episodes_per_s:.2f} episodes/s "
            f"({summary.engine}, {summary.workers or 'all'} workers)"
        )
    for failure in summary.failures[:5]:
        _say(f"failed:   {failure.question_id}: {failure.error}")
    if len(summary.failures) > 5:
        _say(f"failed:   ... {len(summary.failures) - 5} more in summary.json")
    for note in summary.labels.notes:
        _say(f"note:     {note}")
    _say(f"outputs:  {out} (predictions.json, results.jsonl, summary.json)")
    if summary.failed:
        _say(
            f"aeqa: {summary.failed} of {summary.questions} episodes failed (listed in "
            f"{out / 'summary.json'}); run them again with --resume --retry-failed --out {out}",
            sys.stderr,
        )
        return 1
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the ``aeqa`` subcommands (``parser.add_subparsers()``'s result)."""
    from aeqa.envs.geometry import HISTORY_CONVENTIONS
    from aeqa.evaluation.batch import DEFAULT_EPISODE_TIMEOUT_S, ENGINES
    from aeqa.evaluation.em import MODES
    from aeqa.evaluation.questions import SPLITS
    from aeqa.launch.config import add_preset_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="answer a question set episode by episode (resumable; local pool or Ray)",
        description=(
            "Run every question of a split as an episode and write results.jsonl (one line per "
            "finished episode), predictions.json (OpenEQA's format) and summary.json."
        ),
    )
    parser.add_argument(
        "--questions",
        required=True,
        help="question file: open-eqa-v0.json, aeqa_questions-*.json or a generated set",
    )
    parser.add_argument("--split", choices=SPLITS, default="all", help="default: all")
    parser.add_argument(
        "--subset-ids", default=None, help="id list for aeqa-184 (open-eqa-v0-184-questions.json)"
    )
    parser.add_argument(
        "--scenes-root", default=None, help="HM3D folder with the NNNNN-HASH scene folders"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="aeqa",
        help="aeqa: explore each question's scene (default); em: answer each question from its "
        "recorded episode history without exploring (OpenEQA's EM-EQA)",
    )
    parser.add_argument(
        "--histories-root",
        default=None,
        help="--mode em: the folder holding the episode histories, each at its question's "
        "episode_history (hm3d-v0/000-hm3d-HASH, scannet-v0/..., generated/NAME)",
    )
    parser.add_argument(
        "--history-format",
        choices=("auto", *HISTORY_CONVENTIONS),
        default="auto",
        help="--mode em: how the histories are stored (default auto: from the sidecar, the "
        "folder name or the frame files)",
    )
    add_preset_options(parser)
    parser.add_argument("--answerer", default="memory", help="memory, hf, openai or a YAML path")
    parser.add_argument("--engine", choices=ENGINES, default="local", help="default: local")
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster address (auto on a cluster node)"
    )
    parser.add_argument(
        "--ray-gpus", type=float, default=0.0, help="GPUs per Ray worker (a VLM head)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (local default 1; ray default: every CPU it has)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out, skipping finished ids"
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run the failed episodes again (answering again from the saved "
        "exploration where it finished)",
    )
    parser.add_argument(
        "--out", default=None, help="run folder (default: outputs/evaluate/<date>/<time>_<name>)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-steps", type=int, default=None, help="explorer step budget")
    parser.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    parser.add_argument(
        "--episode-timeout",
        type=float,
        default=DEFAULT_EPISODE_TIMEOUT_S,
        metavar="S",
        help=f"seconds one episode may take (default {DEFAULT_EPISODE_TIMEOUT_S:g}; 0: none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    parser.set_defaults(handler=run_evaluate)
    return parser

"""``aeqa score``: judge predictions and report LLM-Match / LLM-SPL, or re-aggregate a scores
file. The work is done by :func:`aeqa.evaluation.scoring.score_files`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from aeqa.envs.errors import AeqaError, redact

logger = logging.getLogger(__name__)

#: ``JudgeConfig`` fields -> the options that set them, for messages
JUDGE_OPTIONS = {
    "temperature": "--judge-temperature",
    "timeout_s": "--judge-timeout",
    "max_retries": "--judge-retries",
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``score`` command to ``subparsers`` (from ``add_subparsers``); returns its parser,
    whose ``handler`` default is :func:`run_score`."""
    from aeqa.evaluation.judges import JUDGES, JudgeConfig
    from aeqa.evaluation.questions import SPLITS

    defaults = JudgeConfig()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "score",
        help="judge predictions and report LLM-Match / LLM-SPL, or re-aggregate a scores file",
        description=(
            "Judge every prediction (writing {question_id: score}) and print LLM-Match, LLM-SPL "
            "and per-category scores; with --scores, re-aggregate an existing scores file "
            "without calling a judge. Questions with no prediction, or an error in --results, "
            "score 1 with LLM-SPL weight 0 unless --fallback-scores gives their score. Each "
            "verdict is appended to the judged log beside the scores file (scores.jsonl) as it "
            "comes; running again judges only what is not scored yet for the same predictions. "
            "Where the judge fails on some questions, the rest are judged, everything is "
            "written, and the command exits with status 1."
        ),
    )
    parser.add_argument(
        "--predictions", default=None, help='OpenEQA-format [{"question_id", "answer"}] file'
    )
    parser.add_argument("--questions", required=True, help="question file (e.g. open-eqa-v0.json)")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="score this split of the question file (default: all of it)",
    )
    parser.add_argument(
        "--subset-ids",
        default=None,
        help="id list for --split aeqa-184 (open-eqa-v0-184-questions.json)",
    )
    parser.add_argument("--judge", choices=JUDGES, default="offline", help="default: offline")
    parser.add_argument(
        "--judge-model", default=defaults.model, help=f"openai: default {defaults.model}"
    )
    parser.add_argument(
        "--judge-base-url",
        default="",
        help="openai: endpoint (default: $OPENAI_BASE_URL, then api.openai.com); key from "
        f"${defaults.api_key_env}",
    )
    parser.add_argument(
        "--judge-prompt",
        default=None,
        help="openai: prompt file with {question}, {answer}, {prediction} [, {extra_answers}]",
    )
    parser.add_argument("--judge-seed", type=int, default=defaults.seed)
    parser.add_argument("--judge-temperature", type=float, default=defaults.temperature)
    parser.add_argument(
        "--judge-timeout", type=float, default=defaults.timeout_s, help="seconds per request"
    )
    parser.add_argument(
        "--judge-retries", type=int, default=defaults.max_retries, help="retries per request"
    )
    parser.add_argument("--path-lengths", default=None, help="{question_id: metres} of L_gt")
    parser.add_argument(
        "--results", default=None, help="results.jsonl: path_length_m and error per question"
    )
    parser.add_argument(
        "--scores", default=None, help="re-aggregate this {question_id: score} file (no judge)"
    )
    parser.add_argument(
        "--fallback-scores", default=None, help="{question_id: score} for failed questions"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="scores file to write (default: scores.json beside predictions); its judged log "
        "(.jsonl) goes beside it",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_score)
    return parser


def run_score(args: argparse.Namespace) -> int:
    """The ``score`` command: 0, or 1 where the judge failed on some questions (after
    printing the summary and writing every score it gave).

    Raises:
        AeqaError: bad options or inputs (see :func:`aeqa.evaluation.scoring.score_files`).
    """
    from aeqa.envs.config import validate
    from aeqa.evaluation.judges import JudgeConfig, make_judge
    from aeqa.evaluation.scoring import score_files

    if args.scores is None and args.predictions is None:
        raise AeqaError("aeqa score needs --predictions FILE to judge, or --scores FILE")
    if args.subset_ids is not None and args.split != "aeqa-184":
        raise AeqaError("--subset-ids is the id list of --split aeqa-184; pass both or neither")
    judge = None
    config = JudgeConfig(
        type=args.judge,
        model=args.judge_model,
        base_url=args.judge_base_url,
        seed=args.judge_seed,
        temperature=args.judge_temperature,
        timeout_s=args.judge_timeout,
        max_retries=args.judge_retries,
        prompt_path=args.judge_prompt or "",
    )
    validate(config, names=JUDGE_OPTIONS)
    if args.scores is None:
        judge = make_judge(config)
    elif args.judge != "offline" or args.judge_prompt:
        logger.warning("--scores given: re-aggregating, no judge is called")
    run = score_files(
        args.questions,
        predictions_path=args.predictions,
        judge=judge,
        scores_path=args.scores,
        path_lengths_path=args.path_lengths,
        results_path=args.results,
        fallback_scores_path=args.fallback_scores,
        out_path=args.out,
        split=args.split,
        subset_ids_path=args.subset_ids,
        progress=not args.json,
    )
    summary = run.summary.to_json()
    if run.scores_path is not None:
        summary["scores_file"] = str(run.scores_path)
    if run.log_path is not None:
        summary["judged_log"] = str(run.log_path)
    print(json.dumps(summary) if args.json else format_summary(summary))  # noqa: T201
    failures = run.summary.judge_failures
    if failures:
        ids = ", ".join(f.question_id for f in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        message = (
            f"the judge failed on {len(failures)} questions ({ids}{more}; first: "
            f"{failures[0].error}); they count as failed. The other scores are in "
            f"{run.scores_path}; run the same command again to judge only the missing ones"
        )
        print(f"aeqa: error: {redact(message)}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """A summary (``ScoreSummary.to_json()``) as a short table."""

    def spl_text(value: float | None) -> str:
        return "   -" if value is None else f"{value:5.1f}"

    lines = [
        f"LLM-Match {summary['llm_match']:5.1f}   LLM-SPL {spl_text(summary['llm_spl'])}   "
        f"({summary['count']} questions, {summary['failed']} failed"
        + (f", {summary['fallback_used']} with fallback scores" if summary["fallback_used"] else "")
        + ")",
        f"{'category':<26} {'match':>6} {'spl':>6} {'count':>6}",
    ]
    for category, row in summary["by_category"].items():
        lines.append(
            f"{category:<26} {row['llm_match']:6.1f} {spl_text(row['llm_spl']):>6} "
            f"{row['count']:>6}"
        )
    judge = summary.get("judge") or {}
    if judge:
        lines.append(
            "judge: "
            + ", ".join(f"{k}={v}" for k, v in judge.items() if k not in ("prompt_sha256",))
        )
    for note in summary.get("labels", {}).get("notes", []):
        lines.append(f"note: {note}")
    for failure in summary.get("judge_failures", []):
        lines.append(f"not judged: {failure['question_id']}: {failure['error']}")
    if "scores_file" in summary:
        lines.append(f"scores: {summary['scores_file']}")
    return "\n".join(lines)

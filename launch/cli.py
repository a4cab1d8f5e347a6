"""The ``aeqa`` command line. Each subcommand parses its options and calls library code."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeqa.envs.errors import AeqaError, redact
from aeqa.launch import evaluate_command, score_command, visualize_command
from aeqa.launch.config import add_preset_options

if TYPE_CHECKING:
    from aeqa.evaluation.questions import Question

logger = logging.getLogger("aeqa")

Handler = Callable[[argparse.Namespace], int]


def _cmd_scenes_generate(args: argparse.Namespace) -> int:
    from aeqa.envs.scenegen import generate_scenes

    if args.count < 1:
        raise AeqaError(f"--count must be at least 1, got {args.count}")
    paths = generate_scenes(Path(args.out), args.count, args.seed, size=args.size)
    for path in paths:
        print(path)
    return 0


def _cmd_questions_generate(args: argparse.Namespace) -> int:
    from aeqa.evaluation.questions import generate_questions, generated_scenes_in, write_questions

    questions = generate_questions(
        generated_scenes_in(args.scenes), args.per_scene, args.seed, phrasing=args.phrasing
    )
    path = write_questions(args.out, questions)
    categories = sorted({q.category for q in questions})
    print(f"{len(questions)} questions over {len(categories)} categories: {path}")
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from aeqa.envs.bench import bench_sim
    from aeqa.envs.config import AT_LEAST_ONE, SimConfig, check_value, load_config

    check_value("--frames", args.frames, AT_LEAST_ONE, 40)
    # The keys are explore's (sim.width=...); the bare field names work too.
    overrides = [o.removeprefix("sim.") for o in args.overrides]
    if args.up:
        overrides.append(f"scene_up={args.up}")
    sim = load_config(SimConfig, [], overrides)
    result = bench_sim(
        scene=args.scene,
        frames=args.frames,
        seed=args.seed,
        sim=sim,
        habitat=args.sim == "habitat",
    )
    _print_result(result, args.json)
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from aeqa.agents.answerers.base import check_question
    from aeqa.agents.episode import (
        AnswerError,
        Episode,
        EpisodeSpec,
        resolve_episode_config,
        start_state,
    )
    from aeqa.envs.scene import resolve_scene_path
    from aeqa.envs.simulator import make_simulator
    from aeqa.launch.config import (
        check_episode_options,
        check_output_dir,
        run_dir,
        save_config,
    )

    check_episode_options(args.seed, args.max_steps)
    overrides = list(args.overrides)
    overrides.append(f"seed={args.seed}")
    if args.sim:
        overrides.append(f"sim.type={args.sim}")
    if args.max_steps is not None:
        overrides.append(f"explorer.max_steps={args.max_steps}")
    if args.up:
        overrides.append(f"sim.scene_up={args.up}")
    if args.save_frames:
        overrides.append("save_frames=true")
    config = resolve_episode_config(
        args.preset, args.answerer, overrides, args.sim_preset, args.agent_preset
    )
    scene = str(resolve_scene_path(args.scene)) if args.scene else None
    # Without --question, a generated scene's default question (its reference answer known).
    default = None
    if args.question is not None:
        check_question(args.question)
    elif scene is not None:
        default = _default_question(Path(scene), args.seed)
    start = start_state(args.start_position, args.start_rotation)
    if args.out:
        check_output_dir(Path(args.out))
    history = Path(args.export_history) if args.export_history else None
    if history is not None:
        _check_history_dir(history)
    elif args.history_format != "hm3d":
        raise AeqaError(
            "--history-format is the layout of --export-history; add --export-history DIR"
        )
    out = Path(args.out) if args.out else run_dir("explore", Path(scene or "generated").name)
    episode_dir = out / "episodes" / "explore"
    # What this command creates, removed again where it fails before the episode is written (a
    # bad scene or pose must not leave a folder that looks like a run).
    created_out = not args.out or not out.exists()
    created = [p for p in (out / "config.yaml", out / "scene", out / "episodes") if not p.exists()]
    if history is not None and not history.exists():
        created.append(history)
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
        if scene is None:
            from aeqa.envs.scenegen import generate_scene

            scene = str(generate_scene(out / "scene", "apartment", seed=args.seed))
            logger.info("generated %s", scene)
            if args.question is None:
                default = _default_question(Path(scene), args.seed)
        question = default.question if default is not None else args.question
        if args.json:
            _quiet_model_loading()
        sim = make_simulator(config.sim)
        try:
            episode = Episode(sim, config)
            # disable=None: a bar on a terminal, nothing in logs, pipes or with --json.
            bar_options = {"unit": "step", "disable": True if args.json else None}
            with tqdm(total=config.explorer.max_steps, desc="starting", **bar_options) as bar:
                result = episode.run(
                    EpisodeSpec(question, scene, "explore", start),
                    episode_dir,
                    bar,
                    history_dir=history,
                    history_format=args.history_format,
                )
                bar.set_description("done")
        finally:
            sim.close()
    except AnswerError as e:
        if isinstance(e.__cause__, AeqaError):
            raise AeqaError(f"{e.__cause__} (the exploration is saved in {episode_dir})") from e
        raise
    except BaseException:
        if not (episode_dir / "episode.json").exists():
            extra = [history] if created_out and history in created else []
            for path in [out, *extra] if created_out else created:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
    reference = default.answer if default is not None else None
    # As a batch run keeps its questions: aeqa visualize shows the reference and a score (and
    # none from an earlier run into the same folder).
    (out / "questions.json").unlink(missing_ok=True)
    if default is not None:
        from aeqa.evaluation.questions import write_questions

        write_questions(out / "questions.json", [replace(default, question_id="explore")])
    if args.json:
        extras = {"reference": reference, "outputs": str(out)}
        if history is not None:
            extras["history"] = str(history)
        print(json.dumps({**result.to_json(), **extras}))
        return 0
    print(f"question: {result.question}")
    print(f"answer:   {result.answer}  (confidence {result.confidence:.2f})")
    if reference is not None:
        print(f"reference: {reference}  (from the scene's ground truth)")
    print(
        f"steps {result.steps}, path {result.path_length_m:.1f} m, coverage "
        f"{100 * result.coverage:.1f}%, stop: {result.stop_reason}, "
        f"{result.wall_time_s['total']:.1f} s, answering head: {result.model_calls} "
        f"call{'' if result.model_calls == 1 else 's'} ({result.model_time_s:.1f} s)"
    )
    print(f"outputs:  {out}")
    if history is not None:
        print(f"history:  {history} ({result.steps + 1} frames, {args.history_format} layout)")
    return 0


def _check_history_dir(folder: Path) -> None:
    """Refuse an ``--export-history`` folder that is a file or already holds a history."""
    if folder.exists() and not folder.is_dir():
        raise AeqaError(f"{folder}: --export-history is a file; give a folder")
    if folder.is_dir() and any(folder.glob("*-rgb.png")):
        raise AeqaError(
            f"{folder}: already holds an episode history; give --export-history an empty or "
            "new folder"
        )


def _quiet_model_loading() -> None:
    """No download or weight-loading bars from Hugging Face libraries (with ``--json`` the
    terminal shows the result alone)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already: its switch was read at import
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _default_question(scene: Path, seed: int) -> Question:
    """The question asked where ``--question`` is not given, with its reference answer: the
    colour of a piece of furniture of a generated scene, from its ground truth.

    Raises:
        AeqaError: the scene is not a generated one (no ``NAME.scene.json``) or names no
            object alone.
    """
    from aeqa.envs.scene import scene_basename
    from aeqa.evaluation.questions import default_question

    basename = scene_basename(scene)
    if not (scene.exists() or basename.with_name(basename.name + ".glb").is_file()):
        raise AeqaError(f"{scene}: scene not found; check the path")
    if not basename.with_name(basename.name + ".scene.json").is_file():
        raise AeqaError(
            f"{scene}: --question is needed (only generated scenes carry the ground truth a "
            'default question is drawn from); e.g. --question "What is in the kitchen?"'
        )
    question = default_question(basename, seed)
    if question is None:
        raise AeqaError(f"{scene}: no object to ask about by default; give --question")
    return question


def _cmd_bench_mapping(args: argparse.Namespace) -> int:
    from aeqa.agents.recording import bench_mapping_on_scene

    result = bench_mapping_on_scene(scene=args.scene, frames=args.frames, seed=args.seed)
    _print_result(result, args.json)
    return 0


def _cmd_bench_explore(args: argparse.Namespace) -> int:
    from aeqa.agents.bench import bench_explore

    result = bench_explore(
        scenes=args.scenes,
        seed=args.seed,
        starts=args.starts,
        size=args.size,
        baseline_steps=args.baseline_steps,
    )
    _print_result(result, args.json)
    return 0


def _cmd_bench_guide(args: argparse.Namespace) -> int:
    from aeqa.evaluation.guide_bench import SINGLE_OBJECT_CATEGORIES, bench_guide

    if args.scenes < 1 or args.questions < 1:
        raise AeqaError("--scenes and --questions must be at least 1")
    result = bench_guide(
        size=args.size,
        scenes=args.scenes,
        seed=args.seed,
        per_scene=args.questions,
        categories=args.categories or SINGLE_OBJECT_CATEGORIES,
        answerer=args.answerer,
        overrides=args.overrides,
    )
    if not args.per_question:
        result.pop("per_question")
    _print_result(result, args.json)
    return 0


def _cmd_bench_evaluate(args: argparse.Namespace) -> int:
    from aeqa.evaluation.bench import bench_batch

    if args.workers < 2:
        raise AeqaError(f"--workers must be at least 2 (compared with 1), got {args.workers}")
    if args.questions < 1 or args.scenes < 1:
        raise AeqaError("--questions and --scenes must be at least 1")
    result = bench_batch(
        questions=args.questions,
        scenes=args.scenes,
        workers=args.workers,
        engines=args.engines,
        seed=args.seed,
    )
    _print_result(result, args.json)
    return 0


def _cmd_bench_perception(args: argparse.Namespace) -> int:
    from aeqa.evaluation.perception_bench import bench_perception

    if args.scenes < 1 or args.questions < 1 or args.steps < 1:
        raise AeqaError("--scenes, --questions and --steps must be at least 1")
    result = bench_perception(
        scenes=args.scenes,
        per_scene=args.questions,
        seed=args.seed,
        model=args.model,
        device=args.device,
        overrides=[f"explorer.max_steps={args.steps}", *args.overrides],
    )
    _print_result(result, args.json)
    return 0


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


class _RedactingFormatter(logging.Formatter):
    """Log lines with API keys redacted: a logged server reply may echo one."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose every command and subcommand takes ``--debug`` and
    ``--verbose``, so they work before and after a subcommand's name (``add_subparsers``
    makes its parsers of this class too)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # SUPPRESS: a subcommand's parser leaves the flag alone unless it is given there.
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        self.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log progress details",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aeqa", description="Active embodied question answering, headless.")
    parser.set_defaults(debug=False, verbose=False)
    commands = parser.add_subparsers(dest="command", required=True)

    scenes = commands.add_parser("scenes", help="generated scenes").add_subparsers(
        dest="scenes_command", required=True
    )
    generate = scenes.add_parser(
        "generate", help="write furnished apartments or houses in HM3D's file layout"
    )
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--count", type=int, default=1)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--size",
        choices=("apartment", "house", "split-level"),
        default="apartment",
        help="apartment: 3-7 rooms (default); house: 10-25 rooms, branching hallways, "
        "open plan, 120-300 m2 of navigable floor; split-level: an apartment and 3-4 rooms "
        "1.0-1.4 m higher beside it, joined by a stair hall",
    )
    generate.set_defaults(handler=_cmd_scenes_generate)

    explore = commands.add_parser(
        "explore", help="explore a scene, build the memory and answer a question"
    )
    explore.add_argument(
        "--scene",
        default=None,
        help="scene path, or a folder holding one scene (default: a generated apartment)",
    )
    explore.add_argument(
        "--question",
        default=None,
        help="the question to answer (default in a generated scene: the colour of a piece of "
        "its furniture, with the reference answer printed)",
    )
    explore.add_argument("--up", choices=("y", "z"), default=None, help="the scene file's up axis")
    explore.add_argument("--start-position", type=float, nargs=3, metavar=("X", "Y", "Z"))
    explore.add_argument("--start-rotation", type=float, nargs=4, metavar=("W", "X", "Y", "Z"))
    explore.add_argument("--sim", choices=("meshsim", "habitat"), default=None)
    add_preset_options(explore)
    explore.add_argument("--answerer", default="memory", help="memory, hf, openai or a YAML path")
    explore.add_argument("--max-steps", type=int, default=None, help="explorer step budget")
    explore.add_argument("--seed", type=int, default=0, help="scene, start and episode seed")
    explore.add_argument("--out", default=None, help="output folder (default: outputs/explore/...)")
    explore.add_argument("--save-frames", action="store_true", help="write every RGB frame")
    explore.add_argument(
        "--export-history",
        default=None,
        metavar="DIR",
        help="also write the episode's frames to DIR as an episode history in OpenEQA's layout "
        "(NNNNN-rgb.png, -depth.png, pose .txt, intrinsics), for aeqa evaluate --mode em",
    )
    explore.add_argument(
        "--history-format",
        choices=("hm3d", "scannet"),
        default="hm3d",
        help="--export-history layout: hm3d (default: habitat's Y-up world and OpenGL camera, "
        "depth / 10 m * 65535) or scannet (Z-up world, OpenCV camera, depth in millimetres)",
    )
    explore.add_argument(
        "--json", action="store_true", help="print one JSON object (the episode), no progress bar"
    )
    explore.add_argument("overrides", nargs="*", help="config overrides, key=value")
    explore.set_defaults(handler=_cmd_explore)

    questions = commands.add_parser("questions", help="question sets").add_subparsers(
        dest="questions_command", required=True
    )
    generate_questions = questions.add_parser(
        "generate", help="questions with ground-truth answers about generated scenes"
    )
    generate_questions.add_argument(
        "--scenes", required=True, help="folder of scenes written by `aeqa scenes generate`"
    )
    generate_questions.add_argument("--out", required=True, help="question file to write")
    generate_questions.add_argument("--per-scene", type=int, default=28, help="default: 28")
    generate_questions.add_argument("--seed", type=int, default=0)
    generate_questions.add_argument(
        "--phrasing",
        choices=("templates", "paraphrased"),
        default="templates",
        help="templates (default; shares wording with the memory head's tables) or "
        "paraphrased (the same questions in held-out wording)",
    )
    generate_questions.set_defaults(handler=_cmd_questions_generate)

    evaluate_command.register(commands)
    score_command.register(commands)
    visualize_command.register(commands)

    bench = commands.add_parser("bench", help="measure speed against in-run baselines")
    targets = bench.add_subparsers(dest="bench_command", required=True)
    sim = targets.add_parser("sim", help="renderer frame rates against a bare open3d ray cast")
    sim.add_argument("--scene", default=None, help="scene path (default: a generated apartment)")
    sim.add_argument("--up", choices=("y", "z"), default=None, help="the scene file's up axis")
    sim.add_argument(
        "--sim",
        choices=("meshsim", "habitat"),
        default="meshsim",
        help="habitat: habitat-sim's frame rate too, on the same scene and views",
    )
    sim.add_argument("--frames", type=int, default=40, help="poses per timing round")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.add_argument(
        "overrides", nargs="*", help="sim config overrides, sim.KEY=VALUE (e.g. sim.width=1280)"
    )
    sim.set_defaults(handler=_cmd_bench_sim)
    mapping = targets.add_parser(
        "mapping", help="memory integration rate against a bare open3d voxel down-sampling"
    )
    mapping.add_argument(
        "--scene", default=None, help="scene path (default: a generated apartment)"
    )
    mapping.add_argument("--frames", type=int, default=36, help="recorded 640x480 frames")
    mapping.add_argument("--seed", type=int, default=0)
    mapping.add_argument("--json", action="store_true", help="print one JSON object")
    mapping.set_defaults(handler=_cmd_bench_mapping)
    explore_bench = targets.add_parser(
        "explore",
        help="explorer coverage at 100/250/500 steps and steps to 90%% against a random walk "
        "and a nearest-frontier explorer",
    )
    explore_bench.add_argument("--scenes", type=int, default=5, help="generated scenes")
    explore_bench.add_argument("--seed", type=int, default=0)
    explore_bench.add_argument(
        "--size",
        choices=("apartment", "house", "split-level"),
        default="apartment",
        help="size of the generated scenes (default: apartment)",
    )
    explore_bench.add_argument(
        "--starts",
        choices=("random", "scene"),
        default="random",
        help="random: a seeded navigable pose per scene (default); scene: the scene's own start",
    )
    explore_bench.add_argument(
        "--baseline-steps",
        type=int,
        default=None,
        help="the random walk's and the nearest-frontier explorer's budget: they run until 90%% "
        "coverage or this many steps (default 2000, 4x the explorer's 500)",
    )
    explore_bench.add_argument("--json", action="store_true", help="print one JSON object")
    explore_bench.set_defaults(handler=_cmd_bench_explore)
    guide_bench = targets.add_parser(
        "guide",
        help="explorer.score=vlm (the answering head picks frontiers and stops) against full "
        "exploration: answers and steps on the same generated questions",
    )
    guide_bench.add_argument("--scenes", type=int, default=5, help="generated scenes")
    guide_bench.add_argument(
        "--size", choices=("apartment", "house"), default="house", help="default: house"
    )
    guide_bench.add_argument(
        "--questions",
        type=int,
        default=14,
        help="questions generated per scene over the seven categories (default 14), of which "
        "those in --categories are asked",
    )
    guide_bench.add_argument(
        "--categories",
        nargs="+",
        default=None,
        metavar="CATEGORY",
        help="OpenEQA categories asked, quoted (default: the single-object ones, "
        "'attribute recognition' 'object state recognition' 'object localization')",
    )
    guide_bench.add_argument("--answerer", default="memory", help="memory, hf, openai or YAML")
    guide_bench.add_argument("--seed", type=int, default=0)
    guide_bench.add_argument(
        "--per-question", action="store_true", help="include every question's record"
    )
    guide_bench.add_argument("--json", action="store_true", help="print one JSON object")
    guide_bench.add_argument(
        "overrides", nargs="*", help="episode config overrides for both modes, key=value"
    )
    guide_bench.set_defaults(handler=_cmd_bench_guide)
    evaluate_bench = targets.add_parser(
        "evaluate", help="batch throughput with N workers against 1 worker, same batch"
    )
    evaluate_bench.add_argument("--questions", type=int, default=12, help="batch size")
    evaluate_bench.add_argument("--scenes", type=int, default=4, help="generated apartments")
    evaluate_bench.add_argument("--workers", type=int, default=2, help="compared with 1")
    evaluate_bench.add_argument(
        "--engines", nargs="+", choices=("local", "ray"), default=["local", "ray"]
    )
    evaluate_bench.add_argument("--seed", type=int, default=0)
    evaluate_bench.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate_bench.set_defaults(handler=_cmd_bench_evaluate)
    perception_bench = targets.add_parser(
        "perception",
        help="memory-head accuracy and object recall with gt labels against a detector, on "
        "the same generated questions",
    )
    perception_bench.add_argument("--scenes", type=int, default=3, help="generated apartments")
    perception_bench.add_argument("--questions", type=int, default=6, help="questions per scene")
    perception_bench.add_argument("--steps", type=int, default=100, help="explorer step budget")
    perception_bench.add_argument(
        "--model",
        default=None,
        help="detector hub id or folder (OWLv2, OWL-ViT, Grounding DINO); default: "
        "google/owlv2-base-patch16-ensemble where downloaded, else a tiny random OWLv2",
    )
    perception_bench.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    perception_bench.add_argument("--seed", type=int, default=0)
    perception_bench.add_argument("--json", action="store_true", help="print one JSON object")
    perception_bench.add_argument(
        "overrides", nargs="*", help="episode config overrides, key=value (perception.mask=sam)"
    )
    perception_bench.set_defaults(handler=_cmd_bench_perception)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    existing = list(logging.getLogger().handlers)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=log_format)
    for log_handler in logging.getLogger().handlers:
        if log_handler not in existing:  # only the one set up here; others format their own
            log_handler.setFormatter(_RedactingFormatter(log_format))
    handler: Handler = args.handler
    try:
        return handler(args)
    except AeqaError as e:
        if args.debug:
            raise
        # A message may carry a server's reply, which may echo an API key.
        print(f"aeqa: error: {redact(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aeqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

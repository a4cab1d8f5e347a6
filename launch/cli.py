"""The ``aeqa`` command line. Each subcommand parses its options and calls library code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from envs.errors import AeqaError

logger = logging.getLogger("aeqa")

Handler = Callable[[argparse.Namespace], int]


def _cmd_scenes_generate(args: argparse.Namespace) -> int:
    from envs.scenegen import generate_scenes

    if args.count < 1:
        raise AeqaError(f"--count must be at least 1, got {args.count}")
    paths = generate_scenes(Path(args.out), args.count, args.seed)
    for path in paths:
        print(path)
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from envs.bench import bench_sim

    result = bench_sim(scene=args.scene, frames=args.frames, seed=args.seed)
    _print_result(result, args.json)
    return 0


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aeqa", description="Active embodied question answering, headless."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    scenes = commands.add_parser("scenes", help="generated scenes").add_subparsers(
        dest="scenes_command", required=True
    )
    generate = scenes.add_parser(
        "generate", help="write furnished apartments in HM3D's file layout"
    )
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--count", type=int, default=1)
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(handler=_cmd_scenes_generate)

    bench = commands.add_parser("bench", help="measure speed against in-run baselines")
    targets = bench.add_subparsers(dest="bench_command", required=True)
    sim = targets.add_parser("sim", help="renderer frame rates against a bare open3d ray cast")
    sim.add_argument("--scene", default=None, help="scene path (default: a generated apartment)")
    sim.add_argument("--frames", type=int, default=40, help="poses per timing round")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(handler=_cmd_bench_sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except AeqaError as e:
        if args.debug:
            raise
        print(f"aeqa: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aeqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

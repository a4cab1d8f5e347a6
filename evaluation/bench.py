"""Batch throughput benchmark: episodes per second with 1 and with N workers, on the same batch.

The batch is a generated question set (``questions`` questions over ``scenes`` generated
apartments, spread over OpenEQA's categories). Each engine runs it once per worker count into
its own run folder; the wall time is that of the whole :func:`~aeqa.evaluation.batch.run_batch`
call, worker start-up (imports, simulator, answering head) included, so the speed-up is what a
user sees. The 1-worker run is the baseline measured in the same process, so the ratio holds on
a shared, noisy machine where absolute rates do not. Predictions must be identical across all
runs; the result says whether they were.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aeqa.agents.episode import resolve_episode_config
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.batch import run_batch
from aeqa.evaluation.questions import generate_questions

logger = logging.getLogger(__name__)

#: episode settings of the benchmark: the ``discrete`` preset with a shorter step budget, so
#: a batch of 12 takes about a minute per run on 2 cores
BENCH_OVERRIDES = ("explorer.max_steps=100",)


def bench_batch(
    questions: int = 12,
    scenes: int = 4,
    workers: int = 2,
    engines: Sequence[str] = ("local", "ray"),
    seed: int = 0,
    overrides: Sequence[str] = BENCH_OVERRIDES,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Throughput of 1 and ``workers`` workers per engine on one generated batch.

    Args:
        questions: batch size (spread evenly over the scenes, rounded up per scene).
        scenes: generated apartments.
        workers: the worker count compared with 1.
        engines: ``local`` and/or ``ray`` (skipped with a note where Ray is not installed).
        overrides: ``key=value`` overrides of the ``discrete`` preset with the memory head.
        out_dir: keep the run folders here (default: a temporary folder, removed).

    Returns:
        A JSON-able dict: ``episodes_per_s`` (engine -> worker count as a string -> rate),
        ``speedup`` (engine -> rate with ``workers`` / rate with 1), ``wall_s``,
        ``identical_predictions``, ``failed`` and the batch's size.
    """
    per_scene = -(-questions // scenes)
    config = resolve_episode_config("discrete", "memory", list(overrides) + [f"seed={seed}"])
    rates: dict[str, dict[str, float]] = {}
    walls: dict[str, dict[str, float]] = {}
    predictions: set[str] = set()
    failed = 0
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aeqa-bench-batch-") as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)
        paths = generate_scenes(root / "scenes", scenes, seed)
        batch = generate_questions(paths, per_scene, seed)[:questions]
        for engine in engines:
            if engine == "ray" and not _has_ray():
                skipped.append("ray (not installed: pip install 'aeqa[ray]')")
                continue
            for count in (1, workers):
                run = root / f"{engine}-{count}"
                summary = run_batch(
                    batch, config, run, engine=engine, workers=count, progress=False
                )
                rates.setdefault(engine, {})[str(count)] = round(summary.episodes_per_s, 4)
                walls.setdefault(engine, {})[str(count)] = round(summary.elapsed_s, 2)
                failed += summary.failed
                predictions.add((run / "predictions.json").read_text(encoding="utf-8"))
                logger.info(
                    "%s, %d workers: %.3f episodes/s", engine, count, summary.episodes_per_s
                )
    result: dict[str, Any] = {
        "questions": len(batch),
        "scenes": scenes,
        "workers": workers,
        "cpus": os.cpu_count(),
        "episodes_per_s": rates,
        "wall_s": walls,
        "speedup": {
            engine: round(r[str(workers)] / r["1"], 3) for engine, r in rates.items() if r["1"]
        },
        "identical_predictions": len(predictions) <= 1,
        "failed": failed,
        "overrides": list(overrides),
    }
    if skipped:
        result["skipped"] = skipped
    return result


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["BENCH_OVERRIDES", "bench_batch"]

"""Perception benchmark: the ``gt`` labels (the simulator's semantic sensor) against an
open-vocabulary detector, on the same generated questions.

Per generated apartment, one episode per perception mode from the scene's start, each saving
its memory; the info-gain explorer does not look at labels, so both modes see the same frames
(the result says whether they did). Every question of the scene is then answered by the
``memory`` head from each mode's memory and scored with the offline judge (LLM-Match).

Object recall: of the scene's ground-truth objects the agent mapped (those its ``gt`` memory
holds: at least ``min_object_voxels`` voxels seen twice), the share each mode's object table
holds with the right category (the name or an accepted variant, as answers are judged) where
the object is (its centre within ``RECALL_MARGIN_M`` of the truth's box, or the truth's centre
within its box). Precision: the share of a table's objects that are such a ground-truth object.

The detector is the model given, else OWLv2's default checkpoint where it is downloaded, else
a tiny randomly initialised OWLv2 built on the spot (no hub access needed): then the result
says so, and its detector figures measure the pipeline, not a detector.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.answerers.base import make_answerer
from aeqa.agents.episode import Episode, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.envs.simulator import make_simulator
from aeqa.evaluation.batch import explore_once
from aeqa.evaluation.judges import OfflineJudge
from aeqa.evaluation.questions import (
    SYNONYMS,
    Question,
    SceneObject,
    generate_questions,
    load_scene_truth,
)
from aeqa.evaluation.scoring import llm_match
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import ObjectInstance
from aeqa.mapping.perception import DEFAULT_DETECTOR

logger = logging.getLogger(__name__)

MODES = ("gt", "detector")
#: how far (m) outside a ground-truth box an object's centre may lie and still be that object
RECALL_MARGIN_M = 0.15
#: episode settings: the ``discrete`` preset with a short budget, so a scene takes about a
#: minute per mode on 2 CPU cores with a tiny detector
BENCH_OVERRIDES = ("explorer.max_steps=100",)
#: what the result says of weights that are not a real detector's
TINY_NOTE = (
    "no detector weights here: a tiny randomly initialised OWLv2 built offline; the detector "
    "figures measure the pipeline, not a detector (give --model with downloaded weights)"
)


@dataclass
class DetectorWeights:
    """The detector a run used: ``model`` (hub id or folder) and ``kind``: ``given``,
    ``downloaded`` (the default checkpoint, found in the Hugging Face cache) or ``tiny-random``."""

    model: str
    kind: str


def downloaded(repo_id: str) -> bool:
    """Whether ``repo_id``'s config and weights are in the Hugging Face cache (no network)."""
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return False
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    return (folder / "config.json").is_file() and has_weights


def choose_weights(model: str | None, folder: Path, seed: int) -> DetectorWeights:
    """``model`` where given; else the default checkpoint where downloaded; else a tiny random
    OWLv2 saved in ``folder``."""
    if model:
        return DetectorWeights(model, "given")
    if downloaded(DEFAULT_DETECTOR):
        return DetectorWeights(DEFAULT_DETECTOR, "downloaded")
    from aeqa.mapping.tiny_detector import build_tiny_owlv2

    logger.warning("no detector weights here; running on a tiny random OWLv2")
    return DetectorWeights(str(build_tiny_owlv2(folder / "tiny-owlv2", seed=seed)), "tiny-random")


def same_category(detected: str, truth: str) -> bool:
    """Whether a table's category names a ground-truth one (the name or an accepted variant)."""
    return detected == truth or detected in SYNONYMS.get(truth, ())


def _near(obj: ObjectInstance, truth: SceneObject) -> bool:
    lo = np.asarray(truth.bbox_min) - RECALL_MARGIN_M
    hi = np.asarray(truth.bbox_max) + RECALL_MARGIN_M
    centre = (np.asarray(truth.bbox_min) + np.asarray(truth.bbox_max)) / 2.0
    inside_truth = bool(np.all((obj.centroid >= lo) & (obj.centroid <= hi)))
    holds_truth = bool(np.all((centre >= obj.bbox_min) & (centre <= obj.bbox_max)))
    return inside_truth or holds_truth


def matches(obj: ObjectInstance, truth: SceneObject) -> bool:
    """``obj`` of a table is ``truth``: its category, where it is."""
    return same_category(obj.category, truth.category) and _near(obj, truth)


@dataclass
class ModeRun:
    """One perception mode on one scene."""

    memory: SemanticMemory
    answers: list[str]
    scores: list[int]
    steps: int
    path_length_m: float
    explore_s: float
    frames: int


def bench_perception(
    scenes: int = 3,
    per_scene: int = 6,
    seed: int = 0,
    model: str | None = None,
    device: str = "auto",
    overrides: Sequence[str] = BENCH_OVERRIDES,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The ``memory`` head's LLM-Match and the object table's recall with ``gt`` labels and with
    a detector, on ``per_scene`` generated questions in each of ``scenes`` apartments.

    Args:
        model: the detector (hub id or folder); None: see :func:`choose_weights`.
        device: the detector's ``auto`` | ``cpu`` | ``cuda[:N]``.
        overrides: ``key=value`` overrides of the ``discrete`` preset (both modes).
        out_dir: keep the scenes and episode folders here (default: a temporary folder).

    Returns:
        A JSON-able dict: ``llm_match`` and ``object_recall`` / ``object_precision`` (mode ->
        value), ``table_objects``, ``objects_mapped``, ``s_per_frame`` (mode -> wall time of
        an exploration step, rendering included), ``same_frames``, ``detector`` (model, weights
        kind, note), ``per_scene`` details and the run's size.

    Raises:
        AeqaError: a bad count, or a detector that cannot be loaded.
    """
    from tqdm import tqdm

    if scenes < 1 or per_scene < 1:
        raise AeqaError("--scenes and --questions must be at least 1")
    with tempfile.TemporaryDirectory(prefix="aeqa-bench-perception-") as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)
        weights = choose_weights(model, root, seed)
        paths = generate_scenes(root / "scenes", scenes, seed)
        questions = generate_questions(paths, per_scene, seed)
        configs = {
            mode: resolve_episode_config(
                "discrete",
                "memory",
                [*overrides, f"seed={seed}", f"perception.type={mode}"]
                + (
                    [f"perception.model={weights.model}", f"perception.device={device}"]
                    if mode == "detector"
                    else []
                ),
            )
            for mode in MODES
        }
        judge = OfflineJudge()
        answerer = make_answerer(configs["gt"].answerer)
        sim = make_simulator(configs["gt"].sim)
        per_scene_rows: list[dict[str, Any]] = []
        runs: dict[str, list[ModeRun]] = {mode: [] for mode in MODES}
        mapped_total = 0
        detector_device = device
        recalled: dict[str, int] = dict.fromkeys(MODES, 0)
        true_objects: dict[str, int] = dict.fromkeys(MODES, 0)
        table_total: dict[str, int] = dict.fromkeys(MODES, 0)
        try:
            episodes = {mode: Episode(sim, configs[mode], answerer) for mode in MODES}
            perceiver = episodes["detector"].perceiver
            detector_device = perceiver.device if perceiver is not None else device
            for path in tqdm(paths, desc="perception", unit="scene"):
                asked = [q for q in questions if Path(q.scene) == Path(path)]
                if not asked:
                    continue
                row: dict[str, Any] = {"scene": path.name, "questions": len(asked)}
                for mode in MODES:
                    run = _run_mode(episodes[mode], path, asked, root / mode / path.name, judge)
                    runs[mode].append(run)
                truth = load_scene_truth(path)
                by_id = {o.instance_id: o for o in truth.objects}
                gt_ids = {o.instance_id for o in runs["gt"][-1].memory.objects()}
                mapped = [by_id[i] for i in sorted(gt_ids & set(by_id))]
                mapped_total += len(mapped)
                row["objects_mapped"] = len(mapped)
                for mode in MODES:
                    run = runs[mode][-1]
                    table = [o for o in run.memory.objects() if not o.structural]
                    hits = sum(any(matches(o, t) for o in table) for t in mapped)
                    real = sum(any(matches(o, t) for t in truth.objects) for o in table)
                    recalled[mode] += hits
                    true_objects[mode] += real
                    table_total[mode] += len(table)
                    row[mode] = {
                        "llm_match": round(llm_match(run.scores), 1),
                        "recall": round(hits / max(len(mapped), 1), 3),
                        "table_objects": len(table),
                        "steps": run.steps,
                    }
                per_scene_rows.append(row)
                logger.info(
                    "%s: recall gt %.2f, detector %.2f",
                    path.name,
                    row["gt"]["recall"],
                    row["detector"]["recall"],
                )
        finally:
            sim.close()
    same_frames = all(
        (g.steps, g.path_length_m) == (d.steps, d.path_length_m)
        for g, d in zip(runs["gt"], runs["detector"], strict=True)
    )
    result: dict[str, Any] = {
        "scenes": scenes,
        "questions": sum(len(r.scores) for r in runs["gt"]),
        "seed": seed,
        "overrides": list(overrides),
        "detector": {
            "model": weights.model if weights.kind != "tiny-random" else "tiny-random-owlv2",
            "weights": weights.kind,
            "device": detector_device,
            "vocabulary": configs["detector"].perception.vocabulary,
        },
        "llm_match": {
            mode: round(llm_match([s for r in runs[mode] for s in r.scores]), 1) for mode in MODES
        },
        "object_recall": {mode: round(recalled[mode] / max(mapped_total, 1), 3) for mode in MODES},
        "object_precision": {
            mode: round(true_objects[mode] / max(table_total[mode], 1), 3) for mode in MODES
        },
        "objects_mapped": mapped_total,
        "table_objects": table_total,
        "s_per_frame": {
            mode: round(
                sum(r.explore_s for r in runs[mode]) / max(sum(r.frames for r in runs[mode]), 1),
                4,
            )
            for mode in MODES
        },
        "same_frames": same_frames,
        "per_scene": per_scene_rows,
    }
    if weights.kind == "tiny-random":
        result["detector"]["note"] = TINY_NOTE
    return result


def _run_mode(
    episode: Episode, scene: Path, asked: list[Question], out: Path, judge: OfflineJudge
) -> ModeRun:
    """Explore ``scene`` once from its start with ``episode``'s perception, then answer and
    judge every question of ``asked`` from the memory it saved."""
    started = time.perf_counter()
    shared = explore_once(episode, asked, out, scene)
    elapsed = time.perf_counter() - started
    result, memory = shared.result, shared.memory
    answers = [a.text for a in shared.answers]
    scores = [judge.score(q, a).score for q, a in zip(asked, answers, strict=True)]
    return ModeRun(
        memory=memory,
        answers=answers,
        scores=scores,
        steps=result.steps,
        path_length_m=result.path_length_m,
        explore_s=float(result.wall_time_s.get("explore", elapsed)),
        frames=result.steps + 1,
    )


__all__ = ["BENCH_OVERRIDES", "MODES", "bench_perception", "choose_weights", "same_category"]

"""The object table against a generated apartment's ground truth, explored to full coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.scenegen import generate_scene
from aeqa.mapping.memory import MemoryConfig, SemanticMemory
from aeqa.mapping.objects import STRUCTURAL
from tests.scenes import look_around_everywhere

MIN_PIXELS = 50


def _explore_fully(scene: Path, object_mode: str) -> tuple[SemanticMemory, dict[int, int], dict]:
    memory, largest, sim = look_around_everywhere(scene, MemoryConfig(object_mode=object_mode))
    truth = sim.scene.ground_truth  # type: ignore[attr-defined]
    sim.close()
    return memory, largest, truth


@pytest.fixture(scope="module")
def apartment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scene(tmp_path_factory.mktemp("apt"), "apt", seed=7, num_rooms=4)


def _seen_objects(truth: dict, largest: dict[int, int]) -> list[dict]:
    return [
        o
        for o in truth["objects"]
        if o["category"] not in STRUCTURAL and largest.get(o["instance_id"], 0) >= MIN_PIXELS
    ]


def test_instances_seen_appear_once_with_their_category(apartment: Path) -> None:
    memory, largest, truth = _explore_fully(apartment, "instances")
    seen = _seen_objects(truth, largest)
    assert len(seen) >= 15
    table = {o.instance_id: o for o in memory.objects()}
    found = [
        o
        for o in seen
        if o["instance_id"] in table and table[o["instance_id"]].category == o["category"]
    ]
    assert len(found) / len(seen) >= 0.95
    ids = [o.instance_id for o in memory.objects() if o.instance_id > 0]
    assert len(ids) == len(set(ids))


def test_clustering_without_ids_finds_objects_once(apartment: Path) -> None:
    memory, largest, truth = _explore_fully(apartment, "clusters")
    seen = _seen_objects(truth, largest)
    objects = [o for o in memory.objects() if not o.structural]
    matched = 0
    duplicated = 0
    for gt in seen:
        lo, hi = np.array(gt["bbox_min"]), np.array(gt["bbox_max"])
        centre = (lo + hi) / 2
        hits = [
            o
            for o in objects
            if o.category == gt["category"]
            and np.all(np.abs(o.centroid - centre) < (hi - lo) / 2 + 0.1)
        ]
        matched += bool(hits)
        duplicated += len(hits) > 1
    assert matched / len(seen) >= 0.9
    assert duplicated / len(seen) <= 0.05

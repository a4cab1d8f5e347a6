"""``aeqa bench perception``: gt labels against a detector on the same generated questions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aeqa.evaluation.perception_bench import (
    TINY_NOTE,
    choose_weights,
    downloaded,
    matches,
    same_category,
)
from aeqa.evaluation.questions import SceneObject
from aeqa.launch.cli import main
from aeqa.mapping.objects import build_object
from tests.agents.tiny_vlm import force_hub_offline


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    force_hub_offline(monkeypatch)


def _truth(category: str) -> SceneObject:
    return SceneObject(
        instance_id=4,
        category=category,
        color_name="red",
        state=None,
        size=None,
        material=None,
        region_id=0,
        supported_by=None,
        wall_mounted=False,
        bbox_min=(0.0, 0.0, 0.0),
        bbox_max=(1.0, 1.0, 1.0),
    )


def test_a_table_object_is_recalled_by_category_and_place() -> None:
    centres = np.array([[0.5, 0.5, 0.5], [0.6, 0.5, 0.5], [0.5, 0.6, 0.5]])
    colors = np.full((3, 3), 200, dtype=np.uint8)

    def obj(category: str, shift: float) -> object:
        return build_object(1, 1, category, "", centres + shift, colors, np.ones(3), 0.05)

    sofa = _truth("sofa")
    assert same_category("couch", "sofa") and same_category("sofa", "sofa")
    assert not same_category("chair", "sofa")
    assert matches(obj("couch", 0.0), sofa)  # type: ignore[arg-type]
    assert not matches(obj("chair", 0.0), sofa)  # type: ignore[arg-type]
    assert not matches(obj("sofa", 2.0), sofa)  # type: ignore[arg-type]


def test_without_weights_a_tiny_random_detector_is_built(tmp_path: Path) -> None:
    assert not downloaded("google/owlv2-base-patch16-ensemble")
    given = choose_weights("/models/owlv2", tmp_path, 0)
    assert (given.model, given.kind) == ("/models/owlv2", "given")
    tiny = choose_weights(None, tmp_path, 0)
    assert tiny.kind == "tiny-random" and (Path(tiny.model) / "config.json").is_file()


@pytest.mark.slow
def test_bench_perception_compares_the_modes_on_the_same_questions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "bench",
            "perception",
            "--scenes",
            "1",
            "--questions",
            "3",
            "--steps",
            "12",
            "--device",
            "cpu",
            "--json",
            "sim.width=320",
            "sim.height=240",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 3 and result["same_frames"] is True
    assert result["detector"]["weights"] == "tiny-random"
    assert result["detector"]["note"] == TINY_NOTE
    assert set(result["llm_match"]) == set(result["object_recall"]) == {"gt", "detector"}
    assert all(0.0 <= v <= 100.0 for v in result["llm_match"].values())
    # The gt table holds every object it mapped, with its category, where it is.
    assert result["objects_mapped"] > 0
    assert result["object_recall"]["gt"] == 1.0
    assert 0.0 <= result["object_recall"]["detector"] <= 1.0
    assert result["table_objects"]["detector"] > 0
    assert result["per_scene"][0]["detector"]["steps"] == 12


def test_bench_perception_refuses_bad_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "perception", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err

"""meshsim against what the real habitat-sim 0.3.3 rendered (``../shared/data/habitat-golden``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aeqa.envs.meshsim.renderer import CameraSpec, make_renderer
from aeqa.envs.scene import load_scene
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def golden():  # type: ignore[no-untyped-def]
    folder = shared_data("habitat-golden")
    views = json.loads((folder / "views.json").read_text())
    observations = np.load(folder / "observations.npz")
    return folder, views, observations


def test_scene_loads_with_habitat_ids(golden) -> None:  # type: ignore[no-untyped-def]
    folder, _, _ = golden
    mesh = load_scene(folder / "golden_room.stage_config.json")
    assert mesh.semantic_shared
    assert sorted(np.unique(mesh.face_instance).tolist()) == list(range(1, 17))
    assert mesh.category_of(9) == "sofa"
    # Z-up file turned Y-up: the floor's top is at y = 0, the ceiling's at 2.7.
    assert mesh.bounds[0, 1] == pytest.approx(-0.1, abs=1e-4)
    assert mesh.bounds[1, 1] == pytest.approx(2.7, abs=1e-4)


def test_renders_match_habitat(golden, renderer_name: str) -> None:  # type: ignore[no-untyped-def]
    folder, views, observations = golden
    mesh = load_scene(folder / "golden_room")
    camera = CameraSpec(views["width"], views["height"], views["hfov_deg"])
    renderer = make_renderer(renderer_name, mesh, camera)
    try:
        for i, view in enumerate(views["views"]):
            frame = renderer.render(np.array(view["T_world_camera"]))
            depth_ok = np.abs(frame.depth - observations["depth"][i]) < 0.02
            ids_ok = frame.semantic == observations["semantic"][i]
            assert depth_ok.mean() >= 0.99, f"view {i}: depth {depth_ok.mean():.4f}"
            assert ids_ok.mean() >= 0.98, f"view {i}: ids {ids_ok.mean():.4f}"
    finally:
        renderer.close()

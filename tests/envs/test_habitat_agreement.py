"""meshsim against habitat-sim on generated scenes, from the same poses: depth, instance ids,
navigable area and geodesic distances (the figures in the README's agreement table come from
``measure_agreement`` over more views)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.scenegen import generate_scene
from aeqa.envs.simulator import Simulator
from aeqa.envs.types import AgentState
from tests.conftest import NEEDS_HABITAT
from tests.scenes import write_scannet_box_room

pytestmark = NEEDS_HABITAT

SharedSims = Callable[[SimConfig], Simulator]
WIDTH, HEIGHT, HFOV = 160, 120, 90.0


@dataclass
class Agreement:
    """How far two simulators agree over a set of views and point pairs."""

    depth_within_2cm: list[float]  # per view, fraction of pixels
    same_instance: list[float]  # per view, fraction of pixels
    rgb_within_2: list[float]  # per view, fraction of pixels (largest channel difference)
    area_m2: tuple[float, float]
    geodesic_m: list[tuple[float, float]]

    @property
    def area_error(self) -> float:
        return abs(self.area_m2[1] - self.area_m2[0]) / self.area_m2[0]

    @property
    def geodesic_error(self) -> float:
        return max(abs(b - a) / a for a, b in self.geodesic_m)


def measure_agreement(
    meshsim: Simulator, habitat: Simulator, scene: Path, views: int, pairs: int, seed: int
) -> Agreement:
    """Reset both on ``scene`` at meshsim's seeded start, then render ``views`` seeded navigable
    poses in both and compare geodesics between ``pairs`` seeded point pairs."""
    start = meshsim.reset(scene, None, seed=seed).state
    habitat.reset(scene, start)
    rng = np.random.default_rng(seed)
    depth_ok, ids_ok, rgb_ok = [], [], []
    for _ in range(views):
        state = AgentState(
            meshsim.sample_navigable_point(rng), quat_from_yaw(rng.uniform(-math.pi, math.pi))
        )
        meshsim.set_state(state)
        habitat.set_state(state)
        a, b = meshsim.observe(), habitat.observe()
        assert np.allclose(a.T_world_camera, b.T_world_camera, atol=1e-4)
        depth_ok.append(float((np.abs(a.depth - b.depth) < 0.02).mean()))
        ids_ok.append(float((a.semantic == b.semantic).mean()))
        rgb_diff = np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16)).max(axis=2)
        rgb_ok.append(float((rgb_diff <= 2).mean()))
    geodesics = []
    while len(geodesics) < pairs:
        p, q = meshsim.sample_navigable_point(rng), meshsim.sample_navigable_point(rng)
        reference = meshsim.geodesic_distance(p, q)
        if 0.5 < reference < math.inf:
            geodesics.append((reference, habitat.geodesic_distance(p, q)))
    return Agreement(
        depth_ok, ids_ok, rgb_ok, (meshsim.navigable_area(), habitat.navigable_area()), geodesics
    )


def _config(backend: str, tilt_deg: float) -> SimConfig:
    return SimConfig(
        type=backend, width=WIDTH, height=HEIGHT, hfov_deg=HFOV, camera_tilt_deg=tilt_deg
    )


def _check(agreement: Agreement, rgb: bool = True) -> None:
    """Depth, ids, area and geodesics; RGB too where the meshes carry a material (habitat-sim
    lights meshes without one with its image-based lighting)."""
    assert min(agreement.depth_within_2cm) >= 0.99, agreement.depth_within_2cm
    if rgb:
        assert min(agreement.rgb_within_2) >= 0.98, agreement.rgb_within_2
    assert min(agreement.same_instance) >= 0.98, agreement.same_instance
    assert agreement.area_error <= 0.05, agreement.area_m2
    assert agreement.geodesic_error <= 0.02, agreement.geodesic_m


@pytest.fixture(scope="module")
def apartment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scene(tmp_path_factory.mktemp("apartment"), "apt", seed=2, num_rooms=4)


@pytest.mark.parametrize("tilt_deg", [0.0, -30.0])
def test_generated_apartment_agrees(
    apartment: Path, shared_sims: SharedSims, tilt_deg: float
) -> None:
    meshsim = shared_sims(_config("meshsim", tilt_deg))
    habitat = shared_sims(_config("habitat", tilt_deg))
    _check(measure_agreement(meshsim, habitat, apartment, views=6, pairs=6, seed=1))


def test_box_room_agrees(box_room: Path, shared_sims: SharedSims) -> None:
    meshsim = shared_sims(_config("meshsim", 0.0))
    habitat = shared_sims(_config("habitat", 0.0))
    # written by trimesh, without a material
    _check(measure_agreement(meshsim, habitat, box_room, views=4, pairs=4, seed=2), rgb=False)


def test_scannet_scan_agrees(tmp_path: Path, shared_sims: SharedSims) -> None:
    """A PLY scan reaches habitat-sim as a Y-up glb with its instance ids."""
    ply = write_scannet_box_room(tmp_path)
    meshsim = shared_sims(_config("meshsim", -30.0))
    habitat = shared_sims(_config("habitat", -30.0))
    agreement = measure_agreement(meshsim, habitat, ply, views=4, pairs=4, seed=3)
    _check(agreement)
    assert habitat.scene.category_of(7) == "table"  # type: ignore[attr-defined]


def test_moves_agree(apartment: Path, shared_sims: SharedSims) -> None:
    """The same actions from the same start end at the same pose (sliding included)."""
    meshsim = shared_sims(_config("meshsim", 0.0))
    habitat = shared_sims(_config("habitat", 0.0))
    start = meshsim.reset(apartment, None, seed=4).state
    habitat.reset(apartment, start)
    actions = (["move_forward"] * 6 + ["turn_left"]) * 4 + ["look_down", "look_down"]
    for action in actions:
        a, b = meshsim.step(action), habitat.step(action)
        assert np.allclose(a.state.rotation, b.state.rotation, atol=1e-5)
        assert np.linalg.norm(a.state.position - b.state.position) < 0.05, action
        assert np.allclose(a.T_world_camera, b.T_world_camera, atol=0.05)

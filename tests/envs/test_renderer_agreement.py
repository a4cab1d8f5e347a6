"""The two meshsim renderers agree from the same poses on a generated apartment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.bench import bench_poses
from aeqa.envs.config import SimConfig
from aeqa.envs.meshsim.renderer import CameraSpec, egl_device, make_renderer, resolve_renderer
from aeqa.envs.scene import load_scene
from aeqa.envs.scenegen import generate_scene
from aeqa.envs.simulator import make_simulator
from tests.conftest import AVAILABLE_RENDERERS


@pytest.mark.skipif("raster" not in AVAILABLE_RENDERERS, reason="no EGL context here")
def test_raster_and_raycast_agree(tmp_path: Path) -> None:
    mesh = load_scene(generate_scene(tmp_path, "apt", seed=2, num_rooms=4))
    camera = CameraSpec(320, 240, 90.0)
    raster = make_renderer("raster", mesh, camera)
    raycast = make_renderer("raycast", mesh, camera)
    try:
        for T in bench_poses(mesh, 10, seed=1):
            a, b = raster.render(T), raycast.render(T)
            depth_ok = np.abs(a.depth - b.depth) < 0.01
            assert depth_ok.mean() >= 0.99
            assert (a.semantic == b.semantic).mean() >= 0.98
            assert (np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max(axis=2) <= 1).mean() >= 0.98
    finally:
        raster.close()
        raycast.close()


def test_auto_picks_raster_wherever_egl_works(box_room: Path) -> None:
    """``auto`` takes the rasteriser wherever a headless EGL context can be made, Mesa's
    llvmpipe included (several times faster there than the ray casts), and the simulator's
    config names the renderer it took."""
    expected = "raster" if egl_device() is not None else "raycast"
    assert resolve_renderer("auto") == expected
    sim = make_simulator(SimConfig(width=32, height=24))
    try:
        assert sim.config.renderer == expected
    finally:
        sim.close()


@pytest.mark.skipif("raster" not in AVAILABLE_RENDERERS, reason="no EGL context here")
def test_raster_renderers_side_by_side(tmp_path: Path) -> None:
    """Two simulators in one process (each raster renderer has its own OpenGL context): each
    renders its own scene, whichever was made or used last."""
    first = load_scene(generate_scene(tmp_path, "a", seed=2, num_rooms=3))
    second = load_scene(generate_scene(tmp_path, "b", seed=3, num_rooms=3))
    camera = CameraSpec(160, 120, 90.0)
    poses = bench_poses(first, 3, seed=0)
    a = make_renderer("raster", first, camera)
    alone = [a.render(T).depth for T in poses]
    b = make_renderer("raster", second, camera)
    try:
        b.render(bench_poses(second, 1, seed=0)[0])
        for T, depth in zip(poses, alone, strict=True):
            assert np.array_equal(a.render(T).depth, depth)
    finally:
        b.close()
    try:
        for T, depth in zip(poses, alone, strict=True):
            assert np.array_equal(a.render(T).depth, depth)
    finally:
        a.close()

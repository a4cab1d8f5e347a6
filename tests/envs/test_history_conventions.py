"""The conventions of recorded episode histories in ``envs/geometry.py``: ScanNet's Z-up world
and OpenCV camera against ours, OpenCV's pixel centres, resampling any pinhole onto our camera,
and the agent's pose under a camera. Round trips, and the same point reached both ways."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeqa.envs.geometry import (
    T_world_camera_from_agent,
    agent_state_from_camera,
    backproject_world,
    edge_to_opencv_intrinsics,
    hfov_from_focal,
    intrinsics,
    intrinsics_4x4,
    is_centred_pinhole,
    opencv_to_edge_intrinsics,
    opencv_to_opengl_pose,
    opengl_to_opencv_pose,
    pinhole_source_pixels,
    quat_from_yaw,
    quat_to_matrix,
    scannet_to_world_pose,
    world_to_scannet_pose,
    zup_to_yup,
)


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(q / np.linalg.norm(q))
    T[:3, 3] = rng.uniform(-5, 5, size=3)
    return T


def test_scannet_pose_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        T = _random_pose(rng)
        np.testing.assert_allclose(world_to_scannet_pose(scannet_to_world_pose(T)), T, atol=1e-12)
        np.testing.assert_allclose(scannet_to_world_pose(world_to_scannet_pose(T)), T, atol=1e-12)
        np.testing.assert_allclose(opengl_to_opencv_pose(opencv_to_opengl_pose(T)), T, atol=0)


def test_level_scannet_camera_is_our_identity_camera() -> None:
    # ScanNet (Z up): a camera 1.5 m up looking along +y, image rows going down (-z), right +x.
    R_scannet = np.column_stack([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    T_scannet = np.eye(4)
    T_scannet[:3, :3] = R_scannet
    T_scannet[:3, 3] = [2.0, 3.0, 1.5]

    T = scannet_to_world_pose(T_scannet)

    # Ours (Y up): +y_scannet is -Z, so the camera faces -Z upright: the identity rotation.
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [2.0, 1.5, -3.0], atol=1e-12)


def test_scannet_pixel_lands_where_our_backprojection_puts_it() -> None:
    """A ScanNet depth pixel back-projected the OpenCV way in ScanNet's world, then turned
    Y-up, is the point our back-projection finds from the converted pose and intrinsics."""
    rng = np.random.default_rng(1)
    width, height, hfov = 64, 48, 70.0
    # ScanNet's K for a centred camera: OpenCV puts pixel i's centre on i.
    K_cv = edge_to_opencv_intrinsics(intrinsics(width, height, hfov))
    assert K_cv[0, 2] == pytest.approx(width / 2 - 0.5)
    depth = rng.uniform(0.5, 4.0, size=(height, width)).astype(np.float32)
    T_scannet = _random_pose(rng)

    u, v = np.meshgrid(np.arange(width), np.arange(height))
    p_cam = np.stack(
        [(u - K_cv[0, 2]) / K_cv[0, 0] * depth, (v - K_cv[1, 2]) / K_cv[1, 1] * depth, depth],
        axis=-1,
    )
    p_scannet = p_cam @ T_scannet[:3, :3].T + T_scannet[:3, 3]
    expected = zup_to_yup(p_scannet)

    K_edge = opencv_to_edge_intrinsics(K_cv)
    assert is_centred_pinhole(K_edge, width, height)
    ours = backproject_world(
        depth, scannet_to_world_pose(T_scannet), hfov_from_focal(width, K_edge[0, 0])
    )
    np.testing.assert_allclose(np.stack(ours, axis=-1), expected, atol=1e-4)


def test_intrinsics_round_trips() -> None:
    K = intrinsics(640, 480, 90.0)
    np.testing.assert_allclose(opencv_to_edge_intrinsics(edge_to_opencv_intrinsics(K)), K)
    assert hfov_from_focal(640, K[0, 0]) == pytest.approx(90.0)
    K4 = intrinsics_4x4(640, 480, 90.0)
    assert K4.shape == (4, 4) and K4[3, 3] == 1.0 and K4[2, 2] == 1.0
    # habitat's camera (and OpenEQA's HM3D files): principal point at (W/2, H/2), square pixels
    assert (K4[0, 2], K4[1, 2], K4[0, 0]) == (320.0, 240.0, K4[1, 1])
    assert is_centred_pinhole(K, 640, 480)
    off = K.copy()
    off[0, 2] += 3.0
    assert not is_centred_pinhole(off, 640, 480)


def test_resampling_reads_the_pixel_each_ray_goes_through() -> None:
    width, height, hfov = 40, 30, 80.0
    K = intrinsics(width, height, hfov)
    rows, cols, inside = pinhole_source_pixels(K, width, height, width, height, hfov)
    assert inside.all()
    np.testing.assert_array_equal(cols[0], np.arange(width))
    np.testing.assert_array_equal(rows[:, 0], np.arange(height))

    shifted = K.copy()
    shifted[0, 2] += 3.0  # the source's optical axis meets it 3 pixels further right
    rows, cols, inside = pinhole_source_pixels(shifted, width, height, width, height, hfov)
    np.testing.assert_array_equal(cols[0, :-3], np.arange(3, width))
    assert not inside[:, -3:].any() and inside[:, :-3].all()

    # a source with twice the resolution over the same field of view: each pixel's ray goes
    # through one of the four source pixels that cover it
    double = intrinsics(2 * width, 2 * height, hfov)
    rows, cols, inside = pinhole_source_pixels(double, 2 * width, 2 * height, width, height, hfov)
    assert inside.all()
    assert np.all(cols // 2 == np.arange(width)[None, :])
    assert np.all(rows // 2 == np.arange(height)[:, None])


def test_agent_state_from_camera_round_trip() -> None:
    for yaw in np.linspace(-math.pi + 0.1, math.pi, 7):
        for tilt in (-30.0, 0.0, 20.0):
            position = np.array([1.0, 0.2, -3.0])
            T = T_world_camera_from_agent(position, quat_from_yaw(float(yaw)), 1.5, tilt)
            got_position, got_rotation = agent_state_from_camera(T, 1.5)
            np.testing.assert_allclose(got_position, position, atol=1e-12)
            np.testing.assert_allclose(
                quat_to_matrix(got_rotation), quat_to_matrix(quat_from_yaw(float(yaw))), atol=1e-9
            )
    # straight down: no heading on the floor; it faces -Z rather than failing
    T = T_world_camera_from_agent(np.zeros(3), quat_from_yaw(0.7), 1.0, -90.0)
    _, rotation = agent_state_from_camera(T, 1.0)
    np.testing.assert_allclose(rotation, [1.0, 0.0, 0.0, 0.0], atol=1e-12)

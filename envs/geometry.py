"""Frames, rotations and pinhole cameras: every coordinate conversion of the project lives here.

Conventions (habitat-sim's): the world is right-handed, metres, +Y up. The camera looks along
its -Z axis with +X right and +Y up (OpenGL). Quaternions are ``[w, x, y, z]``. An agent with
the identity rotation faces -Z; a positive yaw turns it left (counter-clockwise seen from above).
Scene files stored Z-up map to the world by ``(x, y, z)_file -> (x, z, -y)_world``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# --- up axes ---------------------------------------------------------------------------------

#: Rotation taking Z-up file coordinates to the Y-up world: (x, y, z) -> (x, z, -y).
R_WORLD_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def zup_to_yup(points_zup: np.ndarray) -> np.ndarray:
    """Map points or vectors (..., 3) from a Z-up file frame to the Y-up world frame."""
    p = np.asarray(points_zup)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def yup_to_zup(points_yup: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zup_to_yup`: (x, y, z)_world -> (x, -z, y)_file."""
    p = np.asarray(points_yup)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


# --- rotations -------------------------------------------------------------------------------


def quat_normalize(q_wxyz: np.ndarray) -> np.ndarray:
    q = np.asarray(q_wxyz, dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"not a rotation quaternion: {q.tolist()}")
    return q / n


def quat_from_yaw(yaw_rad: float) -> np.ndarray:
    """Rotation about +Y by ``yaw_rad`` as ``[w, x, y, z]``."""
    return np.array([math.cos(yaw_rad / 2.0), 0.0, math.sin(yaw_rad / 2.0), 0.0])


def quat_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a ``[w, x, y, z]`` quaternion (normalised first)."""
    w, x, y, z = quat_normalize(q_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """``[w, x, y, z]`` quaternion (w >= 0) of a 3x3 rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    out = np.array(q)
    return out if out[0] >= 0 else -out


def yaw_from_quat(q_wxyz: np.ndarray) -> float:
    """Heading about +Y (radians, in (-pi, pi]) of the agent's forward axis -Z."""
    forward = quat_to_matrix(q_wxyz) @ np.array([0.0, 0.0, -1.0])
    return math.atan2(-forward[0], -forward[2])


def forward_from_yaw(yaw_rad: float) -> np.ndarray:
    """Unit forward vector (3,) on the floor plane for a heading about +Y."""
    return np.array([-math.sin(yaw_rad), 0.0, -math.cos(yaw_rad)])


def rotation_x(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def is_rigid_transform(T: np.ndarray, atol: float = 1e-4) -> bool:
    """True if ``T`` is a finite 4x4 matrix with an orthonormal, right-handed rotation."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    return bool(
        np.allclose(R @ R.T, np.eye(3), atol=atol)
        and abs(np.linalg.det(R) - 1.0) < atol
        and np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=atol)
    )


def T_world_camera_from_agent(
    position: np.ndarray, rotation_wxyz: np.ndarray, camera_height_m: float, tilt_deg: float
) -> np.ndarray:
    """Camera-to-world pose (4x4) of a camera ``camera_height_m`` above the agent's base.

    ``tilt_deg`` pitches the camera about its +X axis (negative looks down).
    """
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(rotation_wxyz) @ rotation_x(math.radians(tilt_deg))
    T[:3, 3] = np.asarray(position, dtype=np.float64) + np.array([0.0, camera_height_m, 0.0])
    return T


# --- pinhole cameras -------------------------------------------------------------------------


def focal_px(width: int, hfov_deg: float) -> float:
    """Focal length in pixels, ``f = (W / 2) / tan(HFOV / 2)``, the same for both axes."""
    return (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """3x3 pinhole matrix K for image coordinates with +v down (OpenCV style pixels)."""
    f = focal_px(width, hfov_deg)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def camera_ray_directions(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Ray directions (H, W, 3) float32 in the camera frame through pixel centres, with z = -1.

    Scaling a direction by a z-depth gives the camera-frame point, so z-depth = t along it.
    """
    f = focal_px(width, hfov_deg)
    u = (np.arange(width, dtype=np.float64) + 0.5 - width / 2.0) / f
    v = (np.arange(height, dtype=np.float64) + 0.5 - height / 2.0) / f
    dirs = np.empty((height, width, 3), dtype=np.float32)
    dirs[..., 0] = u[None, :]
    dirs[..., 1] = -v[:, None]
    dirs[..., 2] = -1.0
    return dirs


def depth_to_camera_points(depth_m: np.ndarray, hfov_deg: float) -> np.ndarray:
    """Back-project a z-depth image (H, W) to camera-frame points (H, W, 3)."""
    h, w = depth_m.shape
    return camera_ray_directions(w, h, hfov_deg) * depth_m[..., None].astype(np.float32)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (..., 3)."""
    p = np.asarray(points)
    return p @ T[:3, :3].T.astype(p.dtype) + T[:3, 3].astype(p.dtype)


def world_to_pixel(
    points_world: np.ndarray, T_world_camera: np.ndarray, width: int, height: int, hfov_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (N, 3) to pixel coordinates (N, 2) as (u, v) and their z-depth (N,).

    Points behind the camera get a non-positive depth; their pixel coordinates are meaningless.
    """
    T_camera_world = np.linalg.inv(T_world_camera)
    p_cam = transform_points(T_camera_world, np.asarray(points_world, dtype=np.float64))
    depth = -p_cam[:, 2]
    f = focal_px(width, hfov_deg)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = p_cam[:, 0] / depth * f + width / 2.0
        v = -p_cam[:, 1] / depth * f + height / 2.0
    return np.stack([u, v], axis=1), depth


# --- top-down grids --------------------------------------------------------------------------


@dataclass(frozen=True)
class GridSpec:
    """A top-down grid on the floor plane.

    Cell ``(row, col)`` covers world x from ``origin_x + col * cell_m`` and world z from
    ``origin_z + row * cell_m``, each for ``cell_m``.
    """

    origin_x: float
    origin_z: float
    cell_m: float
    rows: int
    cols: int

    def world_to_cell_xz(self, x: float, z: float) -> tuple[int, int]:
        """(row, col) of a world x, z; may lie outside the grid."""
        return (
            math.floor((z - self.origin_z) / self.cell_m),
            math.floor((x - self.origin_x) / self.cell_m),
        )

    def world_to_cells(self, xz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) int64 arrays of world points given as (N, 2) x, z, clipped to the grid."""
        cols = np.floor((xz[:, 0] - self.origin_x) / self.cell_m).astype(np.int64)
        rows = np.floor((xz[:, 1] - self.origin_z) / self.cell_m).astype(np.int64)
        return np.clip(rows, 0, self.rows - 1), np.clip(cols, 0, self.cols - 1)

    def cell_to_world_xz(self, row: float, col: float) -> tuple[float, float]:
        """World x, z of a cell's centre (fractional cells allowed)."""
        return (
            self.origin_x + (float(col) + 0.5) * self.cell_m,
            self.origin_z + (float(row) + 0.5) * self.cell_m,
        )

    def contains(self, row: int, col: int) -> bool:
        return 0 <= row < self.rows and 0 <= col < self.cols


def backproject_world(
    depth_m: np.ndarray, T_world_camera: np.ndarray, hfov_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World coordinates of every pixel of a z-depth image, as three (H, W) float32 arrays.

    A pixel's camera-frame point is ``depth * (x_u, y_v, -1)``, so each world coordinate is
    ``depth * (R[k,0] x_u + R[k,1] y_v - R[k,2]) + t[k]``: an outer sum per axis, cheaper than
    a matrix product over all pixels. Pixels with depth 0 land on the camera centre.
    """
    h, w = depth_m.shape
    f = focal_px(w, hfov_deg)
    x = ((np.arange(w) + 0.5 - w / 2.0) / f).astype(np.float32)
    y = (-(np.arange(h) + 0.5 - h / 2.0) / f).astype(np.float32)
    R = np.asarray(T_world_camera[:3, :3], dtype=np.float32)
    t = np.asarray(T_world_camera[:3, 3], dtype=np.float32)
    d = depth_m.astype(np.float32, copy=False)
    out = []
    for k in range(3):
        axis = np.add.outer(y * R[k, 1] - R[k, 2], x * R[k, 0])
        axis *= d
        axis += t[k]
        out.append(axis)
    return out[0], out[1], out[2]


# --- recorded episode histories: HM3D's and ScanNet's conventions --------------------------------

#: how a recorded history stores its frames: ``hm3d`` (habitat's Y-up world and OpenGL camera,
#: depth / 10 m * 65535) or ``scannet`` (Z-up world, OpenCV camera, depth in millimetres)
HISTORY_CONVENTIONS: tuple[str, ...] = ("hm3d", "scannet")

#: Flips a camera frame between OpenCV's axes (x right, y down, z forward) and OpenGL's (x right,
#: y up, -z forward); its own inverse.
T_OPENGL_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _homogeneous(R: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    return T


def opencv_to_opengl_pose(T_world_cvcamera: np.ndarray) -> np.ndarray:
    """Camera-to-world pose (4x4) of an OpenCV camera as the pose of the same camera with
    OpenGL axes (the world frame is kept)."""
    return np.asarray(T_world_cvcamera, dtype=np.float64) @ T_OPENGL_OPENCV


def opengl_to_opencv_pose(T_world_camera: np.ndarray) -> np.ndarray:
    """Inverse of :func:`opencv_to_opengl_pose`."""
    return np.asarray(T_world_camera, dtype=np.float64) @ T_OPENGL_OPENCV


def scannet_to_world_pose(T_scannet_camera: np.ndarray) -> np.ndarray:
    """ScanNet's camera-to-world pose (4x4: Z-up world, OpenCV camera, as ``.sens`` files and
    OpenEQA's ScanNet histories store it) as ours (Y-up world, OpenGL camera): the world turned
    as a Z-up scene file is on load, ``(x, y, z) -> (x, z, -y)``, so a ScanNet history and its
    ``*_vh_clean_2.ply`` land in the same place."""
    return _homogeneous(R_WORLD_ZUP) @ opencv_to_opengl_pose(T_scannet_camera)


def world_to_scannet_pose(T_world_camera: np.ndarray) -> np.ndarray:
    """Inverse of :func:`scannet_to_world_pose`: our pose (Y-up world, OpenGL camera) as
    ScanNet's (Z-up world, OpenCV camera)."""
    return _homogeneous(R_WORLD_ZUP.T) @ opengl_to_opencv_pose(T_world_camera)


def intrinsics_4x4(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """The 4x4 intrinsics file matrix (K in the top-left 3x3) of our camera: square pixels,
    principal point at the image centre ``(W / 2, H / 2)`` in coordinates where pixel ``i``
    spans ``[i, i + 1)`` (habitat's, and OpenEQA's HM3D files')."""
    K = np.eye(4)
    K[:3, :3] = intrinsics(width, height, hfov_deg)
    return K


def opencv_to_edge_intrinsics(K: np.ndarray) -> np.ndarray:
    """A 3x3 K whose pixel ``i`` is centred on ``i`` (OpenCV's and ScanNet's convention) as K
    for coordinates where pixel ``i`` spans ``[i, i + 1)`` (ours): the principal point moves by
    half a pixel."""
    out = np.array(K, dtype=np.float64)[:3, :3]
    out[0, 2] += 0.5
    out[1, 2] += 0.5
    return out


def edge_to_opencv_intrinsics(K: np.ndarray) -> np.ndarray:
    """Inverse of :func:`opencv_to_edge_intrinsics`."""
    out = np.array(K, dtype=np.float64)[:3, :3]
    out[0, 2] -= 0.5
    out[1, 2] -= 0.5
    return out


def hfov_from_focal(width: int, fx_px: float) -> float:
    """Horizontal field of view (degrees) of a pinhole ``width`` pixels wide with focal
    ``fx_px``; inverse of :func:`focal_px`."""
    return math.degrees(2.0 * math.atan((width / 2.0) / fx_px))


def is_centred_pinhole(K: np.ndarray, width: int, height: int, tol_px: float = 1e-2) -> bool:
    """Whether a 3x3 K (pixel-edge coordinates, see :func:`intrinsics_4x4`) is our camera's:
    square pixels and the principal point at the image centre, within ``tol_px``."""
    K = np.asarray(K, dtype=np.float64)
    return bool(
        abs(K[0, 0] - K[1, 1]) * max(width, height) / (2.0 * K[0, 0]) <= tol_px
        and abs(K[0, 2] - width / 2.0) <= tol_px
        and abs(K[1, 2] - height / 2.0) <= tol_px
    )


def pinhole_source_pixels(
    K_source: np.ndarray,
    source_width: int,
    source_height: int,
    width: int,
    height: int,
    hfov_deg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pixel of our centred, square-pixel camera (``width`` x ``height``, ``hfov_deg``),
    the pixel of a source pinhole (3x3 ``K_source`` in pixel-edge coordinates, the same camera
    centre and axes) that its ray goes through: nearest-neighbour resampling that turns a
    frame of any pinhole into one our back-projection reads.

    Returns:
        rows, cols: (height, width) int64 source indices (clipped into the source image).
        inside: (height, width) bool, False where the ray leaves the source image.
    """
    f = focal_px(width, hfov_deg)
    K = np.asarray(K_source, dtype=np.float64)
    x = (np.arange(width, dtype=np.float64) + 0.5 - width / 2.0) / f
    y = (np.arange(height, dtype=np.float64) + 0.5 - height / 2.0) / f
    u = np.floor(x * K[0, 0] + K[0, 2]).astype(np.int64)
    v = np.floor(y * K[1, 1] + K[1, 2]).astype(np.int64)
    cols, rows = np.meshgrid(u, v)
    inside = (cols >= 0) & (cols < source_width) & (rows >= 0) & (rows < source_height)
    return (
        np.clip(rows, 0, source_height - 1),
        np.clip(cols, 0, source_width - 1),
        inside,
    )


def agent_state_from_camera(
    T_world_camera: np.ndarray, camera_height_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """The agent's base pose under a camera: position ``camera_height_m`` below the camera
    centre, rotation ``[w, x, y, z]`` the yaw of the camera's forward axis (-Z) on the floor
    plane (facing -Z where the camera looks straight up or down)."""
    T = np.asarray(T_world_camera, dtype=np.float64)
    forward = -T[:3, 2]
    yaw = math.atan2(-forward[0], -forward[2]) if np.hypot(forward[0], forward[2]) > 1e-9 else 0.0
    position = T[:3, 3] - np.array([0.0, camera_height_m, 0.0])
    return position, quat_from_yaw(yaw)

"""The ``raycast`` renderer: open3d's ``RaycastingScene`` (Embree), no OpenGL needed.

One ray per pixel centre, ``f = (W / 2) / tan(HFOV / 2)``. Directions have camera-frame
z = -1, so the hit distance Embree returns is the z-depth itself. Colour and instance ids are
looked up per triangle (flat-coloured meshes, the common case) or interpolated from vertex
colours and textures.

Embree casts on every core unless told otherwise; the cast honours ``OMP_NUM_THREADS`` (as
numpy's BLAS and open3d's other kernels do), so a batch worker given one CPU uses one.
"""

from __future__ import annotations

import math
import os

import numpy as np
import open3d as o3d

from aeqa.envs.meshsim.renderer import CameraSpec, Frame
from aeqa.envs.scene import SceneMesh, sample_texture


def build_raycasting_scene(
    vertices: np.ndarray, faces: np.ndarray
) -> o3d.t.geometry.RaycastingScene:
    """An Embree scene of one triangle mesh; its geometry id is 0."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene


def ray_threads() -> int:
    """Threads for a ray cast: ``OMP_NUM_THREADS`` when set to a positive number, else 0 (all)."""
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "0")), 0)
    except ValueError:
        return 0


class PinholeRays:
    """A reusable (H, W, 6) float32 ray buffer for one camera, filled per pose.

    Rays pass through pixel centres; row 0 is the top of the image.
    """

    def __init__(self, camera: CameraSpec) -> None:
        f = (camera.width / 2.0) / math.tan(math.radians(camera.hfov_deg) / 2.0)
        self._x = ((np.arange(camera.width) + 0.5 - camera.width / 2.0) / f).astype(np.float32)
        self._y = (-(np.arange(camera.height) + 0.5 - camera.height / 2.0) / f).astype(np.float32)
        self.buffer = np.empty((camera.height, camera.width, 6), dtype=np.float32)
        # Shares memory with ``buffer``: filling the array refills the tensor.
        self.tensor = o3d.core.Tensor.from_numpy(self.buffer)

    def fill(self, T_world_camera: np.ndarray) -> o3d.core.Tensor:
        """Write world-frame rays for a camera-to-world pose (4x4) and return them."""
        R = np.asarray(T_world_camera[:3, :3], dtype=np.float32)
        t = np.asarray(T_world_camera[:3, 3], dtype=np.float32)
        for k in range(3):
            # direction = x * R[:, 0] + y * R[:, 1] - R[:, 2], separable over rows and columns
            np.add.outer(
                self._y * R[k, 1] - R[k, 2], self._x * R[k, 0], out=self.buffer[..., 3 + k]
            )
            self.buffer[..., k] = t[k]
        return self.tensor


class RaycastRenderer:
    """Renders a :class:`SceneMesh` by casting one ray per pixel with open3d."""

    name = "raycast"

    def __init__(self, mesh: SceneMesh, camera: CameraSpec) -> None:
        self.camera = camera
        self._mesh = mesh
        self._scene = build_raycasting_scene(mesh.vertices, mesh.faces)
        self._semantic_scene = (
            None
            if mesh.semantic_shared
            else build_raycasting_scene(mesh.semantic_vertices, mesh.semantic_faces)  # type: ignore[arg-type]
        )
        self._rays = PinholeRays(camera)
        # Look-up tables end in a sentinel row that out-of-range (missed) ids clip to.
        self._face_instance = np.zeros(len(mesh.face_instance) + 1, dtype=np.int32)
        self._face_instance[:-1] = mesh.face_instance
        corner_colors = mesh.vertex_colors[mesh.faces]
        textured = mesh.face_texture is not None and bool(np.any(mesh.face_texture >= 0))
        self._flat = not textured and bool(np.all(corner_colors == corner_colors[:, :1, :]))
        face_rgba = np.zeros((len(mesh.faces) + 1, 4), dtype=np.uint8)
        face_rgba[:-1, :3] = corner_colors[:, 0, :]
        # One 32-bit gather per pixel instead of three byte gathers.
        self._face_rgba = face_rgba.view(np.uint32).reshape(-1)

    def render(self, T_world_camera: np.ndarray) -> Frame:
        rays = self._rays.fill(T_world_camera)
        hits = self._scene.cast_rays(rays, nthreads=ray_threads())
        t_hit = hits["t_hit"].numpy()
        primitive = hits["primitive_ids"].numpy()
        depth = np.where(t_hit <= self.camera.max_depth_m, t_hit, np.float32(0.0))
        if self._flat:
            rgba = np.take(self._face_rgba, primitive, mode="clip")
            # A strided (H, W, 3) view of the RGBA pixels: a copy would cost more than the gather.
            rgb = rgba.view(np.uint8).reshape(*primitive.shape, 4)[..., :3]
        else:
            rgb = self._shade(primitive, hits["primitive_uvs"].numpy())
        if self._semantic_scene is None:
            semantic = np.take(self._face_instance, primitive, mode="clip")
        else:
            semantic_hits = self._semantic_scene.cast_rays(rays, nthreads=ray_threads())
            semantic = np.take(
                self._face_instance, semantic_hits["primitive_ids"].numpy(), mode="clip"
            )
        return Frame(rgb=rgb, depth=depth.astype(np.float32, copy=False), semantic=semantic)

    def _shade(self, primitive: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Interpolate vertex colours and sample textures at the hit points."""
        mesh = self._mesh
        h, w = primitive.shape
        rgb = np.zeros((h * w, 3), dtype=np.uint8)
        flat_ids = primitive.reshape(-1)
        hit = flat_ids < len(mesh.faces)
        ids = flat_ids[hit]
        bary_uv = barycentric.reshape(-1, 2)[hit]
        weights = np.concatenate([1.0 - bary_uv.sum(axis=1, keepdims=True), bary_uv], axis=1)
        corners = mesh.faces[ids]
        color = np.einsum("nk,nkc->nc", weights, mesh.vertex_colors[corners].astype(np.float32))
        if mesh.face_texture is not None and mesh.uvs is not None:
            tex_ids = mesh.face_texture[ids]
            textured = tex_ids >= 0
            if np.any(textured):
                uv = np.einsum("nk,nkc->nc", weights[textured], mesh.uvs[corners[textured]])
                sampled = np.zeros((len(uv), 3), dtype=np.float32)
                for t in np.unique(tex_ids[textured]):
                    sel = tex_ids[textured] == t
                    sampled[sel] = sample_texture(mesh.textures[int(t)], uv[sel])
                color[textured] = sampled * color[textured] / 255.0
        rgb[hit] = np.clip(np.round(color), 0, 255).astype(np.uint8)
        return rgb.reshape(h, w, 3)

    def close(self) -> None:
        pass

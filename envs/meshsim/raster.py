"""The ``raster`` renderer: OpenGL rasterisation through moderngl on a headless EGL context.

This is the path habitat-sim takes: on a GPU it is the fast one, and it also runs on Mesa's
llvmpipe. Each fragment writes its colour, its camera-frame z-depth (exact, not read back from
the non-linear depth buffer) and its instance id into three attachments.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.meshsim.renderer import CameraSpec, Frame, limit_software_gl_threads
from aeqa.envs.scene import SceneMesh

logger = logging.getLogger(__name__)

_NEAR_M = 0.01
_FAR_M = 1000.0

_VERTEX_SHADER = """
#version 330
uniform mat4 u_view;
uniform mat4 u_proj;
in vec3 in_position;
in vec3 in_color;
in vec2 in_uv;
in int in_instance;
out vec3 v_color;
out vec2 v_uv;
out float v_depth;
flat out int v_instance;
void main() {
    vec4 p_camera = u_view * vec4(in_position, 1.0);
    v_depth = -p_camera.z;
    v_color = in_color;
    v_uv = in_uv;
    v_instance = in_instance;
    gl_Position = u_proj * p_camera;
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform sampler2D u_texture;
in vec3 v_color;
in vec2 v_uv;
in float v_depth;
flat in int v_instance;
layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;
layout(location = 2) out int out_instance;
void main() {
    vec3 texel = texture(u_texture, vec2(v_uv.x, 1.0 - v_uv.y)).rgb;
    out_color = vec4(v_color * texel, 1.0);
    out_depth = v_depth;
    out_instance = v_instance;
}
"""


def projection_matrix(camera: CameraSpec) -> np.ndarray:
    """OpenGL projection (4x4) with ``f = (W / 2) / tan(HFOV / 2)`` on both axes."""
    tan_half_h = math.tan(math.radians(camera.hfov_deg) / 2.0)
    tan_half_v = tan_half_h * camera.height / camera.width
    n, f = _NEAR_M, _FAR_M
    return np.array(
        [
            [1.0 / tan_half_h, 0.0, 0.0, 0.0],
            [0.0, 1.0 / tan_half_v, 0.0, 0.0],
            [0.0, 0.0, -(f + n) / (f - n), -2.0 * f * n / (f - n)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )


class _DrawBatch:
    """Triangles that share one texture (or none), expanded to per-corner vertex attributes."""

    def __init__(self, ctx, program, mesh_vertices, faces, colors, uvs, instance, texture) -> None:
        corners = faces.reshape(-1)
        data = np.zeros(
            len(corners),
            dtype=[("p", "f4", 3), ("c", "f4", 3), ("uv", "f4", 2), ("i", "i4")],
        )
        data["p"] = mesh_vertices[corners]
        data["c"] = colors[corners] if colors is not None else 1.0
        if uvs is not None:
            data["uv"] = uvs[corners]
        data["i"] = np.repeat(instance, 3)
        self.buffer = ctx.buffer(data.tobytes())
        self.vao = ctx.vertex_array(
            program,
            [(self.buffer, "3f 3f 2f i", "in_position", "in_color", "in_uv", "in_instance")],
        )
        self.texture = texture

    def draw(self) -> None:
        self.texture.use(0)
        self.vao.render()

    def release(self) -> None:
        self.vao.release()
        self.buffer.release()


class RasterRenderer:
    """Renders a :class:`SceneMesh` with OpenGL on a headless EGL context."""

    name = "raster"

    def __init__(self, mesh: SceneMesh, camera: CameraSpec) -> None:
        import moderngl

        limit_software_gl_threads()
        try:
            self.ctx = moderngl.create_context(standalone=True, backend="egl")
        except Exception as e:
            raise AeqaError(
                f"renderer raster: no headless EGL context ({e}); install libegl1 and "
                "libgl1-mesa-dri (see the README's setup) or use renderer=raycast"
            ) from e
        self.device = str(self.ctx.info.get("GL_RENDERER", "unknown"))
        logger.info("raster renderer on %s", self.device)
        self.camera = camera
        ctx = self.ctx
        self._program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self._program["u_proj"].write(projection_matrix(camera).T.astype("f4").tobytes())
        size = (camera.width, camera.height)
        self._targets = [
            ctx.texture(size, 4, dtype="f1"),
            ctx.texture(size, 1, dtype="f4"),
            ctx.texture(size, 1, dtype="i4"),
        ]
        for target in self._targets:
            target.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._depth = ctx.depth_renderbuffer(size)
        self._fbo = ctx.framebuffer(color_attachments=self._targets, depth_attachment=self._depth)
        self._textures: list = []
        self._batches = self._render_batches(mesh)
        self._semantic_batches = self._semantic_only_batches(mesh)

    def _make_texture(self, image: np.ndarray):
        import moderngl

        h, w = image.shape[:2]
        texture = self.ctx.texture((w, h), 3, np.ascontiguousarray(image[:, :, :3]).tobytes())
        texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        texture.repeat_x = texture.repeat_y = True
        self._textures.append(texture)
        return texture

    def _render_batches(self, mesh: SceneMesh) -> list[_DrawBatch]:
        white = self._make_texture(np.full((1, 1, 3), 255, dtype=np.uint8))
        colors = mesh.vertex_colors.astype(np.float32) / 255.0
        instance = (
            mesh.face_instance if mesh.semantic_shared else np.zeros(len(mesh.faces), np.int32)
        )
        face_texture = (
            mesh.face_texture
            if mesh.face_texture is not None
            else np.full(len(mesh.faces), -1, dtype=np.int32)
        )
        batches = []
        for tex_id in np.unique(face_texture):
            sel = face_texture == tex_id
            texture = white if tex_id < 0 else self._make_texture(mesh.textures[int(tex_id)])
            batches.append(
                _DrawBatch(
                    self.ctx,
                    self._program,
                    mesh.vertices,
                    mesh.faces[sel],
                    colors,
                    mesh.uvs if tex_id >= 0 else None,
                    instance[sel],
                    texture,
                )
            )
        return batches

    def _semantic_only_batches(self, mesh: SceneMesh) -> list[_DrawBatch]:
        if mesh.semantic_shared:
            return []
        assert mesh.semantic_vertices is not None and mesh.semantic_faces is not None
        return [
            _DrawBatch(
                self.ctx,
                self._program,
                mesh.semantic_vertices,
                mesh.semantic_faces,
                None,
                None,
                mesh.face_instance,
                self._textures[0],
            )
        ]

    def render(self, T_world_camera: np.ndarray) -> Frame:
        # Each renderer has its own context and the last one made is current: make this one
        # current, or another simulator's renderer in the process draws into a wrong one.
        with self.ctx:
            return self._render(T_world_camera)

    def _render(self, T_world_camera: np.ndarray) -> Frame:
        import moderngl

        ctx = self.ctx
        view = np.linalg.inv(np.asarray(T_world_camera, dtype=np.float64))
        self._program["u_view"].write(view.T.astype("f4").tobytes())
        self._fbo.use()
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        for batch in self._batches:
            batch.draw()
        w, h = self.camera.width, self.camera.height
        rgba = np.frombuffer(self._fbo.read(components=4, attachment=0), dtype=np.uint8)
        depth = np.frombuffer(self._fbo.read(components=1, attachment=1, dtype="f4"), np.float32)
        if self._semantic_batches:
            self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            for batch in self._semantic_batches:
                batch.draw()
        ids = np.frombuffer(self._fbo.read(components=1, attachment=2, dtype="i4"), np.int32)
        # OpenGL's rows start at the bottom of the image.
        rgb = rgba.reshape(h, w, 4)[::-1, :, :3].copy()
        depth_m = depth.reshape(h, w)[::-1].copy()
        depth_m[depth_m > self.camera.max_depth_m] = 0.0
        semantic = ids.reshape(h, w)[::-1].copy()
        return Frame(rgb=rgb, depth=depth_m, semantic=semantic)

    def close(self) -> None:
        with self.ctx:
            for batch in self._batches + self._semantic_batches:
                batch.release()
            for texture in self._textures + self._targets:
                texture.release()
            self._depth.release()
            self._fbo.release()
        self.ctx.release()

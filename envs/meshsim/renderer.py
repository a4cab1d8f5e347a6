"""The renderer boundary of ``meshsim`` and the choice between its two renderers."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.scene import SceneMesh

logger = logging.getLogger(__name__)

RendererName = Literal["auto", "raster", "raycast"]
RENDERERS = ("raster", "raycast")


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera: resolution, horizontal field of view and depth range (habitat's)."""

    width: int
    height: int
    hfov_deg: float
    max_depth_m: float = 10.0


@dataclass
class Frame:
    """What a renderer returns for one camera pose.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 z-depth in metres, 0 where nothing is hit within range.
        semantic: (H, W) int32 instance ids, 0 where unlabelled or nothing is hit.
    """

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray


class Renderer(Protocol):
    name: str

    def render(self, T_world_camera: np.ndarray) -> Frame:
        """Render RGB, depth and instance ids seen from a camera-to-world pose (4x4)."""
        ...

    def close(self) -> None: ...


def limit_software_gl_threads() -> None:
    """Let Mesa's llvmpipe use as many threads as ``OMP_NUM_THREADS`` allows (where it is set
    and ``LP_NUM_THREADS`` is not), as the ray casts do; it must run before the first context.
    """
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        os.environ.setdefault("LP_NUM_THREADS", threads)


@lru_cache(maxsize=1)
def egl_device() -> str | None:
    """The OpenGL renderer string of a headless EGL context, or None where EGL fails."""
    limit_software_gl_threads()
    try:
        import moderngl

        ctx = moderngl.create_context(standalone=True, backend="egl")
    except Exception as e:  # any failure means no usable EGL here
        logger.debug("no EGL context: %s", e)
        return None
    try:
        return str(ctx.info.get("GL_RENDERER", "unknown"))
    finally:
        ctx.release()


def resolve_renderer(name: str) -> str:
    """Turn ``auto`` into ``raster`` wherever a headless EGL context can be made (a GPU, or
    Mesa's llvmpipe on a CPU, where it still renders several times faster than the ray
    casts; see ``aeqa bench sim``) and ``raycast`` where EGL or OpenGL is missing."""
    if name in RENDERERS:
        return name
    if name != "auto":
        raise AeqaError(f"unknown renderer {name!r}; use auto, raster or raycast")
    device = egl_device()
    chosen = "raster" if device is not None else "raycast"
    logger.info("renderer auto -> %s (EGL device: %s)", chosen, device or "none")
    return chosen


def make_renderer(name: str, mesh: SceneMesh, camera: CameraSpec) -> Renderer:
    """Build the named renderer (``auto`` resolved first); imports its backend lazily."""
    chosen = resolve_renderer(name)
    if chosen == "raster":
        from aeqa.envs.meshsim.raster import RasterRenderer

        return RasterRenderer(mesh, camera)
    from aeqa.envs.meshsim.raycast import RaycastRenderer

    return RaycastRenderer(mesh, camera)

"""Episode histories in OpenEQA's layout: the RGB-D frames and camera poses of a recorded
episode, written as an episode explores and read back into a :class:`SemanticMemory` to answer
questions without exploring (EM-EQA).

A history is a folder of frames, as OpenEQA's frame extraction writes them (its
``data/hm3d/extract-frames.py`` and ``data/scannet/extract-frames.py``):

- ``NNNNN-rgb.png``: the colour frame (8-bit RGB).
- ``NNNNN-depth.png``: the depth frame, 16-bit single channel, 0 where there is no depth.
  HM3D: ``depth / 10 m * 65535`` (z-depth, as habitat's sensor gives it); ScanNet: millimetres.
- ``NNNNN.txt``: the 4x4 camera-to-world pose. HM3D: habitat's world (Y up) and camera
  (OpenGL: -Z forward, +Y up), which are ours. ScanNet: a Z-up world and an OpenCV camera
  (+Z forward, +Y down); :func:`aeqa.envs.geometry.scannet_to_world_pose` turns it into ours.
- ``intrinsic_color.txt``, ``intrinsic_depth.txt``: 4x4 matrices with K in the top-left 3x3.
  HM3D's have the principal point at ``(W / 2, H / 2)`` in coordinates where pixel ``i`` spans
  ``[i, i + 1)``; ScanNet's are OpenCV's (pixel ``i`` centred on ``i``), and its colour frames
  (1296x968) are larger than its depth frames (640x480), so colour is resampled onto the depth
  camera. OpenEQA's HM3D extraction writes ``fy`` from a vertical field of view scaled
  linearly from the horizontal one, which is not habitat's camera for a non-square image;
  habitat's pixels are square, so an HM3D history is read with ``fy = fx``, and this writer
  writes habitat's true ``fy = fx``.

HM3D frames are numbered with five digits (``00000``), ScanNet's with six (``000000``); ScanNet
histories also carry ``extrinsic_color.txt`` and ``extrinsic_depth.txt``. A ScanNet pose of
``-inf`` marks a frame where its tracking was lost: such frames are skipped.

Our extensions, which OpenEQA's readers ignore:

- ``NNNNN-semantic.png``: 16-bit instance ids of the frame (0 = unlabelled), written where the
  scene has instance annotations, so ``gt`` perception is rebuilt from the history.
- ``aeqa_history.json`` (:class:`HistorySidecar`): the convention, the camera, the floor height
  and the agent the occupancy map was built for, the instance labels (id -> category, region)
  and the source of the frames (scene, question, start pose, seed, the simulator config).

A history without a sidecar (OpenEQA's own) is read with the floor height estimated from its
depth, no instance labels (``perception`` ``none``) and, where no frame shows a labelled
instance, evenly spaced keyframes over the episode, as OpenEQA's multi-frame baselines pick
their frames.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.config import AgentSpec
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import (
    HISTORY_CONVENTIONS,
    agent_state_from_camera,
    backproject_world,
    edge_to_opencv_intrinsics,
    hfov_from_focal,
    intrinsics_4x4,
    is_centred_pinhole,
    is_rigid_transform,
    opencv_to_edge_intrinsics,
    pinhole_source_pixels,
    scannet_to_world_pose,
    world_to_scannet_pose,
)
from aeqa.envs.types import AgentState, Observations
from aeqa.mapping.memory import MemoryConfig, SemanticMemory
from aeqa.mapping.objects import InstanceLabel

logger = logging.getLogger(__name__)

#: the two conventions of OpenEQA's histories
HISTORY_FORMATS: tuple[str, ...] = HISTORY_CONVENTIONS
SIDECAR_FILE = "aeqa_history.json"
SIDECAR_FORMAT = "aeqa-history/1"
#: HM3D depth frames: ``depth / HM3D_DEPTH_RANGE_M * 65535``
HM3D_DEPTH_RANGE_M = 10.0
#: ScanNet depth frames: millimetres
SCANNET_DEPTH_PER_M = 1000.0
_UINT16_MAX = 65535
_DIGITS = {"hm3d": 5, "scannet": 6}
_RGB_RE = re.compile(r"^(\d+)-rgb\.png$")
_FOLDER_RE = re.compile(r"^\d+-(hm3d|scannet)-")
#: frames read to estimate the floor height of a history without a sidecar
_FLOOR_FRAMES = 24
#: OpenEQA's frame extraction fixes no camera height; habitat's default agent carries its
#: camera 1.5 m up, the fallback where the depth shows no floor
_DEFAULT_CAMERA_HEIGHT_M = 1.5


@dataclass
class HistorySource:
    """Where a history's frames came from (the sidecar's ``source``)."""

    scene: str = ""
    question_id: str = ""
    question: str = ""
    seed: int = 0
    #: the episode's start: agent base [x, y, z] (Y-up world, metres), rotation [w, x, y, z]
    start_position: list[float] = field(default_factory=list)
    start_rotation: list[float] = field(default_factory=list)
    #: the simulator config that rendered the frames (``SimConfig`` as a dict)
    sim: dict[str, Any] = field(default_factory=dict)


@dataclass
class HistorySidecar:
    """``aeqa_history.json``: what a history's frames do not say by themselves.

    Attributes:
        convention: ``hm3d`` or ``scannet``: how the frames are stored.
        width, height, hfov_deg: the camera the frames were rendered with.
        camera_height_m: the camera's height above the agent's base.
        floor_y: the height of the floor the agent walked on, in our Y-up world (metres).
        agent: the agent the occupancy map is built for.
        labels: instance id -> category and region, for the semantic frames.
        semantic: whether ``NNNNN-semantic.png`` frames were written.
        frames: how many frames the history holds.
        source: where the frames came from.
    """

    convention: str
    width: int
    height: int
    hfov_deg: float
    camera_height_m: float
    floor_y: float
    agent: AgentSpec = field(default_factory=AgentSpec)
    labels: dict[int, InstanceLabel] = field(default_factory=dict)
    semantic: bool = False
    frames: int = 0
    source: HistorySource = field(default_factory=HistorySource)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SIDECAR_FORMAT,
            "convention": self.convention,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "hfov_deg": self.hfov_deg,
            "camera_height_m": self.camera_height_m,
            "floor_y": self.floor_y,
            "agent": asdict(self.agent),
            "semantic": self.semantic,
            "labels": {str(k): asdict(v) for k, v in sorted(self.labels.items())},
            "source": asdict(self.source),
        }

    @classmethod
    def read(cls, path: Path) -> HistorySidecar:
        """Read ``aeqa_history.json``.

        Raises:
            AeqaError: the file is not JSON or not a sidecar this version reads.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != SIDECAR_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {SIDECAR_FORMAT!r}")
            return cls(
                convention=str(data["convention"]),
                width=int(data["width"]),
                height=int(data["height"]),
                hfov_deg=float(data["hfov_deg"]),
                camera_height_m=float(data["camera_height_m"]),
                floor_y=float(data["floor_y"]),
                agent=AgentSpec(**data["agent"]),
                labels={int(k): InstanceLabel(**v) for k, v in data["labels"].items()},
                semantic=bool(data["semantic"]),
                frames=int(data["frames"]),
                source=HistorySource(**data["source"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise AeqaError(
                f"{path}: not a readable history sidecar ({e}); remove it to read the frames "
                "alone, or export the history again"
            ) from e


# --- writing ---------------------------------------------------------------------------------


class HistoryWriter:
    """Writes an episode's frames into ``folder`` in OpenEQA's layout, one :meth:`write` per
    observation, and the sidecar (rewritten by :meth:`close` with the frame count).

    Raises:
        AeqaError: an unknown convention, or a folder that already holds a history or cannot
            be written.
    """

    def __init__(self, folder: str | Path, sidecar: HistorySidecar) -> None:
        if sidecar.convention not in HISTORY_FORMATS:
            raise AeqaError(
                f"unknown history format {sidecar.convention!r}; write one of "
                f"{', '.join(HISTORY_FORMATS)}"
            )
        self.folder = Path(folder)
        if self.folder.is_dir() and any(self.folder.glob("*-rgb.png")):
            raise AeqaError(
                f"{self.folder}: already holds an episode history; export into an empty folder"
            )
        self.sidecar = sidecar
        self.convention = sidecar.convention
        self._digits = _DIGITS[self.convention]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AeqaError(f"{self.folder}: cannot create the history folder ({e})") from e
        K = intrinsics_4x4(sidecar.width, sidecar.height, sidecar.hfov_deg)
        if self.convention == "scannet":
            K[:3, :3] = edge_to_opencv_intrinsics(K)
            for name in ("extrinsic_color.txt", "extrinsic_depth.txt"):
                np.savetxt(self.folder / name, np.eye(4), fmt="%f")
        for name in ("intrinsic_color.txt", "intrinsic_depth.txt"):
            np.savetxt(self.folder / name, K, fmt="%.6f")
        self._write_sidecar()

    def write(self, obs: Observations, step: int) -> None:
        """Write one observation as frame ``step``.

        Raises:
            AeqaError: the frame's size is not the history's, or an instance id does not fit a
                16-bit semantic frame.
        """
        import imageio.v3 as iio

        side = self.sidecar
        depth_m = np.asarray(obs.depth, dtype=np.float64)
        if depth_m.shape != (side.height, side.width):
            raise AeqaError(
                f"frame {step} is {depth_m.shape[1]}x{depth_m.shape[0]}, the history "
                f"{side.width}x{side.height}; one history holds one camera's frames"
            )
        stem = self.folder / f"{step:0{self._digits}d}"
        if self.convention == "hm3d":
            # Beyond the 16-bit range habitat's sensor reads nothing too (0), not 10 m.
            units = np.round(depth_m / HM3D_DEPTH_RANGE_M * _UINT16_MAX)
            T = np.asarray(obs.T_world_camera, dtype=np.float64)
        else:
            units = np.round(depth_m * SCANNET_DEPTH_PER_M)
            T = world_to_scannet_pose(obs.T_world_camera)
        units[(units > _UINT16_MAX) | ~np.isfinite(units)] = 0
        iio.imwrite(f"{stem}-rgb.png", np.ascontiguousarray(obs.rgb[..., :3], dtype=np.uint8))
        iio.imwrite(f"{stem}-depth.png", units.astype(np.uint16))
        if side.semantic:
            semantic = np.asarray(obs.semantic)
            if semantic.size and (int(semantic.max()) > _UINT16_MAX or int(semantic.min()) < 0):
                raise AeqaError(
                    f"{stem}-semantic.png: instance ids of frame {step} run from "
                    f"{int(semantic.min())} to {int(semantic.max())}, outside a 16-bit frame's "
                    "0-65535; export without semantic frames"
                )
            iio.imwrite(f"{stem}-semantic.png", semantic.astype(np.uint16))
        np.savetxt(f"{stem}.txt", T, fmt="%.6f")
        side.frames += 1

    def close(self) -> None:
        """Rewrite the sidecar with the frame count."""
        self._write_sidecar()

    def _write_sidecar(self) -> None:
        path = self.folder / SIDECAR_FILE
        try:
            path.write_text(json.dumps(self.sidecar.to_json(), indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            raise AeqaError(f"{path}: cannot write the history sidecar ({e})") from e


# --- reading ---------------------------------------------------------------------------------


def _read_matrix(path: Path, what: str, fix: str) -> np.ndarray:
    if not path.is_file():
        raise AeqaError(f"{path}: {what} missing; {fix}")
    try:
        matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise AeqaError(f"{path}: {what} is not a 4x4 matrix of numbers ({e}); {fix}") from e
    if matrix.shape != (4, 4):
        raise AeqaError(
            f"{path}: {what} must be a 4x4 matrix, got {matrix.shape[0]}x{matrix.shape[1]}; {fix}"
        )
    return matrix


def _read_png(path: Path, what: str) -> np.ndarray:
    import imageio.v3 as iio

    try:
        return np.asarray(iio.imread(path))
    except Exception as e:  # imageio raises many kinds for a broken file
        raise AeqaError(f"{path}: cannot read the {what} ({e}); extract the frame again") from e


def _uint16_frame(image: np.ndarray, path: Path, what: str, encoding: str) -> np.ndarray:
    """``image`` as (H, W) uint16, or an error naming the file: a 16-bit single-channel PNG is
    read as uint16 (or widened to 32 bits by some readers); 8-bit, colour or float is not one."""
    integer = image.ndim == 2 and image.dtype.kind in "iu" and image.dtype.itemsize >= 2
    if integer and (image.size == 0 or 0 <= int(image.min()) <= int(image.max()) <= _UINT16_MAX):
        return image.astype(np.uint16, copy=False)
    shape = "x".join(str(s) for s in image.shape)
    raise AeqaError(
        f"{path}: the {what} must be a 16-bit single-channel PNG ({encoding}), got "
        f"{image.dtype} {shape}; extract it again with OpenEQA's extract-frames.py"
    )


def detect_format(folder: Path, names: list[str]) -> str | None:
    """``hm3d`` or ``scannet`` from a history folder's name (``NNN-hm3d-...``), its files
    (ScanNet's extrinsics, six-digit frame numbers) or None where nothing tells."""
    match = _FOLDER_RE.match(folder.name)
    if match:
        return match.group(1)
    if (folder / "extrinsic_depth.txt").is_file():
        return "scannet"
    digits = {len(n.split("-", 1)[0]) for n in names}
    if digits == {6}:
        return "scannet"
    if digits == {5}:
        return "hm3d"
    return None


@dataclass
class _Resampling:
    """Where each pixel of our camera reads a source image (None: the same pixel)."""

    rows: np.ndarray
    cols: np.ndarray
    inside: np.ndarray

    def apply(self, image: np.ndarray, empty: int | float = 0) -> np.ndarray:
        out = image[self.rows, self.cols]
        out[~self.inside] = empty
        return out


class EpisodeHistory:
    """A history folder opened for reading (see the module docstring for the layout).

    Frames come out as :class:`Observations` in our conventions: Y-up world, OpenGL camera,
    z-depth in metres, a centred square-pixel camera of ``hfov_deg`` (frames of any other
    pinhole are resampled onto it, nearest pixel), semantic instance ids (zeros where the
    history has none).

    Raises:
        AeqaError: the folder is missing or holds no frames, a frame lacks its depth or pose,
            the intrinsics are missing or unreadable, the format cannot be told or contradicts
            the sidecar.
    """

    def __init__(self, folder: str | Path, history_format: str = "auto") -> None:
        self.folder = Path(folder)
        if history_format not in ("auto", *HISTORY_FORMATS):
            raise AeqaError(
                f"unknown history format {history_format!r}; use auto, {', '.join(HISTORY_FORMATS)}"
            )
        if not self.folder.is_dir():
            raise AeqaError(
                f"{self.folder}: no such episode history folder; check --histories-root"
            )
        frames: dict[int, str] = {}
        for path in self.folder.iterdir():
            match = _RGB_RE.match(path.name)
            if match:
                frames[int(match.group(1))] = match.group(1)
        if not frames:
            raise AeqaError(
                f"{self.folder}: no NNNNN-rgb.png frames; an episode history holds OpenEQA's "
                "extracted frames (data/hm3d/extract-frames.py, data/scannet/extract-frames.py) "
                "or one written by aeqa explore --export-history"
            )
        self.frame_ids: list[int] = sorted(frames)
        self._names = frames
        sidecar_path = self.folder / SIDECAR_FILE
        self.sidecar = HistorySidecar.read(sidecar_path) if sidecar_path.is_file() else None
        self.format = self._resolve_format(history_format)
        self._check_files()
        fix = "extract the history again with its intrinsics"
        K_depth = _read_matrix(self.folder / "intrinsic_depth.txt", "depth intrinsics", fix)
        K_color = _read_matrix(self.folder / "intrinsic_color.txt", "colour intrinsics", fix)
        if self.format == "scannet":
            self.K_depth = opencv_to_edge_intrinsics(K_depth)
            self.K_color = opencv_to_edge_intrinsics(K_color)
        else:
            # habitat's pixels are square; OpenEQA's files carry a differently derived fy.
            self.K_depth, self.K_color = K_depth[:3, :3].copy(), K_color[:3, :3].copy()
            for K in (self.K_depth, self.K_color):
                K[1, 1] = K[0, 0]
        named = ((self.K_depth, "intrinsic_depth.txt"), (self.K_color, "intrinsic_color.txt"))
        for K, name in named:
            if not (K[0, 0] > 0 and K[1, 1] > 0 and np.all(np.isfinite(K))):
                raise AeqaError(f"{self.folder / name}: focal lengths must be positive; {fix}")
        #: (width, height) of the depth frames, known once the first is read
        self.depth_size: tuple[int, int] | None = None
        self.color_size: tuple[int, int] | None = None
        self.hfov_deg = 0.0
        self._depth_resampling: _Resampling | None = None
        self._color_resampling: _Resampling | None = None
        self.skipped: list[int] = []

    def _resolve_format(self, asked: str) -> str:
        side = self.sidecar
        if side is not None and asked != "auto" and side.convention != asked:
            raise AeqaError(
                f"{self.folder / SIDECAR_FILE}: the history is stored as {side.convention}, "
                f"not {asked}; pass --history-format {side.convention} (or auto)"
            )
        if asked != "auto":
            return asked
        if side is not None:
            return side.convention
        found = detect_format(self.folder, list(self._names.values()))
        if found is None:
            raise AeqaError(
                f"{self.folder}: cannot tell whether this is an HM3D or a ScanNet history; "
                "pass --history-format hm3d or scannet"
            )
        return found

    def _check_files(self) -> None:
        """Every frame has its depth and pose: a history extracted RGB-only, or a frame lost,
        is named before anything is read."""
        missing: dict[str, list[str]] = {"depth": [], "pose": []}
        for fid in self.frame_ids:
            stem = self._names[fid]
            if not (self.folder / f"{stem}-depth.png").is_file():
                missing["depth"].append(f"{stem}-depth.png")
            if not (self.folder / f"{stem}.txt").is_file():
                missing["pose"].append(f"{stem}.txt")
        if len(missing["depth"]) == len(missing["pose"]) == len(self.frame_ids):
            raise AeqaError(
                f"{self.folder}: the history has colour frames only (no -depth.png, no pose "
                ".txt); extract it with depth and poses (OpenEQA's extract-frames.py without "
                "--rgb-only)"
            )
        for kind, names in missing.items():
            if names:
                more = f" and {len(names) - 1} more" if len(names) > 1 else ""
                stem = names[0].split("-")[0].removesuffix(".txt")
                raise AeqaError(
                    f"{self.folder / names[0]}: {kind} of frame {stem} missing{more}; extract "
                    f"the frame again, or remove {stem}-rgb.png so the frame is left out"
                )

    def __len__(self) -> int:
        return len(self.frame_ids)

    @property
    def has_semantic(self) -> bool:
        return bool(self.sidecar is not None and self.sidecar.semantic)

    def labels(self) -> dict[int, InstanceLabel]:
        return dict(self.sidecar.labels) if self.sidecar is not None else {}

    def _first_depth(self, depth: np.ndarray, path: Path) -> None:
        """Fix the camera from the first depth frame: our hfov from K, and a resampling where
        K is not a centred square-pixel pinhole."""
        height, width = depth.shape
        K = self.K_depth
        # K gives no size; its principal point must lie near the middle of the frame.
        if not (
            abs(K[0, 2] - width / 2.0) <= max(2.0, width / 8.0)
            and abs(K[1, 2] - height / 2.0) <= max(2.0, height / 8.0)
        ):
            raise AeqaError(
                f"{path}: depth frame is {width}x{height}, but intrinsic_depth.txt has its "
                f"principal point at ({K[0, 2]:.1f}, {K[1, 2]:.1f}), a camera of about "
                f"{2 * K[0, 2]:.0f}x{2 * K[1, 2]:.0f}; extract the frames and intrinsics of "
                "one camera"
            )
        self.depth_size = (width, height)
        self.hfov_deg = hfov_from_focal(width, K[0, 0])
        if not is_centred_pinhole(K, width, height):
            rows, cols, inside = pinhole_source_pixels(
                K, width, height, width, height, self.hfov_deg
            )
            self._depth_resampling = _Resampling(rows, cols, inside)

    def _color_for(self, rgb: np.ndarray, path: Path) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
            shape = "x".join(str(s) for s in rgb.shape)
            raise AeqaError(
                f"{path}: colour frame must be 8-bit RGB, got {rgb.dtype} {shape}; extract it again"
            )
        rgb = rgb[..., :3]
        size = (rgb.shape[1], rgb.shape[0])
        assert self.depth_size is not None
        if self.color_size is None:
            self.color_size = size
            width, height = self.depth_size
            same_camera = size == self.depth_size and np.allclose(
                self.K_color, self.K_depth, atol=1e-3
            )
            if self.format == "hm3d" and size != self.depth_size:
                raise AeqaError(
                    f"{path}: colour frame is {size[0]}x{size[1]} but the depth frames are "
                    f"{width}x{height}; HM3D histories render both with one camera, so "
                    "extract them again together"
                )
            if not (same_camera and self._depth_resampling is None):
                rows, cols, inside = pinhole_source_pixels(
                    self.K_color, size[0], size[1], width, height, self.hfov_deg
                )
                self._color_resampling = _Resampling(rows, cols, inside)
        elif size != self.color_size:
            raise AeqaError(
                f"{path}: colour frame is {size[0]}x{size[1]}, the history's first "
                f"{self.color_size[0]}x{self.color_size[1]}; extract the frame again"
            )
        if self._color_resampling is not None:
            return self._color_resampling.apply(rgb)
        return rgb

    def pose(self, frame_id: int) -> np.ndarray | None:
        """The camera-to-world pose (4x4, our conventions) of a frame; None where the history
        marks it invalid (non-finite, as ScanNet does where its tracking was lost).

        Raises:
            AeqaError: the pose file is not a 4x4 rigid transform.
        """
        path = self.folder / f"{self._names[frame_id]}.txt"
        fix = "extract the frame again, or remove its -rgb.png so it is left out"
        T = _read_matrix(path, "camera pose", fix)
        if not np.all(np.isfinite(T)):
            return None
        T = scannet_to_world_pose(T) if self.format == "scannet" else T
        if not is_rigid_transform(T):
            raise AeqaError(
                f"{path}: camera pose is not a rigid camera-to-world transform (orthonormal "
                f"rotation, last row 0 0 0 1); {fix}"
            )
        return T

    def depth_m(self, frame_id: int) -> np.ndarray:
        """(H, W) float32 z-depth in metres of a frame, on our camera (0 = no depth).

        Raises:
            AeqaError: the depth frame is not a 16-bit single-channel PNG, or its size is not
                the history's.
        """
        stem = self._names[frame_id]
        path = self.folder / f"{stem}-depth.png"
        encoding = "depth / 10 m * 65535" if self.format == "hm3d" else "millimetres, as ScanNet's"
        units = _uint16_frame(_read_png(path, "depth frame"), path, "depth frame", encoding)
        if self.depth_size is None:
            self._first_depth(units, path)
        elif (units.shape[1], units.shape[0]) != self.depth_size:
            w, h = self.depth_size
            raise AeqaError(
                f"{path}: depth frame is {units.shape[1]}x{units.shape[0]}, the history's "
                f"{w}x{h} (its first depth frame and intrinsic_depth.txt); extract the frame "
                f"again, or remove {stem}-rgb.png so it is left out"
            )
        if self._depth_resampling is not None:
            units = self._depth_resampling.apply(units)
        if self.format == "hm3d":
            return (units.astype(np.float32) / np.float32(_UINT16_MAX)) * np.float32(
                HM3D_DEPTH_RANGE_M
            )
        return units.astype(np.float32) / np.float32(SCANNET_DEPTH_PER_M)

    def rgb(self, frame_id: int) -> np.ndarray:
        """(H, W, 3) uint8 colour of a frame on the depth frames' camera."""
        if self.depth_size is None:
            self.depth_m(frame_id)
        path = self.folder / f"{self._names[frame_id]}-rgb.png"
        return self._color_for(_read_png(path, "colour frame"), path)

    def semantic(self, frame_id: int) -> np.ndarray:
        """(H, W) int32 instance ids of a frame (zeros where the history has none).

        Raises:
            AeqaError: a semantic frame is missing, not 16-bit or of another size.
        """
        assert self.depth_size is not None
        width, height = self.depth_size
        if not self.has_semantic:
            return np.zeros((height, width), dtype=np.int32)
        path = self.folder / f"{self._names[frame_id]}-semantic.png"
        if not path.is_file():
            raise AeqaError(
                f"{path}: semantic frame missing (the sidecar says the history has them); "
                "export the history again"
            )
        ids = _uint16_frame(
            _read_png(path, "semantic frame"), path, "semantic frame", "instance ids"
        )
        if (ids.shape[1], ids.shape[0]) != self.depth_size:
            raise AeqaError(
                f"{path}: semantic frame is {ids.shape[1]}x{ids.shape[0]}, the depth frames "
                f"{width}x{height}; export the history again"
            )
        if self._depth_resampling is not None:
            ids = self._depth_resampling.apply(ids)
        return ids.astype(np.int32)

    def camera_height_m(self, floor_y: float, T_world_camera: np.ndarray) -> float:
        if self.sidecar is not None:
            return self.sidecar.camera_height_m
        return float(T_world_camera[1, 3]) - floor_y

    def observation(self, frame_id: int, floor_y: float = 0.0) -> Observations | None:
        """A frame as :class:`Observations` (None where its pose is marked invalid); the
        agent's state is derived from the camera (``floor_y``: where the sidecar gives no
        camera height)."""
        T = self.pose(frame_id)
        if T is None:
            return None
        depth = self.depth_m(frame_id)
        position, rotation = agent_state_from_camera(T, self.camera_height_m(floor_y, T))
        return Observations(
            rgb=self.rgb(frame_id),
            depth=depth,
            semantic=self.semantic(frame_id),
            T_world_camera=T,
            state=AgentState(position, rotation),
            hfov_deg=self.hfov_deg,
        )

    def observations(self, floor_y: float = 0.0) -> Iterator[tuple[int, Observations]]:
        """``(frame number, observation)`` of every frame in order; frames whose pose is marked
        invalid are skipped (and listed in :attr:`skipped`)."""
        self.skipped = []
        for fid in self.frame_ids:
            obs = self.observation(fid, floor_y)
            if obs is None:
                self.skipped.append(fid)
                continue
            yield fid, obs
        if self.skipped:
            logger.warning(
                "%s: %d of %d frames have no valid pose (tracking lost) and are left out",
                self.folder,
                len(self.skipped),
                len(self.frame_ids),
            )

    def floor_y(self) -> float:
        """The floor height (Y-up world, metres): the sidecar's, else estimated from up to
        ``_FLOOR_FRAMES`` evenly spaced frames as the most common height (2 cm bins, refined by
        the median about it) of the points well below the cameras (1.5 m below the lowest
        camera where none is seen)."""
        if self.sidecar is not None:
            return self.sidecar.floor_y
        picks = _evenly_spaced(self.frame_ids, _FLOOR_FRAMES)
        heights: list[np.ndarray] = []
        camera_y: list[float] = []
        for fid in picks:
            T = self.pose(fid)
            if T is None:
                continue
            depth = self.depth_m(fid)
            camera_y.append(float(T[1, 3]))
            _, y, _ = backproject_world(depth, T, self.hfov_deg)
            heights.append(y[::4, ::4][depth[::4, ::4] > 0])
        if not camera_y:
            raise AeqaError(
                f"{self.folder}: no frame has a valid camera pose; extract the history again"
            )
        lowest_camera = min(camera_y)
        points = np.concatenate(heights) if heights else np.zeros(0, dtype=np.float32)
        points = points[points < lowest_camera - 0.5]
        if len(points) < 100:
            logger.warning(
                "%s: no floor in sight of the frames; taking it %.1f m below the lowest camera",
                self.folder,
                _DEFAULT_CAMERA_HEIGHT_M,
            )
            return lowest_camera - _DEFAULT_CAMERA_HEIGHT_M
        bins = np.floor(points / 0.02).astype(np.int64)
        values, counts = np.unique(bins, return_counts=True)
        mode_y = (values[int(np.argmax(counts))] + 0.5) * 0.02
        # A floor on a bin edge fills two bins: the median of the points about it is the plane.
        return float(np.median(points[np.abs(points - mode_y) <= 0.03]))


def _evenly_spaced(items: list[int], count: int) -> list[int]:
    """Up to ``count`` items spread evenly from first to last, as OpenEQA's multi-frame
    baselines pick frames: ``round(linspace(0, n - 1, count))``."""
    if not items or count <= 0:
        return []
    picks = np.round(np.linspace(0, len(items) - 1, count)).astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def open_history(folder: str | Path, history_format: str = "auto") -> EpisodeHistory:
    """Open a history folder (see :class:`EpisodeHistory`)."""
    return EpisodeHistory(folder, history_format)


def memory_from_history(
    history: EpisodeHistory | str | Path,
    config: MemoryConfig | None = None,
    agent: AgentSpec | None = None,
    history_format: str = "auto",
) -> SemanticMemory:
    """A :class:`SemanticMemory` built from a history's frames, as the episode that recorded
    them built it: each frame integrated into the voxels and the occupancy map in order, frame
    numbers as steps.

    Args:
        history: an opened history or its folder.
        config: how frames are fused (default :class:`MemoryConfig`).
        agent: the agent the occupancy map is built for where the sidecar names none.
        history_format: ``auto``, ``hm3d`` or ``scannet`` (for a folder).

    Raises:
        AeqaError: a frame file that is missing or malformed (named, with the fix).
    """
    if not isinstance(history, EpisodeHistory):
        history = EpisodeHistory(history, history_format)
    side = history.sidecar
    floor_y = history.floor_y()
    memory = SemanticMemory(
        config or MemoryConfig(),
        history.labels(),
        floor_y=floor_y,
        agent=side.agent if side is not None else agent,
    )
    #: the memory's frame id (its integration count) -> the history's frame number
    integrated: list[int] = []
    for fid, obs in history.observations(floor_y):
        try:
            memory.integrate(obs, fid)
        except AeqaError as e:
            raise AeqaError(f"{history.folder}: frame {fid}: {e}") from e
        memory.occupancy.update(obs)
        integrated.append(fid)
    if not integrated:
        raise AeqaError(
            f"{history.folder}: no frame has a valid camera pose; extract the history again"
        )
    if not memory.keyframes.frames:
        # No frame showed a labelled instance: OpenEQA's multi-frame baselines' evenly spaced
        # frames stand in for the best views of objects.
        for index in _evenly_spaced(list(range(len(integrated))), memory.config.keyframes):
            fid = integrated[index]
            T = history.pose(fid)
            assert T is not None
            memory.keyframes.keep(index, fid, history.rgb(fid), T)
    logger.info(
        "%s: %d frames -> %d voxels, %d objects",
        history.folder,
        memory.frames_integrated,
        len(memory),
        len(memory.objects()),
    )
    return memory


__all__ = [
    "HISTORY_FORMATS",
    "SIDECAR_FILE",
    "EpisodeHistory",
    "HistorySidecar",
    "HistorySource",
    "HistoryWriter",
    "detect_format",
    "memory_from_history",
    "open_history",
]

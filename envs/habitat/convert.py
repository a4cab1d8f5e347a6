"""Conversions between aeqa's simulator records and habitat-sim's, as plain functions.

Nothing here imports habitat-sim, so every conversion is tested where it is not installed:
which files habitat-sim is given for a scene, the sensor, agent, action and navmesh settings
of a :class:`~aeqa.envs.config.SimConfig`, quaternions (ours ``[w, x, y, z]``, habitat-sim's
``quaternion.quaternion``, magnum's ``Quaternion`` and the ``[x, y, z, w]`` coefficients its
``AgentState`` accepts) and observations (RGBA to RGB, depth range, instance ids).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_normalize, quat_to_matrix
from aeqa.envs.scene import SCANNET_SUFFIX, SceneMesh, SceneSpec, scene_in_folder
from aeqa.envs.semantic import (
    SemanticInstance,
    linear_to_srgb_u8,
    read_semantic_txt,
    rgb_to_hex,
    write_semantic_txt,
)
from aeqa.envs.types import LOOK_DOWN, LOOK_UP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT

#: the one line shown where habitat-sim is missing
INSTALL_HINT = (
    "habitat-sim is not installed in this Python; install it with conda "
    "(conda install habitat-sim headless -c conda-forge -c aihabitat) or build it from source "
    "with `bash launch/install_habitat.sh`, or use sim.type=meshsim"
)

#: sensor uuids of the agent; all three share one pose, resolution and field of view
RGB, DEPTH, SEMANTIC = "rgb", "depth", "semantic"
SENSORS = (RGB, DEPTH, SEMANTIC)
#: the one-pixel downward depth camera that measures the floor under a point
FLOOR_PROBE = "floor_probe"
#: how far above a navmesh height the floor surface under it may lie (as meshsim's)
FLOOR_ABOVE_NAV_M = 0.05
#: habitat-sim's constraint on look_up / look_down (degrees from level), as meshsim clamps
MAX_TILT_DEG = 90.0
#: how far (horizontally) a given start may lie from the navigable area, as meshsim accepts it
START_TOLERANCE_M = 0.05
#: islands with at least this share of the largest island's area may be the main floor
FLOOR_ISLAND_SHARE = 0.3

_DATASET_SUFFIX = ".scene_dataset_config.json"
_STAGE_SUFFIX = ".stage_config.json"
_Z_UP = {"up": [0, 0, 1], "front": [0, 1, 0]}
_Y_UP = {"up": [0, 1, 0], "front": [0, 0, -1]}


# --- scenes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HabitatScene:
    """What habitat-sim is given for one scene.

    Attributes:
        source: the scene as the user named it.
        scene_id: ``SimulatorConfiguration.scene_id``; empty when ``stage_json`` is written
            to a file that becomes the scene id.
        dataset_config: ``scene_dataset_config_file`` (``"default"``: none).
        stage_json: a stage config (JSON text) with absolute asset paths for scenes that come
            without one: the up axis, scale, semantic mesh and navmesh habitat-sim would not
            find or orient by itself. Empty when ``scene_id`` is used as is.
        stage_name: a file name for ``stage_json``.
        semantic_textures: the semantic mesh carries its instance colours in textures.
        semantic_txt: the scene's ``semantic.txt``, for instance categories.
        ground_truth: a generated scene's ``NAME.scene.json``.
        convert: a PLY scene, which is loaded with our loader and handed to habitat-sim as a
            Y-up glb (:func:`write_yup_scene`): habitat-sim applies a stage's up axis and scale
            only to files with a scene hierarchy, which PLY files lack.
    """

    source: str
    scene_id: str = ""
    dataset_config: str = "default"
    stage_json: str = ""
    stage_name: str = ""
    semantic_textures: bool = False
    semantic_txt: Path | None = None
    ground_truth: Path | None = None
    convert: SceneSpec | None = None


def habitat_scene(spec: SceneSpec, dataset_config: str = "") -> HabitatScene:
    """How habitat-sim loads the scene ``spec`` names (a file, a basename, or a folder holding
    one scene).

    - a generated scene (``NAME.stage_config.json`` beside it, or given directly): that file;
    - a scene of a scene dataset (HM3D's ``*.basis.glb`` with its
      ``*.scene_dataset_config.json``, given or found in the three folders above the scene):
      the glb within that dataset;
    - anything else (a plain HM3D ``.glb`` with ``NAME.semantic.glb`` / ``.semantic.txt``, a
      ScanNet ``*_vh_clean_2.ply``, any GLB / PLY / OBJ): a stage config with the file's up
      axis (GLB and ScanNet Z-up, PLY / OBJ Y-up unless ``spec.up`` says otherwise), scale,
      semantic mesh and ``NAME.navmesh`` where present.

    Raises:
        AeqaError: a missing scene or dataset config, or a non-positive scale.
    """
    if spec.metres_per_unit <= 0:
        raise AeqaError(
            f"{spec.path}: metres_per_unit must be positive, got {spec.metres_per_unit}"
        )
    path = Path(spec.path).expanduser().absolute()
    if path.is_dir():
        path = scene_in_folder(path)
    base = _basename(path)
    semantic_txt = _existing(base, ".semantic.txt")
    ground_truth = _existing(base, ".scene.json")
    source = str(spec.path)
    dataset: Path | None = None
    if dataset_config:
        dataset = Path(dataset_config).expanduser().absolute()
        if not dataset.is_file():
            raise AeqaError(
                f"{dataset}: scene dataset config not found; check sim.scene_dataset_config"
            )
    else:
        dataset = _find_dataset_config(path) if path.name.endswith(".basis.glb") else None
    if dataset is not None:
        render = path if path.suffix == ".glb" else _render_file(base, prefer_basis=True)
        return HabitatScene(
            source, str(render), str(dataset), semantic_txt=semantic_txt, ground_truth=ground_truth
        )
    given = path if path.name.endswith(_STAGE_SUFFIX) else base.with_name(base.name + _STAGE_SUFFIX)
    if given.is_file() and (path == given or path.suffix in ("", ".glb")):
        return HabitatScene(
            source,
            str(given),
            semantic_txt=_stage_descriptor(given) or semantic_txt,
            ground_truth=ground_truth,
        )
    if path.name.endswith(_STAGE_SUFFIX):
        raise AeqaError(f"{path}: scene file not found; check the path")
    render = path if path.suffix else _render_file(base)
    if not render.is_file():
        raise AeqaError(f"{render}: scene file not found; check the path")
    if render.suffix == ".ply":
        return HabitatScene(
            source,
            stage_name=f"{render.stem}{_STAGE_SUFFIX}",
            ground_truth=ground_truth,
            convert=SceneSpec(str(render), spec.up, spec.metres_per_unit),
        )
    is_glb = render.suffix in (".glb", ".gltf")
    z_up = (spec.up or ("z" if is_glb or render.name.endswith(SCANNET_SUFFIX) else "y")) == "z"
    stage: dict[str, Any] = {"render_asset": str(render), **(_Z_UP if z_up else _Y_UP)}
    if spec.metres_per_unit != 1.0:
        stage["scale"] = [spec.metres_per_unit] * 3
    semantic_glb = _existing(base, ".semantic.glb") if is_glb else None
    textures = False
    if semantic_glb is not None and semantic_txt is not None:
        textures = glb_has_textures(semantic_glb)
        frame = _Z_UP if z_up else _Y_UP
        stage.update(
            semantic_asset=str(semantic_glb),
            semantic_descriptor_filename=str(semantic_txt),
            semantic_up=frame["up"],
            semantic_front=frame["front"],
            has_semantic_textures=textures,
        )
    navmesh = _existing(base, ".basis.navmesh") or _existing(base, ".navmesh")
    if navmesh is not None:
        stage["navmesh_asset"] = str(navmesh)
    return HabitatScene(
        source,
        stage_json=json.dumps(stage, sort_keys=True),
        stage_name=f"{base.name}{_STAGE_SUFFIX}",
        semantic_textures=textures,
        semantic_txt=semantic_txt if semantic_glb is not None else None,
        ground_truth=ground_truth,
    )


def _basename(path: Path) -> Path:
    name = path.name
    for suffix in (_STAGE_SUFFIX, ".semantic.glb", ".basis.glb", ".glb"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path


def _existing(base: Path, suffix: str) -> Path | None:
    path = base.with_name(base.name + suffix)
    return path if path.is_file() else None


def _render_file(base: Path, prefer_basis: bool = False) -> Path:
    """The render mesh of a basename: the plain ``.glb``, else the ``.basis.glb`` (the other
    way round within a scene dataset, whose configs name the basis variant)."""
    order = (".basis.glb", ".glb") if prefer_basis else (".glb", ".basis.glb")
    for suffix in order:
        found = _existing(base, suffix)
        if found is not None:
            return found
    return base.with_name(base.name + ".glb")


def _find_dataset_config(scene: Path, levels: int = 3) -> Path | None:
    """The ``*.scene_dataset_config.json`` nearest above ``scene`` (HM3D keeps it beside its
    ``val/`` and ``train/`` folders); one naming ``annotated`` first, as it has the semantics."""
    folder = scene.parent
    for _ in range(levels):
        folder = folder.parent
        found = sorted(folder.glob(f"*{_DATASET_SUFFIX}"))
        if found:
            annotated = [p for p in found if "annotated" in p.name]
            return (annotated or found)[0]
    return None


def _stage_descriptor(stage: Path) -> Path | None:
    """The ``semantic_descriptor_filename`` a stage config names, if the file is there."""
    try:
        config = json.loads(stage.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AeqaError(f"{stage}: unreadable stage config ({e}); check the file") from e
    name = config.get("semantic_descriptor_filename") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name:
        return None
    path = stage.parent / name
    return path if path.is_file() else None


def glb_has_textures(path: Path) -> bool:
    """True when a binary glTF declares images (instance colours painted in textures)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
            if len(header) < 20 or header[:4] != b"glTF":
                return False
            chunk_length, chunk_type = struct.unpack("<I4s", header[12:20])
            if chunk_type != b"JSON":
                return False
            document = json.loads(f.read(chunk_length))
    except (OSError, ValueError) as e:
        raise AeqaError(f"{path}: unreadable glb ({e}); check the file") from e
    return bool(document.get("images")) if isinstance(document, dict) else False


@dataclass
class SceneAnnotations:
    """A scene's instance labels and generated ground truth, read beside its files (the part of
    a :class:`~aeqa.envs.scene.SceneMesh` the episode loop uses for labels)."""

    source: str
    instances: dict[int, SemanticInstance] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None

    def category_of(self, instance_id: int) -> str:
        info = self.instances.get(int(instance_id))
        return info.category if info is not None else ""


def scene_annotations(scene: HabitatScene) -> SceneAnnotations:
    instances = (
        {i.instance_id: i for i in read_semantic_txt(scene.semantic_txt)}
        if scene.semantic_txt is not None
        else {}
    )
    truth = None
    if scene.ground_truth is not None:
        try:
            truth = json.loads(scene.ground_truth.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise AeqaError(f"{scene.ground_truth}: unreadable scene ground truth ({e})") from e
    return SceneAnnotations(scene.source, instances, truth if isinstance(truth, dict) else None)


def ground_truth_start(
    truth: Mapping[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(position (3,), rotation [w, x, y, z])`` of a generated scene's own start, if any."""
    start = (truth or {}).get("start")
    if not isinstance(start, dict) or "position" not in start or "rotation" not in start:
        return None
    return np.asarray(start["position"], float), np.asarray(start["rotation"], float)


# --- agent, sensors, actions, navmesh ----------------------------------------------------------


@dataclass(frozen=True)
class CameraSettings:
    """The pinhole camera every sensor shares.

    Attributes:
        resolution: ``(height, width)``, habitat-sim's order.
        position_m: sensor position relative to the agent's base (agent frame, Y up).
        orientation_rad: Euler angles about X, Y, Z; X is the pitch (negative looks down).
        far_m: far clipping plane; depth beyond ``max_depth_m`` is zeroed afterwards.
    """

    resolution: tuple[int, int]
    hfov_deg: float
    position_m: tuple[float, float, float]
    orientation_rad: tuple[float, float, float]
    far_m: float


def camera_settings(config: SimConfig) -> CameraSettings:
    if config.width < 1 or config.height < 1 or not 0 < config.hfov_deg < 180:
        raise AeqaError(
            f"bad camera {config.width}x{config.height}, HFOV {config.hfov_deg}; "
            "width and height must be positive, the HFOV between 0 and 180 degrees"
        )
    return CameraSettings(
        resolution=(int(config.height), int(config.width)),
        hfov_deg=float(config.hfov_deg),
        position_m=(0.0, float(config.camera_height_m), 0.0),
        orientation_rad=(math.radians(config.camera_tilt_deg), 0.0, 0.0),
        far_m=max(1000.0, 2.0 * float(config.max_depth_m)),
    )


def navmesh_values(config: SimConfig) -> dict[str, float]:
    """``NavMeshSettings`` fields that differ from habitat-sim's defaults by our agent."""
    return {
        "agent_radius": float(config.agent.radius_m),
        "agent_height": float(config.agent.height_m),
        "agent_max_climb": float(config.agent.max_climb_m),
        "cell_size": float(config.nav_cell_m),
    }


def action_amounts(config: SimConfig) -> dict[str, tuple[float, float | None]]:
    """habitat-sim action name -> ``(amount, constraint)`` of its ``ActuationSpec``."""
    return {
        MOVE_FORWARD: (float(config.agent.forward_step_m), None),
        TURN_LEFT: (float(config.agent.turn_angle_deg), None),
        TURN_RIGHT: (float(config.agent.turn_angle_deg), None),
        LOOK_UP: (float(config.agent.tilt_angle_deg), MAX_TILT_DEG),
        LOOK_DOWN: (float(config.agent.tilt_angle_deg), MAX_TILT_DEG),
    }


# --- rotations and poses -----------------------------------------------------------------------


def habitat_coeffs(rotation_wxyz: np.ndarray) -> np.ndarray:
    """``[x, y, z, w]`` coefficients (habitat-sim's ``quat_from_coeffs`` order) of a
    ``[w, x, y, z]`` rotation, normalised."""
    w, x, y, z = quat_normalize(rotation_wxyz)
    return np.array([x, y, z, w])


def wxyz_from_habitat(rotation: Any) -> np.ndarray:
    """``[w, x, y, z]`` (float64, w >= 0) of a habitat-sim rotation: a ``quaternion.quaternion``
    (``w, x, y, z`` attributes), a magnum ``Quaternion`` (``scalar``, ``vector``) or
    ``[x, y, z, w]`` coefficients."""
    if hasattr(rotation, "scalar") and hasattr(rotation, "vector"):
        vector = rotation.vector
        q = np.array([rotation.scalar, vector[0], vector[1], vector[2]], dtype=np.float64)
    elif all(hasattr(rotation, name) for name in ("w", "x", "y", "z")):
        q = np.array([rotation.w, rotation.x, rotation.y, rotation.z], dtype=np.float64)
    else:
        coeffs = np.asarray(rotation, dtype=np.float64).reshape(4)
        q = np.array([coeffs[3], coeffs[0], coeffs[1], coeffs[2]])
    q = quat_normalize(q)
    return q if q[0] >= 0 else -q


def T_world_camera_from_pose(position: np.ndarray, rotation_wxyz: np.ndarray) -> np.ndarray:
    """Camera-to-world 4x4 (float64) from a sensor's world position (3,) and rotation."""
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(rotation_wxyz)
    T[:3, 3] = np.asarray(position, dtype=np.float64).reshape(3)
    return T


# --- observations ------------------------------------------------------------------------------


def observation_arrays(
    raw: Mapping[str, Any], max_depth_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our ``(rgb, depth, semantic)`` from habitat-sim's sensor readings.

    habitat-sim hands out views into buffers it overwrites on the next frame, so every array
    is copied.

    Args:
        raw: ``rgb`` (H, W, 4) uint8 RGBA, ``depth`` (H, W) float32 z-depth in metres,
            ``semantic`` (H, W) uint32 instance ids.
        max_depth_m: depth beyond this (and non-finite depth) reads 0.

    Returns:
        rgb (H, W, 3) uint8, depth (H, W) float32 metres, semantic (H, W) int32.
    """
    rgb = np.ascontiguousarray(np.asarray(raw[RGB])[..., :3], dtype=np.uint8)
    depth = np.array(raw[DEPTH], dtype=np.float32).reshape(rgb.shape[:2])
    depth[~np.isfinite(depth) | (depth > max_depth_m) | (depth < 0)] = 0.0
    ids = np.asarray(raw[SEMANTIC]).reshape(rgb.shape[:2])
    semantic = np.minimum(ids, np.iinfo(np.int32).max).astype(np.int32)
    return rgb, depth, semantic


# --- navigation --------------------------------------------------------------------------------


def floor_island(areas_m2: list[float], lowest_y: list[float]) -> int:
    """Index of the main floor's island: the lowest island (by its lowest vertex) among those
    with at least ``FLOOR_ISLAND_SHARE`` of the largest island's area. The navmesh also covers
    the ceiling's top, which can be the largest island of all."""
    if not areas_m2:
        raise ValueError("no islands")
    largest = max(areas_m2)
    candidates = [i for i, a in enumerate(areas_m2) if a >= FLOOR_ISLAND_SHARE * largest]
    return min(candidates, key=lambda i: (lowest_y[i], -areas_m2[i]))


# --- meshes habitat-sim cannot orient ----------------------------------------------------------


def instance_key_colors(count: int) -> np.ndarray:
    """(count, 3) uint8 linear vertex colours for instances 1..count whose sRGB conversion
    (what habitat-sim looks up in ``semantic.txt``) differs for every instance and is never
    black, which habitat-sim keeps for id 0."""
    srgb = linear_to_srgb_u8(np.arange(256, dtype=np.uint8))
    _, first = np.unique(srgb, return_index=True)
    levels = np.sort(first)  # linear bytes with distinct sRGB bytes
    n = len(levels)
    if count >= n**3:
        raise AeqaError(f"{count} instances are more than {n**3 - 1} distinct colour keys")
    k = np.arange(1, count + 1)
    return levels[np.stack([k // (n * n), (k // n) % n, k % n], axis=1)].astype(np.uint8)


def write_yup_scene(mesh: SceneMesh, folder: Path, name: str) -> str:
    """Write a loaded scene (Y-up world, metres) as ``NAME.glb`` (vertex colours),
    ``NAME.semantic.glb`` (instance colour keys) and ``NAME.semantic.txt`` in ``folder``.

    Every triangle gets its own three vertices, so colours and ids stay per triangle; faces
    with id 0 are black, which habitat-sim reads as unlabelled.

    Returns:
        the stage config (JSON text) that loads them in habitat-sim.
    """
    from aeqa.envs.scenegen import write_glb

    faces = np.asarray(mesh.faces, dtype=np.int64)
    positions = np.asarray(mesh.vertices, dtype=np.float32)[faces].reshape(-1, 3)
    corners = positions.reshape(-1, 3, 3).astype(np.float64)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    normals = np.repeat(normals, 3, axis=0).astype(np.float32)
    indices = np.arange(len(positions), dtype=np.uint32)
    alpha = np.full((len(positions), 1), 255, dtype=np.uint8)
    colors = np.asarray(mesh.vertex_colors, dtype=np.uint8)[faces].reshape(-1, 3)
    render = folder / f"{name}.glb"
    write_glb(render, positions, normals, np.hstack([colors, alpha]), indices)
    stage: dict[str, Any] = {"render_asset": str(render), **_Y_UP}
    if mesh.semantic_shared and len(mesh.instances):
        ids = sorted(mesh.instances)
        keys = instance_key_colors(len(ids))
        key_of = np.zeros((max(ids) + 1, 3), dtype=np.uint8)
        key_of[ids] = keys
        face_ids = np.clip(np.asarray(mesh.face_instance, dtype=np.int64), 0, max(ids))
        face_keys = np.repeat(key_of[face_ids], 3, axis=0)
        semantic = folder / f"{name}.semantic.glb"
        write_glb(semantic, positions, normals, np.hstack([face_keys, alpha]), indices)
        listed = [
            SemanticInstance(
                i,
                rgb_to_hex(linear_to_srgb_u8(key)),
                mesh.instances[i].category,
                mesh.instances[i].region_id,
            )
            for i, key in zip(ids, keys, strict=True)
        ]
        descriptor = folder / f"{name}.semantic.txt"
        write_semantic_txt(descriptor, listed)
        stage.update(
            semantic_asset=str(semantic),
            semantic_descriptor_filename=str(descriptor),
            semantic_up=_Y_UP["up"],
            semantic_front=_Y_UP["front"],
        )
    return json.dumps(stage, sort_keys=True)

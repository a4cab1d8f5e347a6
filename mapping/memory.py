"""The semantic point-cloud memory: voxels, objects, keyframes and the occupancy map of one
episode, with saving and loading (PLY + JSON + NPZ)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aeqa.envs.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, AgentSpec, Range
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import backproject_world, is_rigid_transform
from aeqa.envs.types import Observations
from aeqa.mapping.keyframes import Keyframe, KeyframeStore
from aeqa.mapping.objects import (
    InstanceLabel,
    ObjectInstance,
    VoxelLabels,
    cluster_by_category,
    group_by_instance,
    merge_overlapping,
)
from aeqa.mapping.occupancy import OccupancyMap
from aeqa.mapping.perception import Frame, Perceiver
from aeqa.mapping.voxels import AXIS_LIMIT, VoxelGrid, pack_axes, pack_rgb_sums

logger = logging.getLogger(__name__)

MEMORY_FORMAT = "aeqa-memory/1"
_FILES = ("memory.json", "points.ply", "voxels.npz", "occupancy.npz")


@dataclass
class MemoryConfig:
    """How frames are fused."""

    voxel_m: float = 0.05
    min_depth_m: float = 0.1
    max_depth_m: float = 6.0
    #: reject pixels whose depth jumps by more than this fraction from a neighbour (mixed pixels)
    edge_jump_ratio: float = 0.1
    #: voxels seen fewer times are outliers for the object table
    min_voxel_count: int = 2
    min_object_voxels: int = 3
    #: ``instances``: one object per instance id; ``clusters``: ignore ids and cluster each
    #: category's voxels (for over-segmented ids, as ScanNet's, or a detector without ids)
    object_mode: str = "instances"
    keyframes: int = 64
    keyframe_max_side: int = 640
    map_cell_m: float = 0.05
    #: open3d device for ``to_open3d`` and clustering: ``CPU:0`` or ``CUDA:0``
    device: str = "CPU:0"

    LIMITS: ClassVar[dict[str, Range]] = {
        "voxel_m": POSITIVE,
        "min_depth_m": NON_NEGATIVE,
        "max_depth_m": POSITIVE,
        "edge_jump_ratio": POSITIVE,
        "min_voxel_count": AT_LEAST_ONE,
        "min_object_voxels": AT_LEAST_ONE,
        "keyframes": NON_NEGATIVE,
        "keyframe_max_side": Range(16),
        "map_cell_m": POSITIVE,
    }


class SemanticMemory:
    """What the agent remembers of a scene.

    Args:
        config: fusion parameters.
        labels: instance id -> category and region, from the scene's annotations (or a
            detector); ids not listed carry no category.
        floor_y: height of the floor the agent walks on (for the occupancy map).
        agent: the agent's body (the occupancy map's obstacle band and clearance); the
            simulator's, ``sim.agent`` of the episode config.
        perceiver: labels each frame from its RGB-D (a detector; see
            :mod:`aeqa.mapping.perception`), its tracks becoming the instance ids and
            ``labels``; None: the frames' own ``semantic`` ids with ``labels`` (``gt``).
    """

    def __init__(
        self,
        config: MemoryConfig | None = None,
        labels: dict[int, InstanceLabel] | None = None,
        floor_y: float = 0.0,
        agent: AgentSpec | None = None,
        perceiver: Perceiver | None = None,
    ) -> None:
        self.config = config or MemoryConfig()
        self.agent = agent or AgentSpec()
        self.perceiver = perceiver
        #: where the labels came from: ``gt`` (the frames' semantic ids) or the perceiver's name
        self.perception = perceiver.name if perceiver is not None else "gt"
        self.labels: dict[int, InstanceLabel] = {}
        self.categories: list[str] = []
        self._set_labels(labels or {})
        self.voxels = VoxelGrid(self.config.voxel_m)
        self.occupancy = OccupancyMap(
            cell_m=self.config.map_cell_m,
            floor_y=floor_y,
            agent_height_m=self.agent.height_m,
            max_climb_m=self.agent.max_climb_m,
            agent_radius_m=self.agent.radius_m,
            max_range_m=self.config.max_depth_m,
        )
        self.keyframes = KeyframeStore(self.config.keyframes, self.config.keyframe_max_side)
        self.frames_integrated = 0
        #: instance id -> (first step, last step) seen
        self.seen_steps: dict[int, tuple[int, int]] = {}
        self._objects: list[ObjectInstance] | None = None

    def _set_labels(self, labels: dict[int, InstanceLabel]) -> None:
        # Category votes index ``categories``; only frames without instance ids cast them, and
        # those come with fixed labels, so re-sorting here never reorders cast votes.
        self.labels = dict(labels)
        self.categories = sorted({label.category for label in self.labels.values()})
        self._category_index = {name: i for i, name in enumerate(self.categories)}
        self._instance_to_category = self._category_lookup()

    def _category_lookup(self) -> np.ndarray:
        size = max(self.labels, default=0) + 1
        table = np.full(size, -1, dtype=np.int32)
        for instance_id, label in self.labels.items():
            if instance_id >= 0:
                table[instance_id] = self._category_index[label.category]
        return table

    # --- integration -------------------------------------------------------------------------

    def integrate(self, obs: Observations, step: int) -> None:
        """Fuse one RGB-D + instance frame into the voxels, object statistics and keyframes.

        With a perceiver, the instance ids are the perceiver's (``obs.semantic`` is not read)
        and each pixel votes with its detection's confidence.

        The occupancy map is a separate map: update it with ``memory.occupancy.update(obs)``.

        Raises:
            AeqaError: shapes disagree, depth is NaN or negative, or the pose is not a rigid
                transform. The memory is left as it was.
        """
        depth, rgb, semantic = self._validated(obs)
        cfg = self.config
        valid = (depth > cfg.min_depth_m) & (depth < cfg.max_depth_m)
        if cfg.edge_jump_ratio > 0:
            valid &= ~_depth_edges(depth, cfg.edge_jump_ratio)
        T = np.asarray(obs.T_world_camera, dtype=np.float64)
        scale = np.float32(1.0 / cfg.voxel_m)
        xyz_world = backproject_world(depth, T, obs.hfov_deg)
        coords = [np.floor(axis[valid] * scale).astype(np.int64) for axis in xyz_world]
        if len(coords[0]) and max(int(np.abs(c).max()) for c in coords) > AXIS_LIMIT:
            raise AeqaError("frame points lie too far from the origin for the voxel grid")
        weight = None
        if self.perceiver is not None:
            percept = self.perceiver.perceive(Frame(rgb, depth, xyz_world, valid))
            semantic, weight = percept.instance, percept.weight[valid]
            self._set_labels(self.perceiver.labels())
        frame = self.voxels.integrate(
            pack_axes(coords[0], coords[1], coords[2]),
            pack_rgb_sums(rgb)[valid],
            semantic[valid],
            weight=weight,
        )
        self._track_instances(frame.instance_pixels, step, rgb, T)
        self.frames_integrated += 1
        self._objects = None

    def _validated(self, obs: Observations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        depth = np.asarray(obs.depth)
        rgb = np.asarray(obs.rgb)
        semantic = np.asarray(obs.semantic)
        if depth.ndim != 2:
            raise AeqaError(f"frame depth must be (H, W), got shape {depth.shape}")
        if rgb.shape != (*depth.shape, 3):
            raise AeqaError(
                f"frame rgb shape {rgb.shape} does not match depth shape {depth.shape}; "
                "give (H, W, 3) colours for an (H, W) depth"
            )
        if semantic.shape != depth.shape:
            raise AeqaError(
                f"frame semantic shape {semantic.shape} does not match depth shape {depth.shape}"
            )
        if not np.all(np.isfinite(depth)):
            raise AeqaError("frame depth holds NaN or infinite values; give metres, 0 for no hit")
        if np.any(depth < 0):
            raise AeqaError("frame depth holds negative values; give metres, 0 for no hit")
        if not is_rigid_transform(np.asarray(obs.T_world_camera)):
            raise AeqaError(
                "frame pose T_world_camera is not a rigid transform (4x4, orthonormal rotation)"
            )
        if not 0 < obs.hfov_deg < 180:
            raise AeqaError(f"frame hfov_deg must be in (0, 180), got {obs.hfov_deg}")
        return depth.astype(np.float32, copy=False), rgb.astype(np.uint8, copy=False), semantic

    def _categories_of(self, instance: np.ndarray) -> np.ndarray:
        table = self._instance_to_category
        inside = (instance >= 0) & (instance < len(table))
        out = np.full(len(instance), -1, dtype=np.int32)
        out[inside] = table[instance[inside]]
        return out

    def _track_instances(
        self, pixels: dict[int, int], step: int, rgb: np.ndarray, T: np.ndarray
    ) -> None:
        """First and last steps each instance was seen, and keyframe candidates."""
        for instance_id in pixels:
            first, _ = self.seen_steps.get(instance_id, (step, step))
            self.seen_steps[instance_id] = (first, step)
        self.keyframes.offer(self.frames_integrated, step, rgb, T, pixels)

    # --- derived views -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.voxels)

    def voxel_labels(self) -> VoxelLabels:
        """Per-voxel winners of the votes, outlier voxels (seen too rarely) dropped."""
        grid = self.voxels
        instance, category = self._voxel_winners()
        keep = grid.count >= self.config.min_voxel_count
        return VoxelLabels(
            centres=grid.centres()[keep],
            colors=grid.colors()[keep],
            instance=np.maximum(instance[keep], 0),
            category=category[keep],
            count=grid.count[keep],
        )

    def _voxel_winners(self) -> tuple[np.ndarray, np.ndarray]:
        """Per voxel: the winning instance id (-1 none) and category index (-1 none); an
        instance's category comes from the labels, others from the category votes."""
        n = len(self.voxels)
        instance, _ = self.voxels.instance_votes.winners(n)
        category, _ = self.voxels.category_votes.winners(n)
        labelled = instance > 0
        category[labelled] = self._categories_of(instance[labelled])
        return instance, category

    def objects(self) -> list[ObjectInstance]:
        """The object table (cached until the next frame)."""
        if self._objects is None:
            self._objects = self._derive_objects()
        return self._objects

    def _derive_objects(self) -> list[ObjectInstance]:
        cfg = self.config
        voxels = self.voxel_labels()
        if cfg.object_mode == "clusters":
            voxels = replace(voxels, instance=np.zeros_like(voxels.instance))
        elif cfg.object_mode != "instances":
            raise AeqaError(f"unknown object_mode {cfg.object_mode!r}; use instances or clusters")
        objects = group_by_instance(
            voxels, self.categories, self.labels, cfg.voxel_m, cfg.min_object_voxels
        )
        first_free = max((o.object_id for o in objects), default=0) + 1
        clustered = cluster_by_category(
            voxels, self.categories, cfg.voxel_m, cfg.min_object_voxels, first_free
        )
        if clustered:
            members = _members_by_box(clustered, voxels)
            clustered = merge_overlapping(clustered, members, voxels, cfg.voxel_m)
        for obj in objects + clustered:
            first, last = self.seen_steps.get(obj.instance_id, (-1, -1))
            obj.first_step, obj.last_step = first, last
            obj.best_frames = self.keyframes.best_frame_ids(obj.instance_id)
        return objects + clustered

    def object_by_id(self, object_id: int) -> ObjectInstance | None:
        return next((o for o in self.objects() if o.object_id == object_id), None)

    def to_open3d(self) -> Any:
        """An ``open3d.t.geometry.PointCloud`` of voxel centres with ``colors`` (float 0..1),
        ``instance`` and ``category`` (int32) attributes, on the configured device."""
        import open3d as o3d

        grid = self.voxels
        instance, category = self._voxel_winners()
        device = o3d.core.Device(self.config.device)
        cloud = o3d.t.geometry.PointCloud(device)
        cloud.point.positions = o3d.core.Tensor(grid.centres().astype(np.float32), device=device)
        cloud.point.colors = o3d.core.Tensor(
            grid.colors().astype(np.float32) / 255.0, device=device
        )
        cloud.point.instance = o3d.core.Tensor(instance.reshape(-1, 1), device=device)
        cloud.point.category = o3d.core.Tensor(category.reshape(-1, 1), device=device)
        return cloud

    # --- persistence -------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the memory to ``folder``: ``points.ply`` (voxel centres, colours, labels),
        ``voxels.npz`` (sums and vote tables), ``occupancy.npz``, ``memory.json`` (perception
        mode, config, labels, objects, keyframe index) and ``keyframes/*.png``."""
        import imageio.v3 as iio

        folder = Path(folder)
        (folder / "keyframes").mkdir(parents=True, exist_ok=True)
        grid = self.voxels
        instance, category = self._voxel_winners()
        write_ply(
            folder / "points.ply", grid.centres(), grid.colors(), grid.count, instance, category
        )
        np.savez_compressed(folder / "voxels.npz", allow_pickle=False, **grid.state())
        np.savez_compressed(
            folder / "occupancy.npz", allow_pickle=False, **self.occupancy.to_state()
        )
        keyframes = []
        for frame in self.keyframes.frames.values():
            name = f"keyframes/{frame.frame_id:06d}.png"
            iio.imwrite(folder / name, frame.rgb)
            keyframes.append(
                {
                    "frame_id": frame.frame_id,
                    "step": frame.step,
                    "image": name,
                    "T_world_camera": np.asarray(frame.T_world_camera).tolist(),
                    "instance_pixels": {str(k): v for k, v in frame.instance_pixels.items()},
                }
            )
        document = {
            "format": MEMORY_FORMAT,
            "perception": self.perception,
            "config": asdict(self.config),
            "agent": asdict(self.agent),
            "floor_y": self.occupancy.floor_y,
            "frames_integrated": self.frames_integrated,
            "labels": {str(k): asdict(v) for k, v in sorted(self.labels.items())},
            "seen_steps": {str(k): list(v) for k, v in sorted(self.seen_steps.items())},
            "best_views": {
                str(k): [list(v) for v in views]
                for k, views in sorted(self.keyframes.best_views.items())
            },
            "keyframes": keyframes,
            "objects": [o.to_json() for o in self.objects()],
        }
        (folder / "memory.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SemanticMemory:
        """Read a memory written by :meth:`save`.

        Raises:
            AeqaError: a file is missing or unreadable (the message names it).
        """
        import imageio.v3 as iio

        folder = Path(folder)
        for name in _FILES:
            if not (folder / name).is_file():
                raise AeqaError(f"{folder / name}: memory file missing; save the memory again")
        try:
            document = json.loads((folder / "memory.json").read_text(encoding="utf-8"))
            voxel_state = dict(np.load(folder / "voxels.npz"))
            occupancy_state = dict(np.load(folder / "occupancy.npz"))
        except (OSError, ValueError, KeyError) as e:
            raise AeqaError(f"{folder}: memory files are unreadable ({e})") from e
        if document.get("format") != MEMORY_FORMAT:
            raise AeqaError(f"{folder / 'memory.json'}: not an {MEMORY_FORMAT} memory")
        labels = {int(k): InstanceLabel(**v) for k, v in document["labels"].items()}
        # Memories saved before the agent's body had its own spec carry it in the config.
        known = {f.name for f in fields(MemoryConfig)}
        config = MemoryConfig(**{k: v for k, v in document["config"].items() if k in known})
        agent = AgentSpec(**document["agent"]) if "agent" in document else None
        memory = cls(config, labels, float(document["floor_y"]), agent)
        # Memories saved before perception had modes read the semantic sensor.
        memory.perception = str(document.get("perception", "gt"))
        memory.voxels = VoxelGrid.from_state(memory.config.voxel_m, voxel_state)
        memory.occupancy = OccupancyMap.from_state(occupancy_state)
        memory.frames_integrated = int(document["frames_integrated"])
        memory.seen_steps = {
            int(k): (int(v[0]), int(v[1])) for k, v in document["seen_steps"].items()
        }
        memory.keyframes.best_views = {
            int(k): [(int(p), int(f)) for p, f in views]
            for k, views in document["best_views"].items()
        }
        for entry in document["keyframes"]:
            image_path = folder / entry["image"]
            if not image_path.is_file():
                raise AeqaError(f"{image_path}: keyframe image missing; save the memory again")
            memory.keyframes.frames[int(entry["frame_id"])] = Keyframe(
                frame_id=int(entry["frame_id"]),
                step=int(entry["step"]),
                rgb=np.asarray(iio.imread(image_path))[..., :3],
                T_world_camera=np.asarray(entry["T_world_camera"], dtype=np.float64),
                instance_pixels={int(k): int(v) for k, v in entry["instance_pixels"].items()},
            )
        memory._objects = [ObjectInstance.from_json(o) for o in document["objects"]]
        return memory


def _members_by_box(objects: list[ObjectInstance], voxels: VoxelLabels) -> dict[int, np.ndarray]:
    """Voxel indices of each clustered object: its category's voxels inside its box."""
    members = {}
    for obj in objects:
        inside = np.all((voxels.centres >= obj.bbox_min) & (voxels.centres <= obj.bbox_max), axis=1)
        members[obj.object_id] = np.flatnonzero(inside & (voxels.instance <= 0))
    return members


def _depth_edges(depth: np.ndarray, ratio: float) -> np.ndarray:
    """(H, W) bool pixels whose depth differs from a 4-neighbour by more than ``ratio``."""
    edges = np.zeros(depth.shape, dtype=bool)
    dx = np.abs(np.diff(depth, axis=1))
    dy = np.abs(np.diff(depth, axis=0))
    jump_x = dx > ratio * np.maximum(depth[:, 1:], depth[:, :-1])
    jump_y = dy > ratio * np.maximum(depth[1:, :], depth[:-1, :])
    # Mark the farther pixel of each jump: the mixed pixel sits on the background side.
    far_right = depth[:, 1:] > depth[:, :-1]
    edges[:, 1:] |= jump_x & far_right
    edges[:, :-1] |= jump_x & ~far_right
    far_down = depth[1:, :] > depth[:-1, :]
    edges[1:, :] |= jump_y & far_down
    edges[:-1, :] |= jump_y & ~far_down
    return edges


def write_ply(
    path: Path,
    points: np.ndarray,
    colors: np.ndarray,
    count: np.ndarray,
    instance: np.ndarray,
    category: np.ndarray,
) -> None:
    """Binary little-endian PLY with position, colour, observation count and labels."""
    n = len(points)
    data = np.zeros(
        n,
        dtype=[
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("count", "<i4"),
            ("instance", "<i4"),
            ("category", "<i4"),
        ],
    )
    data["x"], data["y"], data["z"] = points[:, 0], points[:, 1], points[:, 2]
    data["red"], data["green"], data["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    data["count"], data["instance"], data["category"] = count, instance, category
    header = "\n".join(
        [
            "ply",
            "format binary_little_endian 1.0",
            f"element vertex {n}",
            "property float x",
            "property float y",
            "property float z",
            "property uchar red",
            "property uchar green",
            "property uchar blue",
            "property int count",
            "property int instance",
            "property int category",
            "end_header",
        ]
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii") + b"\n")
        f.write(data.tobytes())

"""The object table derived from the voxel memory, and spatial relations between objects.

Objects are formed in named, separate steps:

1. *label*: each voxel takes the instance id and the category with most votes;
2. *group*: voxels sharing an instance id form one object;
3. *cluster*: voxels with a category but no instance id (a detector's output, or ids that are
   missing) are clustered per category with open3d's DBSCAN;
4. *merge*: clusters of one category whose boxes overlap are merged (over-segmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aeqa.envs.palette import dominant_color, is_emissive
from aeqa.envs.types import InstanceLabel

STRUCTURAL = frozenset({"wall", "floor", "ceiling", "unknown", ""})


@dataclass
class ObjectInstance:
    """One object of the memory.

    Attributes:
        object_id: stable id in the table (the instance id where one exists).
        instance_id: the source instance id, 0 for objects formed by clustering.
        category: category name.
        centroid: (3,) world mean of its voxel centres.
        bbox_min, bbox_max: (3,) world axis-aligned box of its voxels (voxel extents included).
        obb_center, obb_extent: (3,) centre and full side lengths of its oriented box.
        obb_rotation: (3, 3) axes of the oriented box (columns), world frame.
        color_name: the palette name of its dominant colour; color_rgb its mean RGB there.
        region: name of the region it is in ("" when unknown).
        point_count: voxels in the memory that belong to it.
        first_step, last_step: the steps it was first and last seen.
        best_frames: frame ids that saw it largest, largest first.
        lit_fraction: share of its voxels glowing with a light colour (a lamp or screen on).
        confidence: how sure perception was of it: a detector's mean confidence over the
            detections that formed it, 1 for annotated (``gt``) instances and clusters.
    """

    object_id: int
    instance_id: int
    category: str
    centroid: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    obb_center: np.ndarray
    obb_extent: np.ndarray
    obb_rotation: np.ndarray
    color_name: str
    color_rgb: np.ndarray
    region: str
    point_count: int
    first_step: int = -1
    last_step: int = -1
    best_frames: list[int] = field(default_factory=list)
    lit_fraction: float = 0.0
    confidence: float = 1.0

    @property
    def structural(self) -> bool:
        return self.category in STRUCTURAL

    @property
    def size_m(self) -> np.ndarray:
        return self.bbox_max - self.bbox_min

    def to_json(self) -> dict:
        return {
            "object_id": self.object_id,
            "instance_id": self.instance_id,
            "category": self.category,
            "centroid": _r(self.centroid),
            "bbox_min": _r(self.bbox_min),
            "bbox_max": _r(self.bbox_max),
            "obb_center": _r(self.obb_center),
            "obb_extent": _r(self.obb_extent),
            "obb_rotation": np.round(self.obb_rotation, 5).tolist(),
            "color_name": self.color_name,
            "color_rgb": [int(c) for c in self.color_rgb],
            "region": self.region,
            "point_count": self.point_count,
            "first_step": self.first_step,
            "last_step": self.last_step,
            "best_frames": list(self.best_frames),
            "lit_fraction": round(self.lit_fraction, 4),
            "confidence": round(self.confidence, 4),
        }

    @classmethod
    def from_json(cls, data: dict) -> ObjectInstance:
        arr = {
            k: np.asarray(data[k], dtype=np.float64)
            for k in (
                "centroid",
                "bbox_min",
                "bbox_max",
                "obb_center",
                "obb_extent",
                "obb_rotation",
            )
        }
        return cls(
            object_id=int(data["object_id"]),
            instance_id=int(data["instance_id"]),
            category=str(data["category"]),
            color_name=str(data["color_name"]),
            color_rgb=np.asarray(data["color_rgb"], dtype=np.uint8),
            region=str(data["region"]),
            point_count=int(data["point_count"]),
            first_step=int(data["first_step"]),
            last_step=int(data["last_step"]),
            best_frames=[int(f) for f in data["best_frames"]],
            lit_fraction=float(data.get("lit_fraction", 0.0)),
            confidence=float(data.get("confidence", 1.0)),
            **arr,
        )


def _r(v: np.ndarray) -> list[float]:
    return [round(float(x), 5) for x in v]


@dataclass(frozen=True)
class VoxelLabels:
    """Per-voxel inputs of the object steps: centres (N, 3), colours (N, 3) uint8, the winning
    instance id (N,) (0 = none) and category index (N,) (-1 = none), counts (N,)."""

    centres: np.ndarray
    colors: np.ndarray
    instance: np.ndarray
    category: np.ndarray
    count: np.ndarray


def build_object(
    object_id: int,
    instance_id: int,
    category: str,
    region: str,
    centres: np.ndarray,
    colors: np.ndarray,
    count: np.ndarray,
    voxel_m: float,
) -> ObjectInstance:
    """An :class:`ObjectInstance` from its voxels (centres (K, 3), colours (K, 3), counts (K,))."""
    half = voxel_m / 2.0
    color_name, color_rgb = dominant_color(colors, weights=count)
    obb_center, obb_extent, obb_rotation = _oriented_box(centres, voxel_m)
    return ObjectInstance(
        object_id=object_id,
        instance_id=instance_id,
        category=category,
        centroid=centres.mean(axis=0),
        bbox_min=centres.min(axis=0) - half,
        bbox_max=centres.max(axis=0) + half,
        obb_center=obb_center,
        obb_extent=obb_extent,
        obb_rotation=obb_rotation,
        color_name=color_name,
        color_rgb=color_rgb,
        region=region,
        point_count=len(centres),
        lit_fraction=float(np.average(is_emissive(colors), weights=count)) if len(colors) else 0.0,
    )


def _oriented_box(centres: np.ndarray, voxel_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gravity-aligned oriented box: yaw from the footprint's principal axes, Y kept up."""
    xz = centres[:, [0, 2]]
    mean = xz.mean(axis=0)
    if len(centres) >= 3:
        cov = np.cov((xz - mean).T)
        _, vectors = np.linalg.eigh(cov)
        major = vectors[:, 1]
    else:
        major = np.array([1.0, 0.0])
    axis_x = np.array([major[0], 0.0, major[1]])
    axis_y = np.array([0.0, 1.0, 0.0])
    axis_z = np.cross(axis_x, axis_y)
    R = np.stack([axis_x, axis_y, axis_z], axis=1)
    local = centres @ R
    lo = local.min(axis=0) - voxel_m / 2.0
    hi = local.max(axis=0) + voxel_m / 2.0
    return R @ ((lo + hi) / 2.0), hi - lo, R


def group_by_instance(
    voxels: VoxelLabels,
    categories: list[str],
    labels: dict[int, InstanceLabel],
    voxel_m: float,
    min_voxels: int,
) -> list[ObjectInstance]:
    """Step 2: one object per instance id with at least ``min_voxels`` voxels."""
    objects: list[ObjectInstance] = []
    labelled = voxels.instance > 0
    ids = voxels.instance[labelled]
    if len(ids) == 0:
        return objects
    order = np.argsort(ids, kind="stable")
    index = np.flatnonzero(labelled)[order]
    unique, starts = np.unique(ids[order], return_index=True)
    bounds = np.append(starts, len(order))
    for k, instance_id in enumerate(unique):
        members = index[bounds[k] : bounds[k + 1]]
        if len(members) < min_voxels:
            continue
        label = labels.get(int(instance_id))
        category = label.category if label else _majority_category(voxels, members, categories)
        obj = build_object(
            int(instance_id),
            int(instance_id),
            category,
            label.region if label else "",
            voxels.centres[members],
            voxels.colors[members],
            voxels.count[members],
            voxel_m,
        )
        obj.confidence = label.confidence if label else 1.0
        objects.append(obj)
    return objects


def _majority_category(voxels: VoxelLabels, members: np.ndarray, categories: list[str]) -> str:
    known = voxels.category[members]
    known = known[known >= 0]
    if len(known) == 0:
        return "unknown"
    return categories[int(np.bincount(known).argmax())]


def cluster_by_category(
    voxels: VoxelLabels,
    categories: list[str],
    voxel_m: float,
    min_voxels: int,
    first_id: int,
    eps_voxels: float = 2.5,
) -> list[ObjectInstance]:
    """Step 3: DBSCAN (open3d) over the voxels of each category that carry no instance id."""
    import open3d as o3d

    objects = []
    pending = (voxels.instance <= 0) & (voxels.category >= 0)
    next_id = first_id
    for category_index in np.unique(voxels.category[pending]):
        members = np.flatnonzero(pending & (voxels.category == category_index))
        if len(members) < min_voxels:
            continue
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(voxels.centres[members]))
        cluster = np.asarray(
            cloud.cluster_dbscan(
                eps=eps_voxels * voxel_m, min_points=min_voxels, print_progress=False
            )
        )
        for label in range(int(cluster.max(initial=-1)) + 1):
            part = members[cluster == label]
            if len(part) < min_voxels:
                continue
            objects.append(
                build_object(
                    next_id,
                    0,
                    categories[int(category_index)],
                    "",
                    voxels.centres[part],
                    voxels.colors[part],
                    voxels.count[part],
                    voxel_m,
                )
            )
            next_id += 1
    return objects


def box_overlap(a: ObjectInstance, b: ObjectInstance) -> float:
    """Intersection volume of two axis-aligned boxes over the smaller one's volume."""
    lo = np.maximum(a.bbox_min, b.bbox_min)
    hi = np.minimum(a.bbox_max, b.bbox_max)
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    smaller = min(float(np.prod(a.size_m)), float(np.prod(b.size_m)))
    return inter / smaller if smaller > 0 else 0.0


def merge_overlapping(
    objects: list[ObjectInstance],
    voxels_of: dict[int, np.ndarray],
    voxels: VoxelLabels,
    voxel_m: float,
    threshold: float = 0.3,
) -> list[ObjectInstance]:
    """Step 4: merge objects of one category whose boxes overlap by more than ``threshold``.

    ``voxels_of`` maps object ids to their voxel indices; merged objects are rebuilt from the
    union of their voxels and keep the smaller id.
    """
    changed = True
    objects = sorted(objects, key=lambda o: o.object_id)
    while changed:
        changed = False
        for i in range(len(objects)):
            for j in range(i + 1, len(objects)):
                a, b = objects[i], objects[j]
                if a.category != b.category or box_overlap(a, b) <= threshold:
                    continue
                members = np.concatenate([voxels_of[a.object_id], voxels_of[b.object_id]])
                voxels_of[a.object_id] = members
                merged = build_object(
                    a.object_id,
                    a.instance_id,
                    a.category,
                    a.region or b.region,
                    voxels.centres[members],
                    voxels.colors[members],
                    voxels.count[members],
                    voxel_m,
                )
                objects[i] = merged
                del objects[j]
                changed = True
                break
            if changed:
                break
    return objects


# --- spatial relations -----------------------------------------------------------------------


def horizontal_gap(a: ObjectInstance, b: ObjectInstance) -> float:
    """Distance (m) between two boxes' footprints on the floor plane (0 when they overlap)."""
    gap = np.maximum(0.0, np.maximum(a.bbox_min - b.bbox_max, b.bbox_min - a.bbox_max))
    return float(np.hypot(gap[0], gap[2]))


def is_on_top_of(a: ObjectInstance, b: ObjectInstance, tolerance_m: float = 0.12) -> bool:
    """True when ``a`` rests on ``b``: its footprint centre lies over ``b``'s larger footprint
    and its bottom is on ``b``'s upper part (a seat or a mattress lies below a backrest or
    headboard), not on the floor."""
    if a.object_id == b.object_id or b.structural or b.category == "rug":
        return False
    bottom = float(a.bbox_min[1])
    if bottom > float(b.bbox_max[1]) + tolerance_m or bottom < float(b.bbox_min[1]) + 0.15:
        return False
    if float(a.bbox_max[1]) < float(b.bbox_max[1]) - 0.6:
        return False
    cx, cz = a.centroid[0], a.centroid[2]
    over = b.bbox_min[0] <= cx <= b.bbox_max[0] and b.bbox_min[2] <= cz <= b.bbox_max[2]
    a_area = float(a.size_m[0] * a.size_m[2])
    b_area = float(b.size_m[0] * b.size_m[2])
    return bool(over and a_area < b_area)


def is_next_to(a: ObjectInstance, b: ObjectInstance, max_gap_m: float = 0.5) -> bool:
    """True for distinct, non-stacked objects whose footprints are within ``max_gap_m``."""
    if a.object_id == b.object_id or is_on_top_of(a, b) or is_on_top_of(b, a):
        return False
    return horizontal_gap(a, b) <= max_gap_m


def side_as_seen_from(a: ObjectInstance, b: ObjectInstance, viewpoint: np.ndarray) -> str:
    """Whether ``a`` is ``left`` or ``right`` of ``b`` for a viewer at ``viewpoint`` (3,) looking
    at the midpoint between them."""
    mid = (a.centroid + b.centroid) / 2.0
    forward = mid - np.asarray(viewpoint, dtype=np.float64)
    offset = a.centroid - b.centroid
    # Right of the viewer is forward x up on the floor plane: (-f_z, f_x) in (x, z).
    right = np.array([-forward[2], forward[0]])
    return "right" if float(right @ offset[[0, 2]]) > 0 else "left"


def centroid_distance(a: ObjectInstance, b: ObjectInstance) -> float:
    return float(np.linalg.norm(a.centroid - b.centroid))

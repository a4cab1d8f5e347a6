"""Tiny scenes for tests, written in HM3D's layout with trimesh (not by the project's writer)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw, yup_to_zup
from aeqa.envs.scenegen import stage_config
from aeqa.envs.semantic import SemanticInstance, linear_to_srgb_u8, rgb_to_hex, write_semantic_txt
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import TURN_LEFT
from aeqa.mapping.memory import MemoryConfig, SemanticMemory

# Interior of the box room (Y-up world): x in [-3, 3], z in [-2, 2], floor y = 0.
ROOM_X = 3.0
ROOM_Z = 2.0
CEILING_Y = 2.5
WALL_M = 0.1
PILLAR_MIN = np.array([0.5, 0.0, -0.25])
PILLAR_MAX = np.array([1.0, 1.0, 0.25])


@dataclass(frozen=True)
class Box:
    name: str
    category: str
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    rgb: tuple[int, int, int]


def box_room_boxes(with_floor: bool = True) -> list[Box]:
    x, z, t, h = ROOM_X, ROOM_Z, WALL_M, CEILING_Y
    boxes = [
        Box("ceiling", "ceiling", (-x - t, h, -z - t), (x + t, h + t, z + t), (240, 240, 240)),
        Box("wall_px", "wall", (x, 0, -z - t), (x + t, h, z + t), (200, 180, 160)),
        Box("wall_nx", "wall", (-x - t, 0, -z - t), (-x, h, z + t), (200, 180, 161)),
        Box("wall_pz", "wall", (-x, 0, z), (x, h, z + t), (200, 180, 162)),
        Box("wall_nz", "wall", (-x, 0, -z - t), (x, h, -z), (200, 180, 163)),
        Box("pillar", "table", tuple(PILLAR_MIN), tuple(PILLAR_MAX), (150, 60, 20)),
    ]
    if with_floor:
        boxes.insert(
            0, Box("floor", "floor", (-x - t, -t, -z - t), (x + t, 0, z + t), (90, 90, 90))
        )
    return boxes


def _box_mesh(box: Box, color: tuple[int, int, int]) -> trimesh.Trimesh:
    lo, hi = np.array(box.lo), np.array(box.hi)
    mesh = trimesh.creation.box(extents=hi - lo)
    mesh.apply_translation((lo + hi) / 2.0)
    mesh.visual.vertex_colors = np.tile([*color, 255], (len(mesh.vertices), 1)).astype(np.uint8)
    return mesh


def write_box_scene(
    folder: Path, name: str = "box_room", with_floor: bool = True, extra: Sequence[Box] = ()
) -> Path:
    """Write NAME.glb, NAME.semantic.glb and NAME.semantic.txt (Z-up files); return the basename.

    Instance ids follow the order of :func:`box_room_boxes`, then ``extra``, starting at 1.
    """
    return write_boxes(folder, name, box_room_boxes(with_floor) + list(extra))


def write_boxes(folder: Path, name: str, boxes: Sequence[Box]) -> Path:
    """Write a scene of axis-aligned boxes (Y-up world coordinates) in HM3D's layout; return
    the basename. Instance ids follow the order of ``boxes``, starting at 1."""
    folder.mkdir(parents=True, exist_ok=True)
    render, semantic, instances = [], [], []
    for i, box in enumerate(boxes, start=1):
        key_linear = ((60 + 11 * i) % 256, (200 - 7 * i) % 256, (90 + 13 * i) % 256)
        render.append(_box_mesh(box, box.rgb))
        semantic.append(_box_mesh(box, key_linear))
        key_hex = rgb_to_hex(linear_to_srgb_u8(np.array(key_linear, dtype=np.uint8)))
        instances.append(SemanticInstance(i, key_hex, box.category, 0))
    for meshes, suffix in ((render, ".glb"), (semantic, ".semantic.glb")):
        merged = trimesh.util.concatenate(meshes)
        merged.vertices = yup_to_zup(merged.vertices)
        merged.export(folder / f"{name}{suffix}")
    write_semantic_txt(folder / f"{name}.semantic.txt", instances)
    (folder / f"{name}.stage_config.json").write_text(json.dumps(stage_config(name)))
    return folder / name


#: half side of the open plane (m): a 20 m x 20 m floor, as habitat-sim's ``stage_floor1.glb``
PLANE_HALF_M = 10.0


def open_plane_boxes(seed: int = 0, pieces: int = 14) -> list[Box]:
    """A 20 m x 20 m floor slab (top at y = 0, x and z in [-10, 10]) with no walls and no
    ceiling, so its border is a drop-off into nothing, and ``pieces`` furniture boxes (0.4 to
    2.5 m wide, 0.4 to 1.9 m tall) at seeded spots at least 1.2 m apart and 2 m inside the
    border (nothing near the border hides floor that only a walk along it would show)."""
    rng = np.random.default_rng(seed)
    half = PLANE_HALF_M
    boxes = [Box("floor", "floor", (-half, -0.1, -half), (half, 0.0, half), (120, 110, 100))]
    categories = ("table", "sofa", "cabinet", "bookshelf", "bed", "plant")
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    while len(placed) < pieces:
        size = rng.uniform(0.4, 2.5, size=2)
        centre = rng.uniform(-half + 2.0 + size / 2, half - 2.0 - size / 2)
        lo, hi = centre - size / 2, centre + size / 2
        if any(np.all(lo < b_hi + 1.2) and np.all(b_lo < hi + 1.2) for b_lo, b_hi in placed):
            continue
        placed.append((lo, hi))
        i = len(placed)
        height = float(rng.uniform(0.4, 1.9))
        colour = (int(40 + 12 * i), int(160 - 5 * i), int(60 + 9 * i))
        boxes.append(
            Box(
                f"piece_{i}",
                categories[i % len(categories)],
                (float(lo[0]), 0.0, float(lo[1])),
                (float(hi[0]), height, float(hi[1])),
                colour,
            )
        )
    return boxes


def write_scannet_box_room(folder: Path, stem: str = "scene0000_00") -> Path:
    """The box room as a ScanNet scan: ``STEM_vh_clean_2.ply`` (Z-up, vertex colours) with
    its segment and aggregation files, one segment and object per box. Returns the ply; its
    instance ids (ScanNet object id + 1) are the box room's."""
    folder.mkdir(parents=True, exist_ok=True)
    meshes = [_box_mesh(box, box.rgb) for box in box_room_boxes()]
    merged = trimesh.util.concatenate(meshes)
    merged.vertices = yup_to_zup(merged.vertices)
    ply = folder / f"{stem}_vh_clean_2.ply"
    merged.export(ply)
    segments = np.repeat(np.arange(len(meshes)), [len(m.vertices) for m in meshes])
    (folder / f"{stem}_vh_clean_2.0.010000.segs.json").write_text(
        json.dumps({"segIndices": segments.tolist()})
    )
    groups = [
        {"objectId": i, "label": box.category, "segments": [i]}
        for i, box in enumerate(box_room_boxes())
    ]
    (folder / f"{stem}.aggregation.json").write_text(json.dumps({"segGroups": groups}))
    return ply


def analytic_box_room_depth(
    origin: np.ndarray, directions: np.ndarray, with_pillar: bool = True
) -> np.ndarray:
    """Ray parameter t of the first hit of rays (N, 3) inside the box room (interior faces and
    the pillar). With camera-frame z = -1 directions, t is the z-depth."""
    o = np.asarray(origin, dtype=np.float64)
    d = directions.astype(np.float64)
    t_best = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, lo, hi in ((0, -ROOM_X, ROOM_X), (1, 0.0, CEILING_Y), (2, -ROOM_Z, ROOM_Z)):
            for plane in (lo, hi):
                t = (plane - o[axis]) / d[:, axis]
                t_best = np.where((t > 1e-6) & (t < t_best), t, t_best)
        if with_pillar:
            t_near = np.full(len(d), -np.inf)
            t_far = np.full(len(d), np.inf)
            for axis in range(3):
                t1 = (PILLAR_MIN[axis] - o[axis]) / d[:, axis]
                t2 = (PILLAR_MAX[axis] - o[axis]) / d[:, axis]
                t_near = np.maximum(t_near, np.minimum(t1, t2))
                t_far = np.minimum(t_far, np.maximum(t1, t2))
            hit = (t_near <= t_far) & (t_near > 0)
            t_best = np.where(hit & (t_near < t_best), t_near, t_best)
    return t_best


def look_around_everywhere(
    scene: Path,
    config: MemoryConfig | None = None,
    spots: int = 30,
    width: int = 320,
    turns: int = 12,
) -> tuple[SemanticMemory, dict[int, int], Simulator]:
    """Full coverage without an explorer: a look-around of ``turns`` views 30 degrees apart
    (10 close the circle for the 90-degree camera, 12 overlap) at the start and at seeded
    navigable spots. Returns the memory, the largest view (pixels) of every instance id seen,
    and the simulator (still open)."""
    # The object-table thresholds of its callers were set on the ray caster's frames; the
    # rasteriser labels a few more pixels along a 1 cm rug's edge, enough for ``clusters``
    # mode to split it.
    sim = make_simulator(SimConfig(width=width, height=width * 3 // 4, renderer="raycast"))
    obs = sim.reset(scene)
    memory = SemanticMemory(config, sim.instance_labels(), sim.floor_height(obs.state.position))
    largest: dict[int, int] = {}
    rng = np.random.default_rng(0)
    step = 0
    for _ in range(spots):
        for _ in range(turns):
            ids, counts = np.unique(obs.semantic, return_counts=True)
            for i, c in zip(ids.tolist(), counts.tolist(), strict=True):
                largest[i] = max(largest.get(i, 0), c)
            memory.integrate(obs, step)
            memory.occupancy.update(obs)
            step += 1
            obs = sim.step(TURN_LEFT)
        yaw = float(rng.uniform(-np.pi, np.pi))
        obs = sim.teleport(sim.sample_navigable_point(rng), quat_from_yaw(yaw))
    return memory, largest, sim

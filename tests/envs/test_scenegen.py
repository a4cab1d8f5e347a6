"""The apartment generator: files in HM3D's layout, determinism, and physical plausibility."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import zup_to_yup
from aeqa.envs.palette import EMISSIVE, PALETTE
from aeqa.envs.scenegen import generate_scene, generate_scenes, scene_seed
from aeqa.envs.semantic import linear_to_srgb_u8, pack_rgb, read_semantic_txt, rgb_to_hex

SUFFIXES = (".glb", ".semantic.glb", ".semantic.txt", ".stage_config.json", ".scene.json")
NUM_SCENES = 6
TOL = 1e-3  # metres
THIN_RUG_M = 0.02


@dataclass(frozen=True)
class Scene:
    base: Path
    truth: dict[str, Any]

    def path(self, suffix: str) -> Path:
        return self.base.with_name(self.base.name + suffix)

    @property
    def objects(self) -> list[dict[str, Any]]:
        return list(self.truth["objects"])

    @property
    def walls(self) -> list[dict[str, Any]]:
        return [s for s in self.truth["structure"] if s["category"] == "wall"]

    def object(self, instance_id: int) -> dict[str, Any]:
        return next(o for o in self.objects if o["instance_id"] == instance_id)


def _read(base: Path) -> Scene:
    truth = json.loads(base.with_name(base.name + ".scene.json").read_text(encoding="utf-8"))
    return Scene(base, truth)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Scene]:
    folder = tmp_path_factory.mktemp("apartments")
    return [_read(base) for base in generate_scenes(folder, NUM_SCENES, seed=11)]


def _load(path: Path) -> trimesh.Trimesh:
    mesh = trimesh.load(path, force="mesh", process=False)
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def _overlap(lo_a: Any, hi_a: Any, lo_b: Any, hi_b: Any, axes: tuple[int, ...]) -> bool:
    """True if the boxes overlap by more than TOL along every axis in ``axes``."""
    return all(min(hi_a[i], hi_b[i]) - max(lo_a[i], lo_b[i]) > TOL for i in axes)


def _is_rug(obj: dict[str, Any]) -> bool:
    return bool(obj["category"] == "rug")


# --- files and determinism -------------------------------------------------------------------


def test_writes_the_five_files_and_stage_config(scenes: list[Scene]) -> None:
    for scene in scenes:
        for suffix in SUFFIXES:
            assert scene.path(suffix).is_file(), scene.path(suffix)
    name = scenes[0].base.name
    stage = json.loads(scenes[0].path(".stage_config.json").read_text(encoding="utf-8"))
    assert stage == {
        "render_asset": f"{name}.glb",
        "semantic_asset": f"{name}.semantic.glb",
        "semantic_descriptor_filename": f"{name}.semantic.txt",
        "up": [0, 0, 1],
        "front": [0, 1, 0],
        "semantic_up": [0, 0, 1],
        "semantic_front": [0, 1, 0],
    }
    assert [s.base.name for s in scenes] == [f"apartment_{i:03d}" for i in range(NUM_SCENES)]
    assert scenes[2].truth["generator"] == {"seed": scene_seed(11, 2), "version": 1}
    assert scenes[0].truth["format"] == "aeqa-scene/1"


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    a = generate_scene(tmp_path / "a", "flat", seed=5)
    b = generate_scene(tmp_path / "b", "flat", seed=5)
    c = generate_scene(tmp_path / "c", "flat", seed=6)
    assert a == tmp_path / "a" / "flat"
    for suffix in SUFFIXES:
        name = "flat" + suffix
        assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes(), suffix
    for suffix in (".glb", ".semantic.glb", ".scene.json"):
        name = "flat" + suffix
        assert (a.parent / name).read_bytes() != (c.parent / name).read_bytes(), suffix


def test_scene_seeds_do_not_depend_on_the_count() -> None:
    assert [scene_seed(3, i) for i in range(3)] == [scene_seed(3, i) for i in range(5)][:3]
    assert len({scene_seed(3, i) for i in range(50)}) == 50


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "seed": 1, "num_rooms": 2}, "num_rooms"),
        ({"name": "x", "seed": 1, "num_rooms": 8}, "num_rooms"),
        ({"name": "x", "seed": -1}, "seed"),
        ({"name": "a/b", "seed": 1}, "name"),
        ({"name": "", "seed": 1}, "name"),
    ],
)
def test_bad_arguments_raise_aeqa_error(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(AeqaError, match=message):
        generate_scene(tmp_path, **kwargs)


def test_requested_room_count_is_honoured(tmp_path: Path) -> None:
    for rooms in (3, 7):
        truth = _read(generate_scene(tmp_path, f"r{rooms}", seed=rooms, num_rooms=rooms)).truth
        assert len(truth["regions"]) == rooms


# --- layout and content ----------------------------------------------------------------------


def test_rooms_and_categories(scenes: list[Scene]) -> None:
    categories: set[str] = set()
    for scene in scenes:
        regions = scene.truth["regions"]
        assert 3 <= len(regions) <= 7
        types = [r["type"] for r in regions]
        assert "kitchen" in types and "living room" in types
        names = [r["name"] for r in regions]
        assert len(set(names)) == len(names)
        for region in regions:
            size = np.subtract(region["bounds_max"], region["bounds_min"])
            assert np.all(size >= 2.5 - TOL) and np.all(size <= 5.0 + TOL), region
        span = np.ptp([r["bounds_min"] + r["bounds_max"] for r in regions], axis=0)
        assert 2.6 <= scene.truth["ceiling_height_m"] <= 2.8
        assert len({o["category"] for o in scene.objects}) >= 10
        categories |= {o["category"] for o in scene.objects}
        assert span.max() <= 20.0
    assert len(categories) >= 20, sorted(categories)


def test_object_records(scenes: list[Scene]) -> None:
    states = {"door": {"open", "closed"}, "laptop": {"open", "closed"}, "tv": {"on", "off"}}
    states |= {"lamp": {"on", "off"}, "floor lamp": {"on", "off"}}
    seen_states: dict[str, set[str]] = {}
    for scene in scenes:
        regions = {r["region_id"] for r in scene.truth["regions"]}
        for obj in scene.objects:
            assert obj["color_name"] in PALETTE
            assert tuple(obj["color_rgb"]) == PALETTE[obj["color_name"]]
            assert obj["size"] in ("small", "medium", "large")
            assert obj["region_id"] in regions
            dims = np.subtract(obj["bbox_max"], obj["bbox_min"])
            assert np.allclose(dims, obj["dims_m"], atol=2e-4)
            if obj["category"] in states:
                assert obj["state"] in states[obj["category"]], obj
                seen_states.setdefault(obj["category"], set()).add(obj["state"])
    assert seen_states["door"] == {"open", "closed"}
    assert seen_states["lamp"] == {"on", "off"}


def test_doorways_connect_every_room(scenes: list[Scene]) -> None:
    for scene in scenes:
        regions = {r["region_id"]: r for r in scene.truth["regions"]}
        reached = {0}
        for _ in regions:
            for door in scene.truth["doorways"]:
                a, b = door["region_ids"]
                if a in reached or b in reached:
                    reached |= {a, b}
        assert reached == set(regions)
        for door in scene.truth["doorways"]:
            assert 0.9 - TOL <= door["width_m"] <= 1.1 + TOL
            assert door["center"][1] == pytest.approx(1.05)
            _assert_doorway_clear_of_corners(door, [regions[i] for i in door["region_ids"]])


def test_walls_enclose_every_room_except_at_doorways(scenes: list[Scene]) -> None:
    """Every point of every room boundary is inside a wall box, except doorway openings
    below the 2.1 m lintel."""
    for scene in scenes:
        points = _boundary_points(scene)
        walls = np.array([w["bbox_min"] + w["bbox_max"] for w in scene.walls])
        inside = (walls[None, :, :3] - TOL <= points[:, None]) & (
            points[:, None] <= walls[None, :, 3:] + TOL
        )
        for x, y, z in points[~np.any(np.all(inside, axis=2), axis=1)]:
            assert y < 2.1 and _in_doorway(scene, x, z), (x, y, z)


def _boundary_points(scene: Scene) -> np.ndarray:
    """(N, 3) points on every room's boundary lines at several heights."""
    heights = (0.05, 1.0, 2.05, 2.2, scene.truth["ceiling_height_m"] - 0.05)
    points = []
    for region in scene.truth["regions"]:
        (x0, z0), (x1, z1) = region["bounds_min"], region["bounds_max"]
        for a, b in (
            ((x0, z0), (x0, z1)),
            ((x1, z0), (x1, z1)),
            ((x0, z0), (x1, z0)),
            ((x0, z1), (x1, z1)),
        ):
            for t, y in itertools.product(np.linspace(0.0, 1.0, 60), heights):
                points.append((a[0] + t * (b[0] - a[0]), y, a[1] + t * (b[1] - a[1])))
    return np.array(points)


def _in_doorway(scene: Scene, x: float, z: float) -> bool:
    for door in scene.truth["doorways"]:
        cx, _, cz = door["center"]
        half = door["width_m"] / 2
        on_x_wall = abs(x - cx) < TOL and abs(z - cz) <= half + TOL
        on_z_wall = abs(z - cz) < TOL and abs(x - cx) <= half + TOL
        if on_x_wall or on_z_wall:
            return True
    return False


def _assert_doorway_clear_of_corners(door: dict[str, Any], rooms: list[dict[str, Any]]) -> None:
    """The opening lies on the shared wall, at least 0.3 m from its corners' wall faces."""
    x, _, z = door["center"]
    a, b = rooms
    if any(abs(x - r["bounds_min"][0]) < TOL or abs(x - r["bounds_max"][0]) < TOL for r in rooms):
        along, axis = z, 1
    else:
        along, axis = x, 0
    lo = max(a["bounds_min"][axis], b["bounds_min"][axis])
    hi = min(a["bounds_max"][axis], b["bounds_max"][axis])
    half = door["width_m"] / 2
    assert along - half >= lo + 0.05 + 0.3 - TOL
    assert along + half <= hi - 0.05 - 0.3 + TOL


# --- meshes ----------------------------------------------------------------------------------


def test_semantic_colours_are_listed_and_unique(scenes: list[Scene]) -> None:
    for scene in scenes[:3]:
        listed = read_semantic_txt(scene.path(".semantic.txt"))
        ids = [i.instance_id for i in listed]
        assert ids == list(range(1, len(listed) + 1))
        hexes = {i.color_hex for i in listed}
        assert len(hexes) == len(listed)
        mesh = _load(scene.path(".semantic.glb"))
        rgb = linear_to_srgb_u8(np.asarray(mesh.visual.vertex_colors)[:, :3])
        assert {rgb_to_hex(c) for c in np.unique(rgb, axis=0)} == hexes
        truth_ids = [s["instance_id"] for s in scene.truth["structure"]]
        truth_ids += [o["instance_id"] for o in scene.objects]
        assert sorted(truth_ids) == ids
        by_id = {i.instance_id: i for i in listed}
        for record in scene.truth["structure"] + scene.objects:
            assert by_id[record["instance_id"]].category == record["category"]
            assert by_id[record["instance_id"]].region_id == record["region_id"]


def test_render_and_semantic_meshes_share_triangles(scenes: list[Scene]) -> None:
    render = _load(scenes[0].path(".glb"))
    semantic = _load(scenes[0].path(".semantic.glb"))
    assert np.array_equal(render.vertices, semantic.vertices)
    assert np.array_equal(render.faces, semantic.faces)
    assert len(render.faces) < 30_000
    colors = np.asarray(render.visual.vertex_colors)
    assert np.all(colors[:, 3] == 255)
    face_colors = colors[render.faces]
    assert np.all(face_colors == face_colors[:, :1]), "a triangle with mixed vertex colours"


def test_glb_accessors_normals_and_winding(scenes: list[Scene]) -> None:
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(scenes[0].path(".glb")))
    primitive = gltf.meshes[0].primitives[0]
    position = gltf.accessors[primitive.attributes.POSITION]
    color = gltf.accessors[primitive.attributes.COLOR_0]
    assert gltf.accessors[primitive.indices].componentType == 5125
    assert (color.componentType, color.normalized, color.type) == (5121, True, "VEC4")
    mesh = _load(scenes[0].path(".glb"))
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    assert np.allclose(position.min, vertices.min(axis=0)) and np.allclose(
        position.max, vertices.max(axis=0)
    )
    # Winding: the cross product of each triangle's edges points along its stored normal.
    normals = _read_normals(gltf)
    tri = vertices[mesh.faces].astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    cross /= np.linalg.norm(cross, axis=1, keepdims=True)
    assert np.allclose(cross, normals[mesh.faces[:, 0]], atol=1e-3)
    assert np.allclose(normals[mesh.faces[:, 0]], normals[mesh.faces[:, 2]])


def _read_normals(gltf: Any) -> np.ndarray:
    accessor = gltf.accessors[gltf.meshes[0].primitives[0].attributes.NORMAL]
    view = gltf.bufferViews[accessor.bufferView]
    blob = gltf.binary_blob()
    start = view.byteOffset + (accessor.byteOffset or 0)
    data = np.frombuffer(blob[start : start + accessor.count * 12], dtype="<f4")
    return data.reshape(-1, 3).astype(np.float64)


def test_mesh_spans_floor_to_ceiling_in_the_y_up_world(scenes: list[Scene]) -> None:
    for scene in scenes[:3]:
        vertices = zup_to_yup(np.asarray(_load(scene.path(".glb")).vertices, dtype=np.float64))
        height = scene.truth["ceiling_height_m"]
        assert vertices[:, 1].min() == pytest.approx(-0.1, abs=TOL)
        assert vertices[:, 1].max() == pytest.approx(height + 0.1, abs=TOL)


def test_render_colours_are_exactly_the_palette(scenes: list[Scene]) -> None:
    for scene in scenes[:3]:
        render = _load(scene.path(".glb"))
        semantic = _load(scene.path(".semantic.glb"))
        keys = pack_rgb(linear_to_srgb_u8(np.asarray(semantic.visual.vertex_colors)[:, :3]))
        id_of_key = {
            int(pack_rgb(np.array(i.color_rgb))): i.instance_id
            for i in read_semantic_txt(scene.path(".semantic.txt"))
        }
        face_ids = np.array([id_of_key[int(k)] for k in keys[semantic.faces[:, 0]]])
        face_rgb = np.asarray(render.visual.vertex_colors)[render.faces[:, 0], :3]
        lights = np.array(list(EMISSIVE.values()))
        for record in scene.truth["structure"] + scene.objects:
            rgb = face_rgb[face_ids == record["instance_id"]]
            assert len(rgb) >= 12, record
            lit = (rgb[:, None, :] == lights[None, :, :]).all(axis=2).any(axis=1)
            # A lamp or tv that is on glows on one part; everything else is its palette colour.
            assert lit.any() == (record.get("state") == "on"), record
            assert np.all(rgb[~lit] == record["color_rgb"]), record
            assert tuple(record["color_rgb"]) == PALETTE[record["color_name"]]


def test_instance_triangles_lie_in_their_bounding_boxes(scenes: list[Scene]) -> None:
    scene = scenes[0]
    semantic = _load(scene.path(".semantic.glb"))
    vertices = zup_to_yup(np.asarray(semantic.vertices, dtype=np.float64))
    keys = pack_rgb(linear_to_srgb_u8(np.asarray(semantic.visual.vertex_colors)[:, :3]))
    id_of_key = {
        int(pack_rgb(np.array(i.color_rgb))): i.instance_id
        for i in read_semantic_txt(scene.path(".semantic.txt"))
    }
    vertex_ids = np.array([id_of_key[int(k)] for k in keys])
    for record in scene.truth["structure"] + scene.objects:
        points = vertices[vertex_ids == record["instance_id"]]
        assert np.allclose(points.min(axis=0), record["bbox_min"], atol=2e-4)
        assert np.allclose(points.max(axis=0), record["bbox_max"], atol=2e-4)


# --- physical plausibility -------------------------------------------------------------------


def test_objects_stand_on_the_floor_or_rest_on_their_support(scenes: list[Scene]) -> None:
    supports_seen: set[str] = set()
    for scene in scenes:
        for obj in scene.objects:
            bottom = obj["bbox_min"][1]
            if obj["supported_by"] is None:
                if not obj["wall_mounted"]:
                    assert bottom == pytest.approx(0.0, abs=TOL), obj
                continue
            support = scene.object(obj["supported_by"])
            supports_seen.add(support["category"])
            surface = support["surface_height_m"]
            assert surface is not None and surface <= support["bbox_max"][1] + TOL
            if support["category"] not in ("sofa", "armchair", "bed"):
                assert surface == pytest.approx(support["bbox_max"][1], abs=TOL)
            assert bottom == pytest.approx(surface, abs=TOL), (obj, support)
            for axis in (0, 2):
                assert obj["bbox_min"][axis] >= support["bbox_min"][axis] - TOL
                assert obj["bbox_max"][axis] <= support["bbox_max"][axis] + TOL
            assert obj["region_id"] == support["region_id"]
    assert {"counter", "bed", "sofa", "desk"} <= supports_seen


def test_wall_mounted_objects_touch_a_wall(scenes: list[Scene]) -> None:
    for scene in scenes:
        for obj in scene.objects:
            if obj["wall_mounted"]:
                assert any(_touches(obj, wall) for wall in scene.walls), obj


def _touches(obj: dict[str, Any], wall: dict[str, Any]) -> bool:
    """Face contact: flush along one horizontal axis and overlapping along the other two."""
    for axis, others in ((0, (1, 2)), (2, (0, 1))):
        flush = abs(obj["bbox_min"][axis] - wall["bbox_max"][axis]) < TOL or (
            abs(obj["bbox_max"][axis] - wall["bbox_min"][axis]) < TOL
        )
        if flush and _overlap(
            obj["bbox_min"], obj["bbox_max"], wall["bbox_min"], wall["bbox_max"], others
        ):
            return True
    return False


def test_windows_are_on_exterior_walls(scenes: list[Scene]) -> None:
    """Just behind a window's wall there is no room, only the outside."""
    windows = [(scene, o) for scene in scenes for o in scene.objects if o["category"] == "window"]
    assert windows
    for scene, window in windows:
        room = next(r for r in scene.truth["regions"] if r["region_id"] == window["region_id"])
        x, z = _point_behind_wall(room, window)
        assert _region_at(scene, x, z) is None, window


def _point_behind_wall(room: dict[str, Any], obj: dict[str, Any]) -> tuple[float, float]:
    """The point 0.15 m outside the room's boundary nearest to ``obj``, level with it."""
    lo, hi = obj["bbox_min"], obj["bbox_max"]
    cx, cz = (lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2
    (x0, z0), (x1, z1) = room["bounds_min"], room["bounds_max"]
    candidates = [
        (cx - x0, (x0 - 0.15, cz)),
        (x1 - cx, (x1 + 0.15, cz)),
        (cz - z0, (cx, z0 - 0.15)),
        (z1 - cz, (cx, z1 + 0.15)),
    ]
    return min(candidates)[1]


def test_objects_do_not_intersect_walls_and_keep_clear_of_them(scenes: list[Scene]) -> None:
    for scene in scenes:
        for obj in scene.objects:
            for wall in scene.walls:
                assert not _overlap(
                    obj["bbox_min"], obj["bbox_max"], wall["bbox_min"], wall["bbox_max"], (0, 1, 2)
                ), (obj, wall)
            if not obj["wall_mounted"]:
                gap = min(
                    _horizontal_gap(obj, wall)
                    for wall in scene.walls
                    if wall["bbox_max"][1] > obj["bbox_min"][1]
                )
                assert gap >= 0.05 - TOL, obj


def _horizontal_gap(a: dict[str, Any], b: dict[str, Any]) -> float:
    dx = max(b["bbox_min"][0] - a["bbox_max"][0], a["bbox_min"][0] - b["bbox_max"][0], 0.0)
    dz = max(b["bbox_min"][2] - a["bbox_max"][2], a["bbox_min"][2] - b["bbox_max"][2], 0.0)
    return math.hypot(dx, dz)


def test_objects_do_not_overlap(scenes: list[Scene]) -> None:
    for scene in scenes:
        solid = [o for o in scene.objects if not _is_rug(o)]
        for a, b in itertools.combinations(solid, 2):
            if a["supported_by"] == b["instance_id"] or b["supported_by"] == a["instance_id"]:
                continue
            assert not _overlap(
                a["bbox_min"], a["bbox_max"], b["bbox_min"], b["bbox_max"], (0, 1, 2)
            ), (a, b)
        for rug in (o for o in scene.objects if _is_rug(o)):
            assert rug["dims_m"][1] <= THIN_RUG_M
            assert rug["bbox_min"][1] == pytest.approx(0.0, abs=TOL)


def test_start_pose_is_on_free_floor(scenes: list[Scene]) -> None:
    for scene in scenes:
        start = scene.truth["start"]
        x, y, z = start["position"]
        assert y == 0.0
        assert np.linalg.norm(start["rotation"]) == pytest.approx(1.0, abs=1e-3)
        assert start["rotation"][1] == start["rotation"][3] == 0.0
        room = _region_at(scene, x, z)
        assert room is not None and room["type"] in ("living room", "hallway")
        point = {"bbox_min": [x, 0.0, z], "bbox_max": [x, 0.0, z]}
        for record in scene.objects + scene.walls:
            assert _horizontal_gap(point, record) >= 0.4 - TOL, record


def _region_at(scene: Scene, x: float, z: float) -> dict[str, Any] | None:
    for region in scene.truth["regions"]:
        (x0, z0), (x1, z1) = region["bounds_min"], region["bounds_max"]
        if x0 < x < x1 and z0 < z < z1:
            return dict(region)
    return None


def test_doorways_are_not_blocked(scenes: list[Scene]) -> None:
    """Nothing but rugs stands within 0.5 m of an opening, on either side of its wall."""
    for scene in scenes:
        for door in scene.truth["doorways"]:
            x, _, z = door["center"]
            half = door["width_m"] / 2
            regions = [r for r in scene.truth["regions"] if r["region_id"] in door["region_ids"]]
            along_z = any(abs(x - r["bounds_min"][0]) < TOL for r in regions)
            if along_z:
                lo, hi = [x - 0.55, 0.0, z - half], [x + 0.55, 2.0, z + half]
            else:
                lo, hi = [x - half, 0.0, z - 0.55], [x + half, 2.0, z + 0.55]
            for obj in scene.objects:
                if not _is_rug(obj):
                    assert not _overlap(lo, hi, obj["bbox_min"], obj["bbox_max"], (0, 1, 2)), obj


class _FloorGrid:
    """Free floor of a scene from scene.json alone: a 5 cm grid over the rooms, minus the
    footprints of walls and of objects an agent 1.5 m tall cannot walk over or under."""

    cell = 0.05

    def __init__(self, scene: Scene) -> None:
        regions = scene.truth["regions"]
        self.lo = np.min([r["bounds_min"] for r in regions], axis=0) - 0.2
        hi = np.max([r["bounds_max"] for r in regions], axis=0) + 0.2
        cols, rows = np.ceil((hi - self.lo) / self.cell).astype(int)
        self.xs = self.lo[0] + (np.arange(cols) + 0.5) * self.cell
        self.zs = self.lo[1] + (np.arange(rows) + 0.5) * self.cell
        self.free = np.zeros((rows, cols), dtype=bool)
        for r in regions:
            self._fill(r["bounds_min"], r["bounds_max"], True)
        for record in scene.walls + scene.objects:
            if record["bbox_min"][1] <= 1.5 and record["bbox_max"][1] > THIN_RUG_M:
                lo, hi = record["bbox_min"], record["bbox_max"]
                self._fill((lo[0], lo[2]), (hi[0], hi[2]), False)

    def _fill(self, lo_xz: Any, hi_xz: Any, value: bool) -> None:
        rows = (self.zs > lo_xz[1]) & (self.zs < hi_xz[1])
        cols = (self.xs > lo_xz[0]) & (self.xs < hi_xz[0])
        self.free[np.ix_(rows, cols)] = value

    def islands(self, clearance_m: float) -> np.ndarray:
        """(rows, cols) labels of the cells at least ``clearance_m`` from anything blocked."""
        distance = ndimage.distance_transform_edt(self.free) * self.cell - self.cell / 2
        labels, _ = ndimage.label(distance >= clearance_m)
        return np.asarray(labels)

    def cell_of(self, x: float, z: float) -> tuple[int, int]:
        return int((z - self.lo[1]) / self.cell), int((x - self.lo[0]) / self.cell)


def test_every_doorway_reaches_the_start_through_free_floor(scenes: list[Scene]) -> None:
    """A disc of radius 0.25 m (a 0.5 m wide path) gets from the start through every doorway,
    checked on scene.json alone, independently of the generator's own check."""
    for scene in scenes:
        grid = _FloorGrid(scene)
        labels = grid.islands(clearance_m=0.25)
        start = scene.truth["start"]["position"]
        island = labels[grid.cell_of(start[0], start[2])]
        assert island > 0
        for door in scene.truth["doorways"]:
            assert labels[grid.cell_of(door["center"][0], door["center"][2])] == island, door


def test_loads_with_the_project_scene_loader(scenes: list[Scene]) -> None:
    from aeqa.envs.scene import load_scene

    mesh = load_scene(scenes[0].base)
    assert mesh.semantic_shared
    listed = {s["instance_id"] for s in scenes[0].truth["structure"]}
    listed |= {o["instance_id"] for o in scenes[0].objects}
    assert set(np.unique(mesh.face_instance).tolist()) == listed
    assert mesh.ground_truth is not None and mesh.ground_truth["format"] == "aeqa-scene/1"

"""Scene formats: HM3D layout, ScanNet, foreign GLB / PLY / OBJ; and bad scene files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.meshsim.renderer import CameraSpec, make_renderer
from aeqa.envs.scene import SceneSpec, load_scene, scene_in_folder
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import AgentState
from tests.scenes import write_box_scene


def _look_down_pose(height_m: float) -> np.ndarray:
    """Camera-to-world pose at (0, height, 0) looking straight down (-Y)."""
    T = np.eye(4)
    T[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    T[:3, 3] = [0.0, height_m, 0.0]
    return T


def test_foreign_glb_in_centimetres_and_y_up(tmp_path: Path, renderer_name: str) -> None:
    # A 4 m x 4 m floor slab and a 50 cm cube, authored Y-up in centimetres by trimesh.
    floor = trimesh.creation.box(extents=[400.0, 10.0, 400.0])
    floor.apply_translation([0.0, -5.0, 0.0])
    cube = trimesh.creation.box(extents=[50.0, 50.0, 50.0])
    cube.apply_translation([0.0, 25.0, 0.0])
    scene = trimesh.Scene([floor, cube])
    path = tmp_path / "foreign.glb"
    scene.export(path)
    mesh = load_scene(SceneSpec(str(path), up="y", metres_per_unit=0.01))
    assert mesh.bounds[1, 1] == pytest.approx(0.5, abs=1e-4)
    assert np.all(mesh.face_instance == 0)  # no semantics: every id 0
    renderer = make_renderer(renderer_name, mesh, CameraSpec(64, 48, 90.0))
    frame = renderer.render(_look_down_pose(2.0))
    renderer.close()
    assert frame.depth[24, 32] == pytest.approx(1.5, abs=0.01)  # cube top at 0.5 m
    assert frame.depth[2, 2] == pytest.approx(2.0, abs=0.01)  # floor around it
    assert np.all(frame.semantic == 0)


def test_obj_and_ply_default_to_y_up(tmp_path: Path) -> None:
    box = trimesh.creation.box(extents=[1.0, 2.0, 3.0])
    for suffix in (".obj", ".ply"):
        path = tmp_path / f"box{suffix}"
        box.export(path)
        mesh = load_scene(path)
        assert np.allclose(mesh.bounds[1], [0.5, 1.0, 1.5], atol=1e-5)
        zup = load_scene(SceneSpec(str(path), up="z"))
        assert np.allclose(zup.bounds[1], [0.5, 1.5, 1.0], atol=1e-5)


def test_scannet_scene_with_instances(tmp_path: Path) -> None:
    stem = "scene0000_00"
    floor = trimesh.creation.box(extents=[4.0, 4.0, 0.1])  # Z-up, as ScanNet stores it
    floor.apply_translation([0.0, 0.0, -0.05])
    chair = trimesh.creation.box(extents=[0.5, 0.5, 0.9])
    chair.apply_translation([1.0, 0.5, 0.45])
    mesh = trimesh.util.concatenate([floor, chair])
    mesh.visual.vertex_colors = np.tile([120, 120, 120, 255], (len(mesh.vertices), 1))
    mesh.export(tmp_path / f"{stem}_vh_clean_2.ply")
    n_floor = len(floor.vertices)
    seg_indices = [0] * n_floor + [1] * len(chair.vertices)
    (tmp_path / f"{stem}_vh_clean_2.0.010000.segs.json").write_text(
        json.dumps({"segIndices": seg_indices})
    )
    (tmp_path / f"{stem}.aggregation.json").write_text(
        json.dumps(
            {
                "segGroups": [
                    {"objectId": 0, "label": "floor", "segments": [0]},
                    {"objectId": 1, "label": "office chair", "segments": [1]},
                ]
            }
        )
    )
    scene = load_scene(tmp_path / f"{stem}_vh_clean_2.ply")
    assert scene.category_of(2) == "office chair"
    # Z-up turned Y-up: the chair stands 0.9 m tall at world z = -0.5.
    chair_faces = scene.face_instance == 2
    chair_vertices = scene.vertices[scene.faces[chair_faces]].reshape(-1, 3)
    assert chair_vertices[:, 1].max() == pytest.approx(0.9, abs=1e-5)
    assert chair_vertices[:, 2].mean() == pytest.approx(-0.5, abs=1e-5)
    assert set(np.unique(scene.face_instance).tolist()) == {1, 2}


def test_missing_scene_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AeqaError, match=r"nowhere\.glb"):
        load_scene(tmp_path / "nowhere.glb")
    with pytest.raises(AeqaError, match=r"not found"):
        load_scene(tmp_path / "nowhere")


def test_truncated_glb(tmp_path: Path) -> None:
    base = write_box_scene(tmp_path)
    glb = base.with_name(base.name + ".glb")
    glb.write_bytes(glb.read_bytes()[: len(glb.read_bytes()) // 2])
    with pytest.raises(AeqaError, match=r"box_room\.glb.*truncated or corrupt"):
        load_scene(base)


def test_malformed_semantic_line(tmp_path: Path) -> None:
    base = write_box_scene(tmp_path)
    txt = base.with_name(base.name + ".semantic.txt")
    lines = txt.read_text().splitlines()
    lines[3] = '3,NOTHEX,"wall"'
    txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(AeqaError, match=r"semantic\.txt:4: malformed line"):
        load_scene(base)


def test_scene_without_floor(tmp_path: Path) -> None:
    base = write_box_scene(tmp_path, with_floor=False)
    sim = make_simulator(SimConfig(width=32, height=24))
    with pytest.raises(AeqaError, match="box_room"):
        sim.reset(base, AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(0.0)))


def test_start_off_the_navigable_area(box_room: Path) -> None:
    sim = make_simulator(SimConfig(width=32, height=24))
    inside_pillar = AgentState(np.array([0.75, 0.0, 0.0]), quat_from_yaw(math.pi))
    with pytest.raises(AeqaError, match=r"start position .*0\.75.* not on the navigable area"):
        sim.reset(box_room, inside_pillar)


def test_basis_glb_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "ABC.basis.glb").write_bytes(b"glTF")
    with pytest.raises(AeqaError, match=r"plain ABC\.glb"):
        load_scene(tmp_path / "ABC.basis.glb")


def test_a_folder_with_one_scene_loads_that_scene(tmp_path: Path) -> None:
    """An HM3D scene folder (render, semantic and Basis variants of one basename) is that
    scene, read through its plain .glb with the semantic files beside it."""
    base = write_box_scene(tmp_path / "00800-TEEsavR23oF", "TEEsavR23oF")
    base.with_name(base.name + ".basis.glb").write_bytes(b"not read")
    assert scene_in_folder(base.parent) == base.with_name(base.name + ".glb")
    mesh = load_scene(base.parent)
    assert mesh.source == base.with_name(base.name + ".glb")
    assert mesh.instances and len(mesh.faces) > 0


def test_a_folder_of_several_scenes_or_none_is_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_box_scene(tmp_path / "two", name)
    with pytest.raises(AeqaError) as error:
        load_scene(tmp_path / "two")
    assert "a folder of 2 scenes (a.glb, b.glb); give one scene file" in str(error.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(AeqaError, match="a folder with no scene file in it"):
        load_scene(tmp_path / "empty")


def test_vertex_colours_under_a_material_are_kept(tmp_path: Path) -> None:
    """glTF's colour is the material's base colour factor times COLOR_0 (generated scenes give
    their meshes an unlit white material, so that habitat-sim shows the stored colours)."""
    import pygltflib

    box = trimesh.creation.box()
    box.visual.vertex_colors = [200, 100, 50, 255]
    box.export(tmp_path / "box.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "box.glb"))
    gltf.materials = [
        pygltflib.Material(
            pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorFactor=[0.5, 1, 1, 1]),
            extensions={"KHR_materials_unlit": {}},
        )
    ]
    for mesh in gltf.meshes:
        for primitive in mesh.primitives:
            primitive.material = 0
    gltf.save(str(tmp_path / "box.glb"))
    colors = load_scene(tmp_path / "box.glb").vertex_colors
    assert np.all(colors == [100, 100, 50])

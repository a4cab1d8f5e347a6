"""The habitat backend's conversions (``aeqa.envs.habitat.convert``): these run without
habitat-sim."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from aeqa.envs.config import AgentSpec, SimConfig, load_config, preset_path
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import T_world_camera_from_agent, quat_from_yaw, quat_to_matrix
from aeqa.envs.habitat.convert import (
    INSTALL_HINT,
    T_world_camera_from_pose,
    action_amounts,
    camera_settings,
    floor_island,
    glb_has_textures,
    habitat_coeffs,
    habitat_scene,
    instance_key_colors,
    navmesh_values,
    observation_arrays,
    scene_annotations,
    write_yup_scene,
    wxyz_from_habitat,
)
from aeqa.envs.scene import SceneSpec, load_scene
from aeqa.envs.semantic import linear_to_srgb_u8
from aeqa.envs.simulator import make_simulator
from aeqa.launch.cli import main
from tests.scenes import write_box_scene

# --- scenes --------------------------------------------------------------------------------------


def test_generated_scene_is_given_as_its_stage_config(box_room: Path) -> None:
    stage = box_room.with_name(box_room.name + ".stage_config.json")
    for named in (box_room, box_room.with_name(box_room.name + ".glb"), stage):
        scene = habitat_scene(SceneSpec(str(named)))
        assert scene.scene_id == str(stage.absolute())
        assert scene.stage_json == "" and scene.dataset_config == "default"
        assert scene.semantic_txt == box_room.with_name(box_room.name + ".semantic.txt")
        assert scene_annotations(scene).category_of(7) == "table"
    assert habitat_scene(SceneSpec(str(box_room.parent))).scene_id == str(stage.absolute())


def test_plain_glb_gets_a_z_up_stage_with_its_semantics(tmp_path: Path) -> None:
    base = write_box_scene(tmp_path)
    base.with_name(base.name + ".stage_config.json").unlink()
    base.with_name(base.name + ".navmesh").write_bytes(b"navmesh")
    scene = habitat_scene(SceneSpec(str(base) + ".glb"))
    stage = json.loads(scene.stage_json)
    assert scene.scene_id == "" and scene.stage_name == "box_room.stage_config.json"
    assert stage["render_asset"] == str(base) + ".glb"
    assert (stage["up"], stage["front"]) == ([0, 0, 1], [0, 1, 0])
    assert (stage["semantic_up"], stage["semantic_front"]) == ([0, 0, 1], [0, 1, 0])
    assert stage["semantic_asset"] == str(base) + ".semantic.glb"
    assert stage["semantic_descriptor_filename"] == str(base) + ".semantic.txt"
    assert stage["has_semantic_textures"] is False and not scene.semantic_textures
    assert stage["navmesh_asset"] == str(base) + ".navmesh"
    assert "scale" not in stage


def test_meshes_take_their_format_up_axis_and_scale(tmp_path: Path) -> None:
    trimesh.creation.box(extents=[1.0, 2.0, 3.0]).export(tmp_path / "room.obj")
    y_up = json.loads(habitat_scene(SceneSpec(str(tmp_path / "room.obj"))).stage_json)
    assert (y_up["up"], y_up["front"]) == ([0, 1, 0], [0, 0, -1])
    spec = SceneSpec(str(tmp_path / "room.obj"), up="z", metres_per_unit=0.01)
    z_up = json.loads(habitat_scene(spec).stage_json)
    assert (z_up["up"], z_up["front"], z_up["scale"]) == ([0, 0, 1], [0, 1, 0], [0.01] * 3)
    assert "semantic_asset" not in z_up


def test_ply_scenes_are_converted(tmp_path: Path) -> None:
    trimesh.creation.box().export(tmp_path / "scene0000_00_vh_clean_2.ply")
    scene = habitat_scene(SceneSpec(str(tmp_path / "scene0000_00_vh_clean_2.ply")))
    assert scene.convert == SceneSpec(str(tmp_path / "scene0000_00_vh_clean_2.ply"))
    assert scene.scene_id == "" and scene.stage_json == ""


def test_basis_glb_finds_its_scene_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "hm3d" / "val" / "00800-TEEsavR23oF"
    folder.mkdir(parents=True)
    glb = folder / "TEEsavR23oF.basis.glb"
    glb.write_bytes(b"glTF")
    (tmp_path / "hm3d" / "hm3d_basis.scene_dataset_config.json").write_text("{}")
    annotated = tmp_path / "hm3d" / "hm3d_annotated_basis.scene_dataset_config.json"
    annotated.write_text("{}")
    scene = habitat_scene(SceneSpec(str(glb)))
    assert (scene.scene_id, scene.dataset_config) == (str(glb), str(annotated))
    # given explicitly, for the scene's basename too
    other = tmp_path / "my.scene_dataset_config.json"
    other.write_text("{}")
    scene = habitat_scene(SceneSpec(str(folder / "TEEsavR23oF")), str(other))
    assert (scene.scene_id, scene.dataset_config) == (str(glb), str(other))
    with pytest.raises(AeqaError, match=r"nowhere\.scene_dataset_config\.json.*not found"):
        habitat_scene(SceneSpec(str(glb)), str(tmp_path / "nowhere.scene_dataset_config.json"))


def test_missing_scene_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AeqaError, match=r"nowhere\.glb: scene file not found"):
        habitat_scene(SceneSpec(str(tmp_path / "nowhere")))
    with pytest.raises(AeqaError, match=r"gone\.ply: scene file not found"):
        habitat_scene(SceneSpec(str(tmp_path / "gone.ply")))


def test_glb_textures_are_detected(tmp_path: Path) -> None:
    plain = trimesh.creation.box()
    plain.visual.vertex_colors = [200, 10, 10, 255]
    plain.export(tmp_path / "plain.glb")
    textured = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(textured.vertices), 2))
    image = Image.fromarray(np.full((4, 4, 3), 128, dtype=np.uint8))
    textured.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    textured.export(tmp_path / "textured.glb")
    assert not glb_has_textures(tmp_path / "plain.glb")
    assert glb_has_textures(tmp_path / "textured.glb")
    (tmp_path / "broken.glb").write_bytes(b"not a glb")
    assert not glb_has_textures(tmp_path / "broken.glb")


# --- settings -----------------------------------------------------------------------------------


def test_aeqa_preset_settings() -> None:
    config = load_config(SimConfig, [("", preset_path("sim", "aeqa"))], [])
    camera = camera_settings(config)
    assert camera.resolution == (config.height, config.width) == (1280, 1280)
    assert camera.hfov_deg == 120.0
    assert camera.position_m == (0.0, 1.5, 0.0)
    assert camera.orientation_rad == pytest.approx((math.radians(-30.0), 0.0, 0.0))
    assert camera.far_m > config.max_depth_m


def test_discrete_actions_and_agent_navmesh() -> None:
    config = SimConfig(agent=AgentSpec(radius_m=0.18, height_m=0.88, max_climb_m=0.1))
    assert action_amounts(config) == {
        "move_forward": (0.25, None),
        "turn_left": (30.0, None),
        "turn_right": (30.0, None),
        "look_up": (30.0, 90.0),
        "look_down": (30.0, 90.0),
    }
    assert navmesh_values(config) == {
        "agent_radius": 0.18,
        "agent_height": 0.88,
        "agent_max_climb": 0.1,
        "cell_size": 0.05,
    }
    with pytest.raises(AeqaError, match="HFOV"):
        camera_settings(SimConfig(hfov_deg=180.0))


# --- rotations --------------------------------------------------------------------------------


def _random_rotations(count: int) -> np.ndarray:
    q = np.random.default_rng(3).normal(size=(count, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.sign(q[:, :1])


def test_quaternion_coefficients_round_trip() -> None:
    for q in _random_rotations(50):
        coeffs = habitat_coeffs(q)
        assert np.allclose(coeffs, [q[1], q[2], q[3], q[0]])
        assert np.allclose(wxyz_from_habitat(coeffs), q)
        assert np.allclose(wxyz_from_habitat(-coeffs), q)  # the same rotation, w >= 0
    assert np.allclose(habitat_coeffs(np.array([2.0, 0.0, 0.0, 0.0])), [0, 0, 0, 1])


def test_quaternion_types_of_habitat_sim() -> None:
    """numpy-quaternion's (habitat-sim's ``AgentState.rotation``) and magnum's, both installed
    with habitat-sim."""
    quaternion = pytest.importorskip("quaternion", reason="numpy-quaternion comes with habitat-sim")
    for q in _random_rotations(20):
        as_np = quaternion.from_float_array(q)  # [w, x, y, z]
        assert np.allclose(wxyz_from_habitat(as_np), q)
        assert np.allclose(quaternion.as_rotation_matrix(as_np), quat_to_matrix(q))
    mn = pytest.importorskip("magnum", reason="magnum comes with habitat-sim")
    for q in _random_rotations(20):
        as_mn = mn.Quaternion(mn.Vector3(*q[1:]), q[0])
        assert np.allclose(wxyz_from_habitat(as_mn), q, atol=1e-6)


def test_sensor_pose_is_the_camera_pose() -> None:
    yaw, tilt, height = 0.7, -30.0, 1.5
    position = np.array([1.0, 0.1, -2.0])
    expected = T_world_camera_from_agent(position, quat_from_yaw(yaw), height, tilt)
    pitch = np.array([math.cos(math.radians(tilt) / 2), math.sin(math.radians(tilt) / 2), 0, 0])
    w1, x1, y1, z1 = quat_from_yaw(yaw)
    w2, x2, y2, z2 = pitch
    sensor_rotation = np.array(  # yaw * pitch, as habitat-sim composes body and sensor
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )
    T = T_world_camera_from_pose(position + [0.0, height, 0.0], sensor_rotation)
    assert np.allclose(T, expected)


# --- observations -----------------------------------------------------------------------------


def test_observations_from_habitat_buffers() -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    depth = rng.uniform(0.5, 4.0, (6, 8)).astype(np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = 12.0, np.nan, np.inf
    ids = rng.integers(0, 40, (6, 8)).astype(np.uint32)
    raw = {"rgb": np.flip(rgba, axis=0), "depth": depth, "semantic": ids, "collided": False}
    rgb, depth_m, semantic = observation_arrays(raw, max_depth_m=10.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 8, 3) and rgb.flags.c_contiguous
    assert np.array_equal(rgb, rgba[::-1, :, :3])
    assert depth_m.dtype == np.float32 and np.all(depth_m[0, :3] == 0.0)
    assert np.array_equal(depth_m[1:], depth[1:])
    assert semantic.dtype == np.int32 and np.array_equal(semantic, ids.astype(np.int32))
    # copies: habitat-sim overwrites its buffers on the next frame
    rgba[:] = 0
    depth[:] = 0
    ids[:] = 0
    assert rgb.any() and depth_m.any() and semantic.any()


# --- navigation -------------------------------------------------------------------------------


def test_floor_island_is_the_lowest_large_one() -> None:
    # the ceiling's top (1) is the largest island; a shelf (2) is lower but small
    assert floor_island([21.2, 23.0, 0.4], [0.1, 2.7, -0.3]) == 0
    assert floor_island([5.0], [1.0]) == 0


# --- meshes habitat-sim cannot orient -----------------------------------------------------------


def test_instance_keys_are_distinct_after_srgb() -> None:
    keys = instance_key_colors(5000)
    srgb = linear_to_srgb_u8(keys).astype(np.int64)
    packed = (srgb[:, 0] << 16) | (srgb[:, 1] << 8) | srgb[:, 2]
    assert len(np.unique(packed)) == 5000
    assert np.all(packed != 0)


def test_yup_scene_round_trips(box_room: Path, tmp_path: Path) -> None:
    mesh = load_scene(box_room)
    stage = json.loads(write_yup_scene(mesh, tmp_path, "room"))
    assert (stage["up"], stage["front"]) == ([0, 1, 0], [0, 0, -1])
    assert stage["semantic_asset"] == str(tmp_path / "room.semantic.glb")
    back = load_scene(SceneSpec(str(tmp_path / "room"), up="y"))
    assert np.allclose(back.bounds, mesh.bounds, atol=1e-6)
    # every triangle keeps its instance id (the loader may order triangles differently)
    assert mesh.semantic_shared and back.semantic_shared
    area_by_id = []
    for scene in (mesh, back):
        tri = scene.vertices[scene.faces].astype(np.float64)
        area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        area_by_id.append(np.bincount(scene.face_instance, weights=area, minlength=8))
    assert np.allclose(area_by_id[0], area_by_id[1])
    assert {i: v.category for i, v in back.instances.items()} == {
        i: v.category for i, v in mesh.instances.items()
    }


# --- habitat-sim missing ----------------------------------------------------------------------


def test_missing_habitat_sim_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "habitat_sim", None)  # import habitat_sim fails
    with pytest.raises(AeqaError) as error:
        make_simulator(SimConfig(type="habitat"))
    assert str(error.value) == INSTALL_HINT
    assert "conda install habitat-sim" in INSTALL_HINT
    assert "bash launch/install_habitat.sh" in INSTALL_HINT
    code = main(["explore", "--sim", "habitat", "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == f"aeqa: error: {INSTALL_HINT}"
    assert "Traceback" not in err

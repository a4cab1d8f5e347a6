"""The semantic point-cloud memory: geometry, bounded size, objects, persistence, bad input."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import AgentSpec, SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import (
    GridSpec,
    backproject_world,
    matrix_to_quat,
    quat_from_yaw,
    quat_to_matrix,
    rotation_x,
    world_to_pixel,
    yup_to_zup,
    zup_to_yup,
)
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, AgentState, Observations
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import InstanceLabel
from tests.scenes import PILLAR_MAX, PILLAR_MIN

START = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))


@pytest.fixture(scope="module")
def frames(box_room: Path) -> tuple[list[Observations], dict[int, InstanceLabel]]:
    sim = make_simulator(SimConfig(width=160, height=120))
    obs = sim.reset(box_room, START)
    labels = {i: InstanceLabel(v.category, "room") for i, v in sim.scene.instances.items()}
    out = []
    for _ in range(12):
        out.append(obs)
        obs = sim.step(TURN_LEFT)
    sim.close()
    return out, labels


def test_camera_geometry_round_trips() -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, size=(24, 32)).astype(np.float32)
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quat_from_yaw(0.4)) @ rotation_x(-0.3)
    T[:3, 3] = [1.0, 1.5, -2.0]
    x, y, z = backproject_world(depth, T, 90.0)
    points = np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(np.float64)
    pixels, z_depth = world_to_pixel(points, T, 32, 24, 90.0)
    v, u = np.mgrid[0:24, 0:32]
    assert np.allclose(pixels[:, 0], u.reshape(-1) + 0.5, atol=1e-3)
    assert np.allclose(pixels[:, 1], v.reshape(-1) + 0.5, atol=1e-3)
    assert np.allclose(z_depth, depth.reshape(-1), atol=1e-4)
    assert np.allclose(
        matrix_to_quat(quat_to_matrix([0.3, 0.1, -0.5, 0.8])),
        np.array([0.3, 0.1, -0.5, 0.8]) / np.linalg.norm([0.3, 0.1, -0.5, 0.8]),
    )
    p = rng.normal(size=(10, 3))
    assert np.allclose(zup_to_yup(yup_to_zup(p)), p)
    grid = GridSpec(-3.0, -2.0, 0.05, 100, 120)
    row, col = grid.world_to_cell_xz(1.234, -0.5)
    x_c, z_c = grid.cell_to_world_xz(row, col)
    assert abs(x_c - 1.234) <= 0.025 + 1e-9 and abs(z_c + 0.5) <= 0.025 + 1e-9


def test_same_view_does_not_grow_the_memory(frames) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    memory = SemanticMemory(labels=labels)
    for step in range(10):
        memory.integrate(obs_list[0], step)
    after_ten = len(memory)
    for step in range(10, 1000):
        memory.integrate(obs_list[0], step)
    assert len(memory) == pytest.approx(after_ten, rel=0.01)
    assert after_ten > 100


def test_objects_of_the_box_room(frames) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    memory = SemanticMemory(labels=labels)
    for step, obs in enumerate(obs_list):
        memory.integrate(obs, step)
        memory.occupancy.update(obs)
    tables = [o for o in memory.objects() if o.category == "table"]
    assert len(tables) == 1
    table = tables[0]
    assert np.allclose(table.bbox_min[[0, 2]], PILLAR_MIN[[0, 2]], atol=0.08)
    assert table.bbox_max[1] == pytest.approx(PILLAR_MAX[1], abs=0.08)
    assert table.color_name == "brown"
    assert table.region == "room"
    assert table.first_step == 0 and table.best_frames
    assert memory.keyframes.views_of(table.instance_id)
    cloud = memory.to_open3d()
    assert len(cloud.point.positions) == len(memory)
    assert "instance" in cloud.point and "category" in cloud.point
    assert memory.occupancy.seen_area_m2 > 5.0


def test_split_instances_merge_in_cluster_mode(frames) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    labels = dict(labels)
    labels[99] = InstanceLabel("table", "room")
    memory = SemanticMemory(labels=labels)
    memory.config.object_mode = "clusters"
    for step, obs in enumerate(obs_list):
        semantic = obs.semantic.copy()
        left = np.zeros_like(semantic, dtype=bool)
        left[:, : semantic.shape[1] // 2] = True
        semantic[(semantic == 7) & left] = 99  # over-segment the pillar into two ids
        memory.integrate(replace(obs, semantic=semantic), step)
    tables = [o for o in memory.objects() if o.category == "table"]
    assert len(tables) == 1


def test_save_and_load_give_an_equal_memory(frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    memory = SemanticMemory(labels=labels)
    for step, obs in enumerate(obs_list):
        memory.integrate(obs, step)
        memory.occupancy.update(obs)
    memory.save(tmp_path / "memory")
    loaded = SemanticMemory.load(tmp_path / "memory")
    assert np.array_equal(loaded.voxels.keys, memory.voxels.keys)
    assert np.array_equal(loaded.voxels.rgb_sum, memory.voxels.rgb_sum)
    assert np.array_equal(loaded.voxels.count, memory.voxels.count)
    assert np.array_equal(loaded.occupancy.state, memory.occupancy.state)
    assert [o.to_json() for o in loaded.objects()] == [o.to_json() for o in memory.objects()]
    loaded._objects = None  # derived again from the loaded voxels: the same table
    assert [o.to_json() for o in loaded.objects()] == [o.to_json() for o in memory.objects()]
    assert set(loaded.keyframes.frames) == set(memory.keyframes.frames)


def test_memory_keeps_its_agent_and_loads_older_memories(frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The agent's body is saved with the memory; a memory saved when the body's size sat in
    the memory config (``agent_radius_m`` ...) still loads, its map keeping its own size."""
    obs_list, labels = frames
    agent = AgentSpec(radius_m=0.25, height_m=1.2, max_climb_m=0.15)
    memory = SemanticMemory(labels=labels, agent=agent)
    memory.integrate(obs_list[0], 0)
    memory.occupancy.update(obs_list[0])
    memory.save(tmp_path / "memory")
    loaded = SemanticMemory.load(tmp_path / "memory")
    assert loaded.agent == agent
    assert loaded.occupancy.agent_radius_m == 0.25 and loaded.occupancy.max_climb_m == 0.15
    document = json.loads((tmp_path / "memory" / "memory.json").read_text())
    del document["agent"]
    document["config"].update(agent_height_m=1.2, agent_radius_m=0.25, max_climb_m=0.15)
    (tmp_path / "memory" / "memory.json").write_text(json.dumps(document))
    older = SemanticMemory.load(tmp_path / "memory")
    assert older.occupancy.agent_radius_m == 0.25
    assert np.array_equal(older.occupancy.state, memory.occupancy.state)


def test_missing_memory_file(frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    memory = SemanticMemory(labels=labels)
    memory.integrate(obs_list[0], 0)
    memory.save(tmp_path / "memory")
    (tmp_path / "memory" / "voxels.npz").unlink()
    with pytest.raises(AeqaError, match=r"voxels\.npz: memory file missing"):
        SemanticMemory.load(tmp_path / "memory")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("rgb_shape", "does not match depth shape"),
        ("nan", "NaN"),
        ("negative", "negative"),
        ("pose", "not a rigid transform"),
    ],
)
def test_bad_frames_are_refused_and_lose_nothing(frames, change: str, message: str) -> None:  # type: ignore[no-untyped-def]
    obs_list, labels = frames
    memory = SemanticMemory(labels=labels)
    memory.integrate(obs_list[0], 0)
    before = (len(memory), memory.voxels.count.sum(), memory.frames_integrated)
    obs = obs_list[1]
    if change == "rgb_shape":
        bad = replace(obs, rgb=np.zeros((10, 10, 3), np.uint8))
    elif change == "nan":
        depth = obs.depth.copy()
        depth[5, 5] = np.nan
        bad = replace(obs, depth=depth)
    elif change == "negative":
        depth = obs.depth.copy()
        depth[5, 5] = -1.0
        bad = replace(obs, depth=depth)
    else:
        T = obs.T_world_camera.copy()
        T[:3, :3] *= 2.0
        bad = replace(obs, T_world_camera=T)
    with pytest.raises(AeqaError, match=message):
        memory.integrate(bad, 1)
    assert (len(memory), memory.voxels.count.sum(), memory.frames_integrated) == before

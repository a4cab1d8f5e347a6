"""The conformance suite: every installed backend, with every renderer, must pass it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import camera_ray_directions, quat_from_yaw
from aeqa.envs.simulator import Simulator
from aeqa.envs.types import MOVE_FORWARD, TURN_LEFT, AgentState, InstanceLabel
from tests.scenes import (
    PILLAR_MAX,
    PILLAR_MIN,
    ROOM_X,
    ROOM_Z,
    analytic_box_room_depth,
    write_box_scene,
)

FACING_PLUS_X = quat_from_yaw(-math.pi / 2)
START = AgentState(np.array([-2.0, 0.0, 0.0]), FACING_PLUS_X)
WIDTH, HEIGHT, HFOV = 160, 120, 90.0
PILLAR_ID = 7  # see tests.scenes.box_room_boxes: the seventh box is the pillar
WALL_PX_ID = 3


SharedSims = Callable[[SimConfig], Simulator]


def sim_config(backend: str, renderer_name: str, tilt_deg: float = 0.0) -> SimConfig:
    return SimConfig(
        type=backend,
        renderer=renderer_name,
        width=WIDTH,
        height=HEIGHT,
        hfov_deg=HFOV,
        camera_tilt_deg=tilt_deg,
    )


@pytest.fixture
def sim(backend: str, renderer_name: str, box_room: Path, shared_sims: SharedSims) -> Simulator:
    if backend != "meshsim" and renderer_name != "raycast":
        pytest.skip("renderers are a meshsim option")
    simulator = shared_sims(sim_config(backend, renderer_name))
    simulator.reset(box_room, START)
    return simulator


def test_depth_matches_analytic_geometry(
    sim: Simulator, box_room: Path, shared_sims: SharedSims
) -> None:
    for tilt in (0.0, -30.0):
        simulator = shared_sims(sim_config(sim.config.type, sim.config.renderer, tilt))
        obs = simulator.reset(box_room, START)
        T = obs.T_world_camera
        directions = camera_ray_directions(WIDTH, HEIGHT, HFOV).reshape(-1, 3) @ T[:3, :3].T
        expected = analytic_box_room_depth(T[:3, 3], directions).reshape(HEIGHT, WIDTH)
        close = np.abs(obs.depth - expected) < 0.01
        assert close.mean() >= 0.99, f"tilt {tilt}: {close.mean():.4f} of pixels within 1 cm"
        assert obs.depth.dtype == np.float32 and obs.depth.shape == (HEIGHT, WIDTH)
        assert obs.rgb.dtype == np.uint8 and obs.rgb.shape == (HEIGHT, WIDTH, 3)
        assert obs.semantic.dtype == np.int32


def test_instance_ids_under_known_pixels(
    box_room: Path, backend: str, renderer_name: str, shared_sims: SharedSims
) -> None:
    if backend != "meshsim" and renderer_name != "raycast":
        pytest.skip("renderers are a meshsim option")
    level = shared_sims(sim_config(backend, renderer_name, 0.0))
    obs = level.reset(box_room, START)
    # Level view towards +X: the pillar (1 m tall) is below the horizon, the far wall at it.
    assert obs.semantic[HEIGHT // 2 - 10, WIDTH // 2] == WALL_PX_ID
    assert obs.depth[HEIGHT // 2, WIDTH // 2] == pytest.approx(ROOM_X - START.position[0], abs=0.01)
    down = shared_sims(sim_config(backend, renderer_name, -30.0))
    obs = down.reset(box_room, START)
    # Pitched 30 degrees down, the optical axis meets the pillar's face x = 0.5 at y = 0.057.
    assert obs.semantic[HEIGHT // 2, WIDTH // 2] == PILLAR_ID
    assert obs.depth[HEIGHT // 2, WIDTH // 2] == pytest.approx(
        2.5 / math.cos(math.radians(30)), abs=0.02
    )


def test_collision_stops_and_slides_at_walls(sim: Simulator) -> None:
    radius = sim.config.agent.radius_m
    obs = sim.observe()
    collided = []
    for _ in range(40):  # 10 m of attempted motion in a 6 m room, the pillar in the way
        obs = sim.step(MOVE_FORWARD)
        collided.append(obs.collided)
    assert any(collided)
    x = obs.state.position[0]
    assert x <= ROOM_X - radius + 0.03
    assert sim.is_navigable(obs.state.position)
    # Walking diagonally into a wall slides along it instead of stopping dead.
    sim.teleport(np.array([-0.5, 0.0, 0.5]), quat_from_yaw(math.radians(150)))
    z_before = sim.get_state().position[2]
    for _ in range(12):
        obs = sim.step(MOVE_FORWARD)
    assert obs.collided
    assert obs.state.position[2] >= ROOM_Z - radius - 0.06  # reached the +Z wall
    assert abs(obs.state.position[2] - z_before) > 1.0
    assert obs.state.position[0] < -1.0  # slid along -X after reaching the wall


def test_navigability(sim: Simulator) -> None:
    radius = sim.config.agent.radius_m
    assert sim.is_navigable(np.array([0.0, 0.0, 1.0]))
    assert not sim.is_navigable(np.array([0.75, 0.0, 0.0]))  # inside the pillar
    assert not sim.is_navigable(np.array([ROOM_X - radius / 2, 0.0, 0.0]))  # too near the wall
    assert not sim.is_navigable(np.array([ROOM_X + 1.0, 0.0, 0.0]))  # outside the room
    expected = (2 * ROOM_X - 2 * radius) * (2 * ROOM_Z - 2 * radius) - (0.5 + 2 * radius) ** 2
    assert sim.navigable_area() == pytest.approx(expected, rel=0.05)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert sim.is_navigable(sim.sample_navigable_point(rng))
    snapped = sim.snap_point(np.array([0.75, 0.0, 0.0]))
    assert sim.is_navigable(snapped)
    assert np.linalg.norm(snapped[[0, 2]] - [0.75, 0.0]) < 0.55


def test_floor_height_is_the_surface_under_the_navmesh(sim: Simulator) -> None:
    """Positions sit at the navmesh's height, above the box room's floor (y = 0); the floor
    height under them is the floor's."""
    rng = np.random.default_rng(1)
    for point in [sim.get_state().position] + [sim.sample_navigable_point(rng) for _ in range(5)]:
        assert point[1] >= 0.0
        assert sim.floor_height(point) == pytest.approx(0.0, abs=1e-6)


def test_geodesic_against_straight_line(sim: Simulator) -> None:
    a, b = np.array([-2.0, 0.0, -1.0]), np.array([-2.0, 0.0, 1.2])
    assert sim.geodesic_distance(a, b) == pytest.approx(2.2, rel=0.02)
    around_a, around_b = np.array([0.0, 0.0, 0.0]), np.array([1.5, 0.0, 0.0])
    geodesic = sim.geodesic_distance(around_a, around_b)
    assert 1.5 * 1.05 < geodesic < 1.5 * 1.6  # the pillar is in the way
    path = sim.shortest_path(around_a, around_b)
    assert path is not None and len(path) >= 3
    assert all(sim.is_navigable(p) for p in path)
    length = float(np.linalg.norm(np.diff(path[:, [0, 2]], axis=0), axis=1).sum())
    assert length == pytest.approx(geodesic, rel=1e-6)


def test_same_actions_same_observations(sim: Simulator, box_room: Path) -> None:
    actions = [MOVE_FORWARD, TURN_LEFT, MOVE_FORWARD, MOVE_FORWARD, TURN_LEFT, MOVE_FORWARD]

    def run() -> list[tuple[bytes, bytes, tuple[float, ...]]]:
        sim.reset(box_room, START)
        out = []
        for action in actions:
            obs = sim.step(action)
            out.append(
                (
                    np.ascontiguousarray(obs.rgb).tobytes() + obs.semantic.tobytes(),
                    obs.depth.tobytes(),
                    tuple(obs.state.position.tolist()),
                )
            )
        return out

    assert run() == run()


def test_seeded_start_is_reproducible(sim: Simulator, box_room: Path) -> None:
    first = sim.reset(box_room, None, seed=3).state
    again = sim.reset(box_room, None, seed=3).state
    other = sim.reset(box_room, None, seed=4).state
    assert np.array_equal(first.position, again.position)
    assert np.array_equal(first.rotation, again.rotation)
    assert not np.array_equal(first.position, other.position)
    assert sim.is_navigable(first.position)


def test_renderer_names_what_draws(sim: Simulator) -> None:
    expected = sim.config.renderer if sim.config.type == "meshsim" else sim.config.type
    assert sim.renderer == expected and expected in ("raster", "raycast", "habitat")


def test_instance_labels_name_categories_and_regions(
    sim: Simulator, box_room: Path, tmp_path: Path
) -> None:
    labels = sim.instance_labels()
    assert labels[PILLAR_ID] == InstanceLabel("table", "")
    assert labels[WALL_PX_ID].category == "wall" and len(labels) == 7
    # A generated scene's ground truth names the regions.
    named = write_box_scene(tmp_path)
    truth = {"regions": [{"region_id": 0, "name": "office"}]}
    named.with_name(named.name + ".scene.json").write_text(json.dumps(truth))
    sim.reset(named, START)
    assert sim.instance_labels()[PILLAR_ID] == InstanceLabel("table", "office")
    sim.reset(box_room, START)


def test_navigable_grid_is_the_agents_island(sim: Simulator) -> None:
    radius = sim.config.agent.radius_m
    assert radius > 0.03 + 0.1 / 2
    for cell_m in (0.05, 0.1):
        grid = sim.navigable_grid(cell_m)
        assert grid.cell_m == cell_m and grid.mask.dtype == bool
        assert grid.floor_y == pytest.approx(0.0, abs=1e-6)
        assert grid.area_m2 == pytest.approx(sim.navigable_area(), rel=0.05)
        # Cell centres agree with is_navigable (cells along the border may differ).
        rng = np.random.default_rng(0)
        rows = rng.integers(0, grid.mask.shape[0], 300)
        cols = rng.integers(0, grid.mask.shape[1], 300)
        y = sim.get_state().position[1]
        agree = []
        for r, c in zip(rows, cols, strict=True):
            x, z = grid.cell_to_world(r, c)
            agree.append(grid.mask[r, c] == sim.is_navigable(np.array([x, y, z])))
        assert np.mean(agree) > 0.95
        # World <-> cell round trip, the agent's cell, the pillar and the room's outside.
        assert grid.world_to_cell(*grid.cell_to_world(3, 5)) == (3, 5)
        position = sim.get_state().position
        assert grid.navigable_at(position[0], position[2])
        pillar = (PILLAR_MIN + PILLAR_MAX) / 2
        assert not grid.navigable_at(pillar[0], pillar[2])
        assert not grid.navigable_at(ROOM_X - 0.03, 0.0)  # within the radius of the wall
        assert not grid.navigable_at(ROOM_X + 1.0, 0.0)
        x0, z0 = grid.cell_to_world(0, 0)
        assert x0 < -ROOM_X + radius and z0 < -ROOM_Z + radius
    with pytest.raises(AeqaError, match="positive"):
        sim.navigable_grid(0.0)

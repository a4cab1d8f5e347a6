"""What the episode loop measures: seen-area coverage, path length, the floor of its map."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from aeqa.agents.episode import (
    Episode,
    EpisodeSpec,
    coverage_of,
    make_explorer,
    resolve_episode_config,
    walked_length,
)
from aeqa.agents.explorer import Waypoint
from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw, yaw_from_quat
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import MOVE_FORWARD, AgentState, NavigableGrid
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.occupancy import FREE, OCCUPIED, OccupancyMap
from tests.scenes import ROOM_X, ROOM_Z, Box, write_box_scene

START = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))


@pytest.fixture(scope="module")
def room_sim(box_room: Path) -> Simulator:
    sim = make_simulator(SimConfig(width=32, height=24, renderer="raycast"))
    sim.reset(box_room, START)
    yield sim  # type: ignore[misc]
    sim.close()


def _all_free(
    origin_x: float, origin_z: float, cell_m: float, rows: int, cols: int
) -> OccupancyMap:
    state = np.full((rows, cols), FREE, dtype=np.uint8)
    return OccupancyMap.from_state(
        {
            "state": state,
            "hits": np.zeros((rows, cols), dtype=np.int32),
            "grid": np.array([origin_x, origin_z, cell_m, rows, cols], dtype=np.float64),
            "params": np.array([0.0, 1.5, 0.2, 0.1, 6.0]),
        }
    )


def test_coverage_counts_the_last_row_and_column(room_sim: Simulator) -> None:
    """A map that has seen the whole room as free floor covers every navigable point, those
    in its last row and column (the room's +x and +z edges) included."""
    memory = SemanticMemory()
    cell = 0.5
    memory.occupancy = _all_free(
        -ROOM_X, -ROOM_Z, cell, int(2 * ROOM_Z / cell), int(2 * ROOM_X / cell)
    )
    assert coverage_of(room_sim, memory, 400, seed=0) == 1.0


def test_coverage_leaves_out_points_off_the_map(room_sim: Simulator) -> None:
    """Points beyond the map's edge are not seen, however near its last column they are."""
    memory = SemanticMemory()
    cell = 0.5
    memory.occupancy = _all_free(-ROOM_X, -ROOM_Z, cell, int(2 * ROOM_Z / cell), int(ROOM_X / cell))
    coverage = coverage_of(room_sim, memory, 400, seed=0)
    assert 0.45 < coverage < 0.6  # the half x < 0 (the pillar takes floor from the other)


def test_coverage_without_samples_is_zero(room_sim: Simulator) -> None:
    memory = SemanticMemory()
    memory.occupancy = _all_free(-ROOM_X, -ROOM_Z, 0.5, 8, 12)
    assert coverage_of(room_sim, memory, 0, seed=0) == 0.0


def test_waypoint_round_the_pillar_counts_the_geodesic(room_sim: Simulator) -> None:
    """A waypoint on the far side of the pillar: the agent is carried round it, so the step
    walks the geodesic path, longer than the straight chord through the pillar."""
    previous = room_sim.teleport(np.array([0.0, 0.0, 0.0]), quat_from_yaw(0.0)).state.position
    target = np.array([1.5, 0.0, 0.0])
    current = room_sim.teleport(target, quat_from_yaw(-math.pi / 2)).state.position
    walked = walked_length(room_sim, Waypoint(target, -math.pi / 2), previous, current)
    chord = float(np.linalg.norm((current - previous)[[0, 2]]))
    assert walked == pytest.approx(room_sim.geodesic_distance(previous, current), rel=1e-9)
    assert walked > 1.05 * chord


def test_discrete_move_counts_the_straight_move(room_sim: Simulator) -> None:
    previous = room_sim.teleport(np.array([-2.0, 0.0, 0.0]), START.rotation).state.position
    current = room_sim.step(MOVE_FORWARD).state.position
    walked = walked_length(room_sim, MOVE_FORWARD, previous, current)
    assert walked == pytest.approx(0.25, abs=1e-6)


def test_waypoint_episode_path_is_the_geodesic_travel(box_room: Path, tmp_path: Path) -> None:
    """An ``aeqa`` (waypoint) episode's path length is the sum of the geodesic distances
    between its poses, not of the chords between them (which cut round the pillar)."""
    config = resolve_episode_config(
        "aeqa",
        "memory",
        ["sim.width=96", "sim.height=96", "sim.renderer=raycast", "explorer.max_steps=12"],
    )
    sim = make_simulator(config.sim)
    try:
        start = AgentState(np.array([0.2, 0.0, 0.0]), quat_from_yaw(math.pi / 2))
        result = Episode(sim, config).run(
            EpisodeSpec("Is there a table?", str(box_room), "q", start), tmp_path
        )
        trajectory = json.loads((tmp_path / "trajectory.json").read_text())
        poses = [np.array(result.start_position)] + [np.array(t["position"]) for t in trajectory]
        pairs = list(itertools.pairwise(poses))
        geodesic = sum(sim.geodesic_distance(a, b) for a, b in pairs)
        chords = sum(float(np.linalg.norm((b - a)[[0, 2]])) for a, b in pairs)
    finally:
        sim.close()
    assert result.path_length_m == pytest.approx(geodesic, abs=2e-3)
    assert geodesic > chords + 0.01


#: a 25 cm step: taller than the agent can climb (0.2 m), lower than the navmesh height
#: (0.1 m above the floor here) plus the climb
LOW_BOX = Box("step", "box", (-0.6, 0.0, -0.2), (-0.2, 0.25, 0.2), (120, 40, 40))


def test_low_obstacle_is_marked_occupied(tmp_path: Path) -> None:
    """The map measures heights from the floor, not from the navmesh the agent stands on, so
    a step just above the agent's climb is an obstacle."""
    scene = write_box_scene(tmp_path / "scene", extra=[LOW_BOX])
    config = resolve_episode_config(
        "discrete",
        "memory",
        ["sim.width=160", "sim.height=120", "sim.renderer=raycast", "explorer.max_steps=3"],
    )
    sim = make_simulator(config.sim)
    try:
        start = AgentState(np.array([-2.5, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))
        spec = EpisodeSpec("Is there a box?", str(scene), "q", start)
        result = Episode(sim, config).run(spec, tmp_path / "episode")
    finally:
        sim.close()
    assert result.start_position[1] > 0.05  # the navmesh lies above the floor here
    occupancy = SemanticMemory.load(tmp_path / "episode" / "memory").occupancy
    assert occupancy.floor_y == pytest.approx(0.0, abs=1e-6)
    g = occupancy.grid
    xs = np.arange(LOW_BOX.lo[0] + 0.025, LOW_BOX.hi[0], g.cell_m)
    zs = np.arange(LOW_BOX.lo[2] + 0.025, LOW_BOX.hi[2], g.cell_m)
    xz = np.stack(np.meshgrid(xs, zs), axis=-1).reshape(-1, 2)
    rows, cols = g.world_to_cells(xz)
    footprint = occupancy.state[rows, cols]
    assert np.mean(footprint == OCCUPIED) > 0.8


def test_agent_override_reaches_simulator_map_and_explorer(box_room: Path, tmp_path: Path) -> None:
    """One override of the agent's radius and turn angle (``sim.agent.*``) reaches the
    simulator (its navigable area, its turns), the occupancy map and the explorer."""
    config = resolve_episode_config(
        "discrete",
        "memory",
        [
            "sim.width=64",
            "sim.height=48",
            "sim.renderer=raycast",
            "explorer.max_steps=3",
            "sim.agent.radius_m=0.3",
            "sim.agent.turn_angle_deg=45",
        ],
    )
    sim = make_simulator(config.sim)
    try:
        result = Episode(sim, config).run(
            EpisodeSpec("Is there a table?", str(box_room), "q", START), tmp_path
        )
        # The navigable area keeps 0.3 m from the walls and round the 0.5 m pillar.
        expected = (2 * ROOM_X - 0.6) * (2 * ROOM_Z - 0.6) - (0.5 + 0.6) ** 2
        assert sim.navigable_area() == pytest.approx(expected, rel=0.05)
    finally:
        sim.close()
    trajectory = json.loads((tmp_path / "trajectory.json").read_text())
    yaws = [yaw_from_quat(np.array(result.start_rotation))]
    yaws += [yaw_from_quat(np.array(t["rotation"])) for t in trajectory]
    assert len(yaws) == 4  # the look-around's turns
    for a, b in itertools.pairwise(yaws):
        assert abs(math.remainder(b - a, 2 * math.pi)) == pytest.approx(math.radians(45), abs=1e-5)
    occupancy = SemanticMemory.load(tmp_path / "memory").occupancy
    assert occupancy.agent_radius_m == 0.3
    explorer = make_explorer(config)
    assert explorer.agent.radius_m == 0.3
    assert explorer.turn_rad == pytest.approx(math.radians(45)) and explorer.headings == 8


def test_episode_records_what_the_pictures_need(box_room: Path, tmp_path: Path) -> None:
    """The episode folder holds the start island as the simulator gives it (``navigable.npz``),
    the step at which each cell of its map was first seen, and the renderer that drew."""
    config = resolve_episode_config(
        "discrete", "memory", ["sim.width=64", "sim.height=48", "explorer.max_steps=6"]
    )
    sim = make_simulator(config.sim)
    try:
        result = Episode(sim, config).run(
            EpisodeSpec("Is there a table?", str(box_room), "q", START), tmp_path
        )
        sim.reset(box_room, START)
        expected = sim.navigable_grid(config.sim.nav_cell_m)
        renderer = sim.renderer
    finally:
        sim.close()
    assert result.renderer == renderer == config.sim.renderer
    recorded = NavigableGrid.load(tmp_path / "navigable.npz")
    assert np.array_equal(recorded.mask, expected.mask) and recorded.mask.any()
    assert recorded.grid == expected.grid and recorded.floor_y == pytest.approx(0.0, abs=1e-6)
    memory = SemanticMemory.load(tmp_path / "memory")
    first = memory.occupancy.first_seen
    assert np.array_equal(first >= 0, memory.occupancy.state != 0)
    assert first.max() <= result.steps and len(np.unique(first[first >= 0])) > 1
    assert first[memory.occupancy.grid.world_to_cell_xz(-2.0, 0.0)] == 0  # the start's cell

"""The occupancy map against the box room's ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import camera_ray_directions, quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, AgentState
from aeqa.mapping.occupancy import FREE, UNKNOWN, VOID, OccupancyMap, frontier_mask
from tests.scenes import (
    PILLAR_MAX,
    PILLAR_MIN,
    ROOM_X,
    ROOM_Z,
    Box,
    analytic_box_room_depth,
    write_boxes,
)

#: (position, yaw in degrees): beside a wall, and facing the pillar
POSES = [((-2.0, 0.0, 1.2), -60.0), ((-1.5, 0.0, 0.0), -90.0), ((2.0, 0.0, -1.2), 120.0)]


@pytest.mark.parametrize(("tilt_deg", "hfov_deg"), [(0.0, 90.0), (-30.0, 120.0)])
def test_free_cells_are_the_floor_the_camera_saw(
    box_room: Path, tilt_deg: float, hfov_deg: float
) -> None:
    """With a level camera and with the ``aeqa`` preset's (HFOV 120 tilted -30 degrees), the
    cells of the floor each frame shows (analytic ray hits) turn free, and no free cell lies
    outside the room or inside the pillar."""
    width = 128
    config = SimConfig(
        width=width, height=width, hfov_deg=hfov_deg, camera_tilt_deg=tilt_deg, renderer="raycast"
    )
    sim = make_simulator(config)
    try:
        for position, yaw_deg in POSES:
            obs = sim.reset(
                box_room, AgentState(np.array(position), quat_from_yaw(math.radians(yaw_deg)))
            )
            occupancy = OccupancyMap(floor_y=0.0)
            occupancy.update(obs)
            T = obs.T_world_camera
            rays = camera_ray_directions(width, width, hfov_deg).reshape(-1, 3) @ T[:3, :3].T
            t = analytic_box_room_depth(T[:3, 3], rays)
            hits = T[:3, 3] + rays * t[:, None]
            on_floor = np.isfinite(t) & (np.abs(hits[:, 1]) < 1e-6)
            within = np.hypot(hits[:, 0] - T[0, 3], hits[:, 2] - T[2, 3]) < 5.5
            xz = hits[on_floor & within][:, [0, 2]]
            rows, cols = occupancy.grid.world_to_cells(xz)
            seen = np.unique(rows * occupancy.grid.cols + cols)
            free_share = np.mean(occupancy.state.reshape(-1)[seen] == FREE)
            assert free_share > 0.94, (position, yaw_deg, free_share)

            rows, cols = np.nonzero(occupancy.state == FREE)
            g = occupancy.grid
            x = g.origin_x + (cols + 0.5) * g.cell_m
            z = g.origin_z + (rows + 0.5) * g.cell_m
            margin = g.cell_m
            outside = (np.abs(x) > ROOM_X + margin) | (np.abs(z) > ROOM_Z + margin)
            in_pillar = (
                (x > PILLAR_MIN[0] + margin)
                & (x < PILLAR_MAX[0] - margin)
                & (z > PILLAR_MIN[2] + margin)
                & (z < PILLAR_MAX[2] - margin)
            )
            assert not np.any(outside), (position, yaw_deg)
            assert not np.any(in_pillar), (position, yaw_deg)
    finally:
        sim.close()


def test_first_seen_records_the_step_that_made_each_cell_known(box_room: Path) -> None:
    """Each known cell holds the step of the frame that first made it known, -1 elsewhere; it
    grows with the map and survives saving."""
    sim = make_simulator(SimConfig(width=64, height=48, renderer="raycast"))
    position = np.array([-2.0, 0.0, 0.0])
    try:
        sim.reset(box_room, AgentState(position, quat_from_yaw(-math.pi / 2)))
        # towards +X, then towards -X
        frames = [sim.teleport(position, quat_from_yaw(math.radians(y))) for y in (-90.0, 90.0)]
    finally:
        sim.close()
    occupancy = OccupancyMap(initial_half_extent_m=1.0)  # grows under the first frame
    occupancy.update(frames[0], step=0)
    known_first = occupancy.state != UNKNOWN
    occupancy.update(frames[1], step=10)
    first = occupancy.first_seen
    assert occupancy.grid.rows > 40 and first.shape == occupancy.state.shape
    assert first.dtype == np.int32
    assert np.array_equal(first >= 0, occupancy.state != UNKNOWN)
    assert np.array_equal(first == 0, known_first)
    assert set(np.unique(first).tolist()) == {-1, 0, 10}
    g = occupancy.grid
    assert first[g.world_to_cell_xz(0.0, 0.0)] == 0  # ahead of the first view (+X)
    assert first[g.world_to_cell_xz(-2.8, 0.0)] == 10  # behind it, seen once turned
    saved = occupancy.to_state()
    loaded = OccupancyMap.from_state(saved)
    assert np.array_equal(loaded.first_seen, first) and loaded.frames == 11
    # A map saved before steps were recorded loads with none.
    del saved["first_seen"]
    assert np.all(OccupancyMap.from_state(saved).first_seen == -1)
    # Without a step, a frame counts as the one after those fused before it.
    counted = OccupancyMap()
    for obs in frames:
        counted.update(obs)
    assert set(np.unique(counted.first_seen).tolist()) == {-1, 0, 1}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 m x 6 m floor slab (x, z in [-3, 3], top at y = 0) with nothing around it: its
    border is a drop-off into nothing."""
    floor = Box("floor", "floor", (-3.0, -0.1, -3.0), (3.0, 0.0, 3.0), (120, 110, 100))
    return write_boxes(tmp_path_factory.mktemp("platform"), "platform", [floor])


@pytest.mark.parametrize(("tilt_deg", "hfov_deg"), [(0.0, 90.0), (-30.0, 120.0)])
def test_a_seen_drop_off_is_not_a_frontier(
    platform: Path, tilt_deg: float, hfov_deg: float
) -> None:
    """Facing the platform's far edge 4.5 m ahead, the cells beyond it that the view passed
    over become void, so the edge is a boundary; only the unseen sides of the view stay
    frontiers."""
    config = SimConfig(
        width=160, height=120, hfov_deg=hfov_deg, camera_tilt_deg=tilt_deg, renderer="raycast"
    )
    sim = make_simulator(config)
    try:
        obs = sim.reset(platform, AgentState(np.array([0.0, 0.0, 1.5]), quat_from_yaw(0.0)))
    finally:
        sim.close()
    occupancy = OccupancyMap(floor_y=0.0)
    occupancy.update(obs)
    g = occupancy.grid
    xs = g.origin_x + (np.arange(g.cols) + 0.5) * g.cell_m
    zs = g.origin_z + (np.arange(g.rows) + 0.5) * g.cell_m
    x, z = np.meshgrid(xs, zs)
    # The view's centre beyond the far edge (z = -3) and within the map's range: passed over.
    beyond = (np.abs(x) < 1.0) & (z < -3.2) & (z > -4.0)
    assert np.all(occupancy.state[beyond] == VOID)
    # Void never lies on the platform but within a pixel's footprint of its edge (where the
    # edge lies between two pixels' centres: 27 cm deep at 4.5 m for these tilted 120-degree
    # pixels), nor free floor off it.
    on_platform = (np.abs(x) < 2.7) & (np.abs(z) < 2.7)
    assert not np.any(occupancy.state[on_platform] == VOID)
    assert not np.any(occupancy.state[(np.abs(x) > 3.05) | (np.abs(z) > 3.05)] == FREE)
    front = frontier_mask(occupancy.state, wall_gap_cells=1)
    near_far_edge = (np.abs(x) < 1.5) & (z < -2.5)
    assert occupancy.state[near_far_edge].tolist().count(FREE) > 100
    assert not np.any(front[near_far_edge])
    # The frontier that is left is where the view did not reach, and the map offers it.
    assert np.any(front)
    assert all(f.centroid[2] > -2.5 for f in occupancy.frontiers(obs.state.position))


def test_no_void_where_there_is_floor(box_room: Path) -> None:
    """In a closed room every ray meets floor, wall or furniture: nothing turns void, and a
    full turn leaves no frontier."""
    sim = make_simulator(SimConfig(width=160, height=120, renderer="raycast"))
    try:
        obs = sim.reset(box_room, AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(0.0)))
        occupancy = OccupancyMap(floor_y=0.0)
        for _ in range(12):
            occupancy.update(obs)
            obs = sim.step(TURN_LEFT)
    finally:
        sim.close()
    assert not np.any(occupancy.state == VOID)
    assert np.count_nonzero(occupancy.state == FREE) * occupancy.cell_m**2 > 15.0

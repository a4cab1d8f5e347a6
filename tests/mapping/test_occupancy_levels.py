"""The occupancy map on two floor levels: stairs and the raised floor they lead to are free
floor at their own heights; the same raised floor behind a sheer step stays an obstacle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import AgentState
from aeqa.mapping.occupancy import FREE, OCCUPIED, OccupancyMap
from tests.scenes import Box, write_boxes

RISE_M = 0.15
TREADS = 5
RUN_M = 0.3
PLATFORM_Y = RISE_M * TREADS  # 0.75
GREY = (150, 150, 150)


def _boxes(stairs: bool) -> list[Box]:
    """A 8 x 3 m hall: floor at y = 0 for x < 0, five treads from x = 0 to 1.5 (with
    ``stairs``), a platform 0.75 m high from x = 1.5 to 4, walls on every side."""
    boxes = [
        Box("floor", "floor", (-4.1, -0.1, -1.6), (4.1, 0.0, 1.6), (90, 90, 90)),
        Box("platform", "floor", (1.5, 0.0, -1.5), (4.0, PLATFORM_Y, 1.5), (120, 100, 80)),
        Box("wall_n", "wall", (-4.1, 0.0, -1.6), (4.1, 2.6, -1.5), (200, 190, 180)),
        Box("wall_s", "wall", (-4.1, 0.0, 1.5), (4.1, 2.6, 1.6), (200, 190, 181)),
        Box("wall_w", "wall", (-4.1, 0.0, -1.5), (-4.0, 2.6, 1.5), (200, 190, 182)),
        Box("wall_e", "wall", (4.0, 0.0, -1.5), (4.1, 2.6, 1.5), (200, 190, 183)),
    ]
    if stairs:
        for k in range(1, TREADS):
            x0 = (k - 1) * RUN_M
            boxes.append(
                Box(f"tread{k}", "stairs", (x0, 0.0, -1.5), (x0 + RUN_M, k * RISE_M, 1.5), GREY)
            )
    return boxes


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return make_simulator(SimConfig(width=160, height=120, renderer="raycast"))


def _look_up_the_hall(sim: Simulator, scene: Path) -> OccupancyMap:
    """Frames from x = -3, -2 and -1, facing +x, fused into one map."""
    sim.reset(scene, AgentState(np.array([-3.0, 0.0, 0.0]), np.array([1.0, 0, 0, 0])))
    occupancy = OccupancyMap(floor_y=0.0)
    facing_x = np.array([math.cos(-math.pi / 4), 0.0, math.sin(-math.pi / 4), 0.0])
    for x in (-3.0, -2.0, -1.0):
        sim.set_state(AgentState(sim.snap_point(np.array([x, 0.0, 0.0])), facing_x))
        occupancy.update(sim.observe())
    return occupancy


def _cells(occupancy: OccupancyMap, x0: float, x1: float) -> tuple[np.ndarray, np.ndarray]:
    """State and floor height of the cells along z = 0 from x0 to x1."""
    r, c0 = occupancy.grid.world_to_cell_xz(x0, 0.0)
    _, c1 = occupancy.grid.world_to_cell_xz(x1, 0.0)
    return occupancy.state[r, c0:c1], occupancy.floor_h[r, c0:c1]


def test_stairs_and_the_raised_floor_are_free_at_their_heights(
    tmp_path: Path, sim: Simulator
) -> None:
    occupancy = _look_up_the_hall(sim, write_boxes(tmp_path, "stairs", _boxes(stairs=True)))
    assert occupancy.levels_seen
    state, floor_h = _cells(occupancy, 1.7, 2.5)
    assert np.mean(state == FREE) > 0.9
    assert np.nanmedian(floor_h) == pytest.approx(PLATFORM_Y, abs=0.05)
    for k in range(1, TREADS):
        state, floor_h = _cells(occupancy, (k - 1) * RUN_M + 0.1, k * RUN_M - 0.1)
        assert np.all(state == FREE), k
        assert np.nanmedian(floor_h) == pytest.approx(k * RISE_M, abs=0.05), k
    # the floor before the stairs keeps the reference height
    state, floor_h = _cells(occupancy, -2.5, -0.5)
    assert np.all(state == FREE) and np.allclose(floor_h, 0.0, atol=0.05)
    # waypoints up there stand on the raised floor
    r, c = occupancy.grid.world_to_cell_xz(2.0, 0.0)
    assert occupancy.cell_floor_y(r, c) == pytest.approx(PLATFORM_Y, abs=0.05)
    assert occupancy.cell_floor_y(*occupancy.grid.world_to_cell_xz(-2.0, 0.0)) == 0.0


def test_a_raised_floor_behind_a_sheer_step_is_an_obstacle(tmp_path: Path, sim: Simulator) -> None:
    occupancy = _look_up_the_hall(sim, write_boxes(tmp_path, "ledge", _boxes(stairs=False)))
    assert not occupancy.levels_seen
    state, _ = _cells(occupancy, 1.45, 1.6)
    assert np.any(state == OCCUPIED)
    state, _ = _cells(occupancy, 1.7, 3.9)
    assert not np.any(state == FREE)


def test_floor_heights_survive_saving(tmp_path: Path, sim: Simulator) -> None:
    occupancy = _look_up_the_hall(sim, write_boxes(tmp_path, "stairs", _boxes(stairs=True)))
    again = OccupancyMap.from_state(occupancy.to_state())
    assert np.array_equal(again.floor_h, occupancy.floor_h, equal_nan=True)
    assert again.levels_seen and again.agent_y0 == occupancy.agent_y0
    # maps saved before floor heights were kept load with free cells on floor_y
    state = occupancy.to_state()
    for key in ("floor_h", "hit_floor_y", "agent_y0", "levels_seen"):
        del state[key]
    old = OccupancyMap.from_state(state)
    assert np.all(old.floor_h[old.state == FREE] == 0.0) and not old.levels_seen

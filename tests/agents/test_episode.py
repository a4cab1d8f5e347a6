"""What the episode loop measures: seen-area coverage, path length, the floor of its map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aeqa.agents.episode import coverage_of
from aeqa.envs.config import SimConfig
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import AgentState
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.occupancy import FREE, OccupancyMap
from tests.scenes import ROOM_X, ROOM_Z

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

"""Split-level houses: the generator's stair hall and raised rooms, the navigable area over
both levels (against habitat-sim where it is installed), and the limit on stacked storeys."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.navigation import NavGrid, NavSpec
from aeqa.envs.scene import load_scene
from aeqa.envs.scenegen import STAIR_MAX_STEP_M, generate_scene
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import AgentState, NavigableGrid
from tests.scenes import Box, write_boxes

SEED = 3


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scene(tmp_path_factory.mktemp("split"), "split", seed=SEED, size="split-level")


def _truth(base: Path) -> dict[str, Any]:
    return dict(json.loads(base.with_name(f"{base.name}.scene.json").read_text()))


def _upper_point(truth: dict[str, Any]) -> np.ndarray:
    """The centre of the first raised room's hub area: its bounds' centre, at its floor."""
    region = next(r for r in truth["regions"] if r["floor_y"] > 0)
    lo, hi = np.array(region["bounds_min"]), np.array(region["bounds_max"])
    x, z = (lo + hi) / 2
    return np.array([x, region["floor_y"], z])


@pytest.fixture(scope="module")
def sim(split: Path) -> Simulator:
    simulator = make_simulator(SimConfig(width=64, height=48))
    simulator.reset(split)
    return simulator


def test_split_level_files_are_deterministic(split: Path, tmp_path: Path) -> None:
    again = generate_scene(tmp_path, "split", seed=SEED, size="split-level")
    for suffix in (".glb", ".semantic.glb", ".semantic.txt", ".scene.json"):
        a = split.with_name(split.name + suffix).read_bytes()
        assert a == again.with_name(again.name + suffix).read_bytes(), suffix
    other = generate_scene(tmp_path, "other", seed=SEED + 1, size="split-level")
    assert _truth(other)["regions"] != _truth(split)["regions"]


def test_split_level_has_rooms_objects_and_stairs_on_both_levels(split: Path) -> None:
    truth = _truth(split)
    assert truth["generator"]["size"] == "split-level"
    floors = {r["region_id"]: r["floor_y"] for r in truth["regions"]}
    rise = max(floors.values())
    assert 1.0 <= rise <= 1.4
    assert [r["type"] for r in truth["regions"]].count("staircase") == 1
    for level in (0.0, rise):
        rooms = {rid for rid, y in floors.items() if y == level}
        objects = [o for o in truth["objects"] if o["region_id"] in rooms]
        assert len(rooms) >= 3 and len(objects) >= 10, level
        # objects stand on their own level's floor, not below it
        assert min(o["bbox_min"][1] for o in objects) >= level - 1e-3
    stairs = sorted(s["bbox_max"][1] for s in truth["structure"] if s["category"] == "stairs")
    steps = np.diff([0.0, *stairs])
    assert stairs[-1] == pytest.approx(rise) and np.all(steps <= STAIR_MAX_STEP_M + 1e-6)
    # the raised rooms lie beside the lower ones, not above them
    lower = [r for r in truth["regions"] if r["floor_y"] == 0.0 and r["type"] != "staircase"]
    upper = [r for r in truth["regions"] if r["floor_y"] > 0.0]
    for a in lower:
        for b in upper:
            overlap = np.minimum(a["bounds_max"], b["bounds_max"]) - np.maximum(
                a["bounds_min"], b["bounds_min"]
            )
            assert np.any(overlap <= 1e-6), (a["name"], b["name"])


def test_navigable_area_spans_both_levels(sim: Simulator, split: Path) -> None:
    truth = _truth(split)
    upper = _upper_point(truth)
    start = np.array(truth["start"]["position"])
    snapped = sim.snap_point(upper)
    assert abs(snapped[0] - upper[0]) < 0.5 and abs(snapped[2] - upper[2]) < 0.5
    assert snapped[1] == pytest.approx(upper[1], abs=0.25)
    assert sim.is_navigable(snapped)
    path = sim.shortest_path(start, snapped)
    assert path is not None
    # the path climbs in steps no higher than the agent's climb between its corners' heights
    heights = path[:, 1]
    assert heights.max() == pytest.approx(snapped[1]) and heights.min() < 0.25
    length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    assert sim.geodesic_distance(start, snapped) == pytest.approx(length)
    grid = sim.navigable_grid(0.1)
    assert grid.heights is not None
    levels = grid.levels()
    assert len(levels) == 2 and levels[1] - levels[0] == pytest.approx(upper[1], abs=0.25)
    masks = grid.level_masks()
    areas = [float(m.sum()) * grid.cell_m**2 for m in masks]
    assert min(areas) > 10.0, areas
    assert sum(areas) == pytest.approx(grid.area_m2)


def test_samples_and_moves_reach_the_upper_level(sim: Simulator, split: Path) -> None:
    rng = np.random.default_rng(0)
    ys = np.array([sim.sample_navigable_point(rng)[1] for _ in range(200)])
    assert np.mean(ys > 0.8) > 0.15 and np.mean(ys < 0.3) > 0.3
    # Walking along the stair hall from its lower landing climbs to the upper level.
    hall = next(r for r in _truth(split)["regions"] if r["type"] == "staircase")
    (x0, z0), (x1, z1) = hall["bounds_min"], hall["bounds_max"]
    here = sim.snap_point(np.array([x0 + 0.5, 0.0, (z0 + z1) / 2]))
    facing_x = np.array([math.cos(-math.pi / 4), 0.0, math.sin(-math.pi / 4), 0.0])
    sim.set_state(AgentState(here, facing_x))
    heights = [here[1]]
    while sim.get_state().position[0] < x1 - 0.5:
        obs = sim.step("move_forward")
        assert not obs.collided
        heights.append(obs.state.position[1])
    assert heights[-1] == pytest.approx(_upper_point(_truth(split))[1], abs=0.2)
    assert np.all(np.diff(heights) >= -1e-6) and np.max(np.diff(heights)) <= 0.25


def test_single_level_grid_has_one_level() -> None:
    grid = NavigableGrid(0.0, 0.0, 0.1, np.ones((20, 20), bool), 0.0)
    assert grid.levels() == [0.0] and len(grid.level_masks()) == 1


def _stacked_boxes() -> list[Box]:
    """An 8 x 4 m floor with a deck 2 m up over its +x half, reached by solid stairs along one
    side: the floor reachable from the start lies above itself."""
    boxes = [
        Box("floor", "floor", (-4.0, -0.1, -2.1), (4.0, 0.0, 2.1), (90, 90, 90)),
        Box("deck", "floor", (0.0, 2.0, -2.0), (3.9, 2.1, 2.0), (120, 90, 60)),
    ]
    for k in range(1, 14):
        x0 = -3.8 + 0.25 * (k - 1)
        top = 0.15 * k
        boxes.append(Box(f"step{k}", "stairs", (x0, 0.0, 1.2), (x0 + 0.25, top, 2.0), (130,) * 3))
    boxes.append(Box("landing", "stairs", (-0.55, 0.0, 1.2), (0.0, 2.1, 2.0), (130, 130, 130)))
    return boxes


def test_stacked_storeys_keep_the_start_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = write_boxes(tmp_path, "mezzanine", _stacked_boxes())
    mesh = load_scene(base)
    with caplog.at_level(logging.WARNING, logger="aeqa.envs.navigation"):
        nav = NavGrid(mesh.vertices, mesh.faces, 0.0, NavSpec(), start_xz=(-3.0, -1.0))
    assert "storey above another" in caplog.text
    assert not nav.multi_level
    # the floor under the mezzanine stays navigable; the mezzanine does not
    assert nav.is_navigable(np.array([2.0, 0.0, -1.0]))
    assert not nav.is_navigable(np.array([2.0, 2.1, -1.0]))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5])
def test_split_level_navmesh_agrees_with_habitat(
    tmp_path: Path, seed: int, shared_sims: Any
) -> None:
    """The start island's navmesh polygons cover the area habitat-sim's do in plan; its
    surface area and geodesics across the stairs agree."""
    pytest.importorskip("habitat_sim")
    base = generate_scene(tmp_path, f"split{seed}", seed=seed, size="split-level")
    config = dict(width=64, height=48, hfov_deg=90.0)
    meshsim = shared_sims(SimConfig(type="meshsim", **config))
    habitat = shared_sims(SimConfig(type="habitat", **config))
    start = meshsim.reset(base).state
    habitat.reset(base, start)
    pathfinder = habitat._require().pathfinder  # type: ignore[attr-defined]
    tris = np.asarray(pathfinder.build_navmesh_vertices(habitat._island)).reshape(-1, 3, 3)  # type: ignore[attr-defined]
    plan_area = 0.5 * np.abs(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])[:, 1])
    nav = meshsim.nav  # type: ignore[attr-defined]
    assert nav.multi_level
    ours = nav._query.area[nav._island_polys].sum()
    assert ours == pytest.approx(plan_area.sum(), rel=1e-4)
    assert meshsim.navigable_area() == pytest.approx(habitat.navigable_area(), rel=0.005)
    truth = _truth(base)
    goal = meshsim.snap_point(_upper_point(truth))
    rng = np.random.default_rng(seed)
    pairs = [(start.position, goal)]
    pairs += [
        (meshsim.sample_navigable_point(rng), meshsim.sample_navigable_point(rng)) for _ in range(8)
    ]
    crossing = 0
    for a, b in pairs:
        ours_m = meshsim.geodesic_distance(a, b)
        theirs = habitat.geodesic_distance(a, b)
        assert ours_m == pytest.approx(theirs, rel=0.02, abs=0.02), (a, b)
        crossing += abs(a[1] - b[1]) > 0.8
    assert crossing >= 2

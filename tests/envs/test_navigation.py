"""``aeqa.envs.navigation``: habitat-sim's navmesh answers on the golden scene, and analytic
rooms."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
import trimesh

from aeqa.envs.errors import AeqaError
from aeqa.envs.navigation import NavGrid, NavSpec
from aeqa.envs.scene import load_scene
from tests.conftest import shared_data

#: the synthetic rooms below are built directly in the Y-up world frame
Y_UP = NavSpec(asset_up="y")
HALF_M = 2.0  # the box room's interior is x, z in [-2, 2]
PILLAR_HALF_M = 0.5


# --- the golden scene: what habitat-sim 0.3.3 answered ---------------------------------------


@pytest.fixture(scope="module")
def golden() -> tuple[NavGrid, dict[str, Any]]:
    folder = shared_data("habitat-golden")
    truth = json.loads((folder / "navmesh.json").read_text())
    mesh = load_scene(folder / "golden_room")
    spec = NavSpec(agent_radius_m=truth["agent_radius"], agent_height_m=truth["agent_height"])
    start = truth["start"]
    grid = NavGrid(mesh.vertices, mesh.faces, 0.0, spec, start_xz=(start[0], start[2]))
    return grid, truth


def test_golden_probes_match_habitat(golden: tuple[NavGrid, dict[str, Any]]) -> None:
    grid, truth = golden
    assert len(truth["probes"]) == 96
    wrong = [
        (probe["point"], probe["navigable"])
        for probe in truth["probes"]
        if grid.is_navigable(np.array(probe["point"])) != probe["navigable"]
    ]
    assert wrong == []


def test_golden_start_island_area(golden: tuple[NavGrid, dict[str, Any]]) -> None:
    grid, truth = golden
    assert grid.island_area_m2 == pytest.approx(truth["start_island_area_m2"], rel=0.05)
    # Same polygons as habitat-sim's, so the same area up to float rounding.
    assert grid.island_area_m2 == pytest.approx(truth["start_island_area_m2"], rel=1e-4)


def test_golden_geodesic_distances(golden: tuple[NavGrid, dict[str, Any]]) -> None:
    grid, truth = golden
    for i, pair in enumerate(truth["pairs"]):
        a, b = np.array(pair["a"]), np.array(pair["b"])
        geodesic = grid.geodesic_distance(a, b)
        assert geodesic == pytest.approx(pair["geodesic_m"], rel=0.05), f"pair {i}"
        # Detour's corridor, not the shortest path: pair 0 goes round the chair's far side.
        assert geodesic == pytest.approx(pair["geodesic_m"], rel=1e-3), f"pair {i}"


def test_golden_heights_are_habitats(golden: tuple[NavGrid, dict[str, Any]]) -> None:
    grid, truth = golden
    start = np.array(truth["start"])
    row, col = grid.cell_of(start)
    # habitat-sim's float32 Z-up rotation moves the mesh's lowest point to -0.10000037 m,
    # so the floor voxel's top is 0.09999963 m; the snapped start keeps that height.
    assert grid.floor_y[row, col] == pytest.approx(start[1], abs=1e-6)
    assert grid.snap(start)[1] == pytest.approx(start[1], abs=1e-6)


def test_golden_paths_stay_on_the_island(golden: tuple[NavGrid, dict[str, Any]]) -> None:
    grid, truth = golden
    for pair in truth["pairs"]:
        path = grid.shortest_path(np.array(pair["a"]), np.array(pair["b"]))
        assert path is not None
        assert np.allclose(path[0][[0, 2]], pair["a"][::2], atol=1e-6)
        assert np.allclose(path[-1][[0, 2]], pair["b"][::2], atol=1e-6)
        assert all(grid.on_island(p) for p in path)
        for p, q in itertools.pairwise(path):
            assert grid.line_of_sight(p + (q - p) * 1e-3, q)


# --- synthetic rooms ---------------------------------------------------------------------------


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=np.subtract(hi, lo))
    box.apply_translation(np.add(lo, hi) / 2.0)
    return box


def _room(pillar: bool = False, floor: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 4 m x 4 m room (floor slab top at y = 0, 10 cm walls outside it, a ceiling), Y-up;
    optionally a 1 m x 1 m pillar in the middle."""
    h, t = HALF_M, 0.1
    boxes = [
        _box((-h - t, 0, -h - t), (-h, 2.5, h + t)),
        _box((h, 0, -h - t), (h + t, 2.5, h + t)),
        _box((-h, 0, -h - t), (h, 2.5, -h)),
        _box((-h, 0, h), (h, 2.5, h + t)),
        _box((-h - t, 2.5, -h - t), (h + t, 2.6, h + t)),
    ]
    if floor:
        boxes.append(_box((-h - t, -t, -h - t), (h + t, 0, h + t)))
    if pillar:
        p = PILLAR_HALF_M
        boxes.append(_box((-p, 0, -p), (p, 2.5, p)))
    mesh = trimesh.util.concatenate(boxes)
    return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces)


@pytest.fixture(scope="module")
def open_room() -> NavGrid:
    vertices, faces = _room()
    return NavGrid(vertices, faces, 0.0, Y_UP, start_xz=(0.0, 0.0))


@pytest.fixture(scope="module")
def pillar_room() -> NavGrid:
    vertices, faces = _room(pillar=True)
    return NavGrid(vertices, faces, 0.0, Y_UP, start_xz=(-1.5, 0.0))


def _floor_point(x: float, z: float) -> np.ndarray:
    return np.array([x, 0.0, z])


def test_open_room_area_is_analytic(open_room: NavGrid) -> None:
    radius = Y_UP.agent_radius_m
    assert open_room.island_area_m2 == pytest.approx((2 * HALF_M - 2 * radius) ** 2, rel=0.05)
    # the grids agree with the polygons
    cells = open_room.island.sum() * open_room.cell_m**2
    assert cells == pytest.approx(open_room.island_area_m2, rel=0.02)
    assert np.array_equal(open_room.island, open_room.navigable)


def test_pillar_room_area_is_analytic(pillar_room: NavGrid) -> None:
    radius = Y_UP.agent_radius_m
    room = (2 * HALF_M - 2 * radius) ** 2
    pillar = (2 * PILLAR_HALF_M + 2 * radius) ** 2
    assert pillar_room.island_area_m2 == pytest.approx(room - pillar, rel=0.05)


def test_navigable_points(pillar_room: NavGrid) -> None:
    assert pillar_room.is_navigable(_floor_point(-1.5, 1.5))
    assert not pillar_room.is_navigable(_floor_point(0.0, 0.0))  # inside the pillar
    assert not pillar_room.is_navigable(_floor_point(HALF_M - 0.05, 0.0))  # against a wall
    assert not pillar_room.is_navigable(_floor_point(HALF_M + 1.0, 0.0))  # outside the room
    assert not pillar_room.is_navigable(np.array([-1.5, 1.5, 1.5]))  # far above the floor
    rng = np.random.default_rng(0)
    for _ in range(20):
        point = pillar_room.sample(rng)
        assert pillar_room.is_navigable(point) and pillar_room.on_island(point)
        assert pillar_room.clearance_m(point) >= -1e-9


def test_snap_and_clearance(pillar_room: NavGrid) -> None:
    snapped = pillar_room.snap(_floor_point(0.1, 0.0))
    assert pillar_room.is_navigable(snapped)
    # the nearest free floor is beside the pillar's +x face, one agent radius away
    assert snapped[0] == pytest.approx(PILLAR_HALF_M + Y_UP.agent_radius_m, abs=0.06)
    assert pillar_room.clearance_m(_floor_point(0.0, 0.0)) < 0
    assert pillar_room.clearance_m(_floor_point(-1.2, 1.2)) > 0.5


def test_geodesic_is_straight_in_open_space(open_room: NavGrid) -> None:
    a, b = _floor_point(-1.5, -1.2), _floor_point(1.4, 1.0)
    euclidean = float(np.linalg.norm((b - a)[[0, 2]]))
    assert open_room.geodesic_distance(a, b) == pytest.approx(euclidean, rel=0.02)
    assert open_room.line_of_sight(a, b)
    path = open_room.shortest_path(a, b)
    assert path is not None and len(path) == 2


def test_geodesic_goes_round_the_pillar(pillar_room: NavGrid) -> None:
    a, b = _floor_point(-1.5, 0.0), _floor_point(1.5, 0.0)
    euclidean = 3.0
    geodesic = pillar_room.geodesic_distance(a, b)
    # round a 1.2 m wide obstacle: at least 2 * hypot(1.5, 0.6)
    assert geodesic > 2 * math.hypot(1.5, PILLAR_HALF_M + Y_UP.agent_radius_m) - 0.01
    assert geodesic < euclidean * 1.2
    assert not pillar_room.line_of_sight(a, b)
    path = pillar_room.shortest_path(a, b)
    assert path is not None and len(path) >= 3
    length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    assert length == pytest.approx(geodesic, rel=1e-9)
    field = pillar_room.distance_field(b)
    row, col = pillar_room.cell_of(a)
    assert euclidean < field[row, col] < euclidean * 1.3


def test_unreachable_goal_is_infinite() -> None:
    # two rooms separated by a full wall: each is its own island
    vertices, faces = _room()
    wall = _box((-0.05, 0, -HALF_M), (0.05, 2.5, HALF_M))
    mesh = trimesh.util.concatenate([trimesh.Trimesh(vertices, faces, process=False), wall])
    grid = NavGrid(
        np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces), 0.0, Y_UP, (-1.0, 0.0)
    )
    assert grid.stats.islands == 2
    assert grid.is_navigable(_floor_point(1.0, 0.0))
    assert not grid.on_island(_floor_point(1.0, 0.0))
    assert grid.geodesic_distance(_floor_point(-1.0, 0.0), _floor_point(1.0, 0.0)) == math.inf
    assert grid.shortest_path(_floor_point(-1.0, 0.0), _floor_point(1.0, 0.0)) is None


def test_start_off_the_navigable_area_is_refused() -> None:
    vertices, faces = _room(pillar=True)
    with pytest.raises(AeqaError, match="not on the navigable area"):
        NavGrid(vertices, faces, 0.0, Y_UP, start_xz=(0.0, 0.0), source="pillar room")


def test_mesh_without_floor_is_refused() -> None:
    vertices, faces = _room(floor=False)
    with pytest.raises(AeqaError, match="no navigable floor"):
        NavGrid(vertices, faces, 0.0, Y_UP, source="walls only")
    with pytest.raises(AeqaError, match="no triangles"):
        NavGrid(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), 0.0, Y_UP)

"""Episode histories in OpenEQA's layout: an exploring episode writes its frames, and reading
them back builds the memory the episode built (same voxels and objects up to voxel rounding),
in HM3D's and in ScanNet's conventions; OpenEQA's own histories (no sidecar, no instance ids);
and the bad inputs a user can hand the reader, each named with its fix."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from aeqa.agents.episode import Episode, EpisodeSpec, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import (
    edge_to_opencv_intrinsics,
    intrinsics,
    world_to_scannet_pose,
)
from aeqa.envs.scenegen import generate_scene
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import Observations
from aeqa.mapping.history import (
    SIDECAR_FILE,
    EpisodeHistory,
    HistoryWriter,
    memory_from_history,
)
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.voxels import unpack_keys

FAST = ["sim.width=160", "sim.height=120", "explorer.max_steps=30", "coverage_samples=100"]


@dataclass
class Recorded:
    """A live episode: its observations and memory, and the history it exported."""

    observations: list[Observations]
    memory: SemanticMemory
    history: Path


class _Recording(Episode):
    """An episode that keeps a copy of every observation and its memory."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[Observations] = []
        self.memory: SemanticMemory | None = None

    def _observe(self, memory, obs, step, frames_dir, history=None):  # type: ignore[no-untyped-def, override]
        self.seen.append(copy.deepcopy(obs))
        self.memory = memory
        super()._observe(memory, obs, step, frames_dir, history)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recorded]:
    root = tmp_path_factory.mktemp("history")
    scene = generate_scene(root / "scene", "apt", seed=3)
    config = resolve_episode_config("discrete", "memory", FAST)
    sim = make_simulator(config.sim)
    out: dict[str, Recorded] = {}
    try:
        for convention in ("hm3d", "scannet"):
            episode = _Recording(sim, config)
            episode.run(
                EpisodeSpec("What color is the sofa?", str(scene)),
                history_dir=root / convention,
                history_format=convention,
            )
            assert episode.memory is not None
            out[convention] = Recorded(episode.seen, episode.memory, root / convention)
    finally:
        sim.close()
    return out


def _copy(history: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(history, tmp_path / history.name))


def _within_one_voxel(a: SemanticMemory, b: SemanticMemory) -> float:
    """Fraction of ``a``'s voxels with a voxel of ``b`` at most one voxel away on each axis."""
    ka, kb = unpack_keys(a.voxels.keys), unpack_keys(b.voxels.keys)
    offsets = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    known = {tuple(p) for p in kb}
    near = [any(tuple(p + o) in known for o in offsets) for p in ka]
    return float(np.mean(near))


# --- the layout ----------------------------------------------------------------------------------


def test_hm3d_history_is_openeqa_layout(recorded: dict[str, Recorded]) -> None:
    live = recorded["hm3d"]
    folder = live.history
    assert len(list(folder.glob("*-rgb.png"))) == len(live.observations) == 31
    obs = live.observations[7]
    rgb = iio.imread(folder / "00007-rgb.png")
    depth = iio.imread(folder / "00007-depth.png")
    semantic = iio.imread(folder / "00007-semantic.png")
    pose = np.loadtxt(folder / "00007.txt")
    K = np.loadtxt(folder / "intrinsic_depth.txt")
    assert rgb.dtype == np.uint8 and rgb.shape == (120, 160, 3)
    np.testing.assert_array_equal(rgb, obs.rgb)
    # OpenEQA's HM3D depth: uint16 of depth / 10 m * 65535, 0 = no depth
    assert depth.dtype == np.uint16 and depth.shape == (120, 160)
    np.testing.assert_allclose(depth / 65535.0 * 10.0, obs.depth, atol=10.0 / 65535)
    assert semantic.dtype == np.uint16
    np.testing.assert_array_equal(semantic, obs.semantic)
    # habitat's camera-to-world pose (Y up, OpenGL camera), as ours
    np.testing.assert_allclose(pose, obs.T_world_camera, atol=1e-6)
    np.testing.assert_allclose(K, np.loadtxt(folder / "intrinsic_color.txt"))
    np.testing.assert_allclose(K[:3, :3], intrinsics(160, 120, 90.0), atol=1e-6)
    sidecar = json.loads((folder / SIDECAR_FILE).read_text())
    assert sidecar["convention"] == "hm3d" and sidecar["frames"] == 31
    assert sidecar["source"]["question"] == "What color is the sofa?"
    assert sidecar["source"]["scene"].endswith("apt")
    assert sidecar["source"]["sim"]["width"] == 160
    assert sidecar["labels"] and sidecar["semantic"] is True


def test_scannet_history_stores_scannet_conventions(recorded: dict[str, Recorded]) -> None:
    live = recorded["scannet"]
    folder = live.history
    obs = live.observations[5]
    assert (folder / "000005-rgb.png").is_file() and not (folder / "00005-rgb.png").exists()
    depth = iio.imread(folder / "000005-depth.png")
    assert depth.dtype == np.uint16
    np.testing.assert_allclose(depth / 1000.0, obs.depth, atol=0.0005)  # millimetres
    pose = np.loadtxt(folder / "000005.txt")
    np.testing.assert_allclose(pose, world_to_scannet_pose(obs.T_world_camera), atol=1e-6)
    # Z up: the camera's height is its z, and OpenCV's +z (forward) of a level camera is level
    assert pose[2, 3] == pytest.approx(obs.T_world_camera[1, 3], abs=1e-6)
    assert abs(pose[2, 2]) < 1e-6
    K = np.loadtxt(folder / "intrinsic_depth.txt")
    np.testing.assert_allclose(K[:3, :3], edge_to_opencv_intrinsics(intrinsics(160, 120, 90.0)))
    for name in ("extrinsic_color.txt", "extrinsic_depth.txt"):
        np.testing.assert_allclose(np.loadtxt(folder / name), np.eye(4))


# --- reading back ---------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["hm3d", "scannet"])
def test_history_read_back_gives_the_live_memory(
    recorded: dict[str, Recorded], convention: str
) -> None:
    live = recorded[convention]
    config = resolve_episode_config("discrete", "memory", FAST)
    history = EpisodeHistory(live.history)
    assert history.format == convention
    memory = memory_from_history(history, config.memory)

    assert memory.frames_integrated == live.memory.frames_integrated == 31
    # Same voxels up to voxel rounding: the depth is stored to 0.15 mm (1 mm for ScanNet) and
    # the pose to 1e-6, so points on a voxel boundary (a floor at y = 0) may fall either side.
    assert _within_one_voxel(live.memory, memory) == 1.0
    assert _within_one_voxel(memory, live.memory) == 1.0
    assert abs(len(memory) - len(live.memory)) < 0.25 * len(live.memory)
    # The same objects: every object the live memory holds with the same id and category,
    # its centroid within a voxel (walls, floors and ceilings lie on voxel boundaries).
    read = {o.object_id: o for o in memory.objects()}
    for obj in live.memory.objects():
        if obj.structural:
            continue
        assert obj.object_id in read, obj.category
        again = read[obj.object_id]
        assert again.category == obj.category
        assert np.abs(again.centroid - obj.centroid).max() <= memory.config.voxel_m
    assert sum(not o.structural for o in memory.objects()) == sum(
        not o.structural for o in live.memory.objects()
    )
    assert memory.labels == live.memory.labels
    assert sorted(memory.keyframes.frames) == sorted(live.memory.keyframes.frames)
    assert memory.occupancy.floor_y == live.memory.occupancy.floor_y
    assert memory.occupancy.state.shape == live.memory.occupancy.state.shape
    assert np.mean(memory.occupancy.state == live.memory.occupancy.state) > 0.99
    first = history.observation(0)
    assert first is not None
    np.testing.assert_allclose(first.state.position, live.observations[0].state.position, atol=1e-5)


def test_openeqa_history_without_sidecar_or_instance_ids(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    """OpenEQA's own histories carry frames, poses and intrinsics only: the floor is found in
    the depth, nothing is labelled, and keyframes spread over the episode."""
    folder = _copy(recorded["hm3d"].history, tmp_path)
    (folder / SIDECAR_FILE).unlink()
    for path in folder.glob("*-semantic.png"):
        path.unlink()
    history = EpisodeHistory(folder)
    assert history.format == "hm3d" and not history.has_semantic
    assert history.floor_y() == pytest.approx(0.0, abs=0.005)
    memory = memory_from_history(history)
    assert memory.labels == {} and all(not o.category for o in memory.objects())
    assert len(memory) > 0.7 * len(recorded["hm3d"].memory)
    ids = sorted(memory.keyframes.frames)
    assert len(ids) == 31  # every frame, as fewer than 64 were read
    assert [memory.keyframes.frames[i].step for i in ids] == list(range(31))


def test_scannet_colour_of_another_resolution_is_resampled(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    """ScanNet's colour frames are larger than its depth frames: colour is read through its
    own intrinsics onto the depth camera."""
    folder = _copy(recorded["scannet"].history, tmp_path)
    K = np.loadtxt(folder / "intrinsic_color.txt")
    K2 = K.copy()
    K2[0, 0], K2[1, 1] = 2 * K[0, 0], 2 * K[1, 1]
    K2[0, 2], K2[1, 2] = 2 * K[0, 2] + 0.5, 2 * K[1, 2] + 0.5  # OpenCV: centres on integers
    np.savetxt(folder / "intrinsic_color.txt", K2)
    for path in folder.glob("*-rgb.png"):
        rgb = iio.imread(path)
        iio.imwrite(path, np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1))
    history = EpisodeHistory(folder)
    obs = history.observation(3)
    assert obs is not None
    np.testing.assert_array_equal(obs.rgb, recorded["scannet"].observations[3].rgb)


def test_scannet_frames_with_lost_tracking_are_left_out(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    folder = _copy(recorded["scannet"].history, tmp_path)
    np.savetxt(folder / "000004.txt", np.full((4, 4), -np.inf))  # as ScanNet marks them
    memory = memory_from_history(folder)
    assert memory.frames_integrated == 30


def test_format_told_by_folder_name_and_frame_numbers(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    folder = _copy(recorded["scannet"].history, tmp_path)
    (folder / SIDECAR_FILE).unlink()
    assert EpisodeHistory(folder).format == "scannet"  # six digits, extrinsics
    renamed = folder.rename(tmp_path / "002-scannet-scene0709_00")
    assert EpisodeHistory(renamed).format == "scannet"
    with pytest.raises(AeqaError, match="stored as hm3d, not scannet"):
        EpisodeHistory(recorded["hm3d"].history, "scannet")


# --- bad input -----------------------------------------------------------------------------------


def test_missing_pose_is_named(recorded: dict[str, Recorded], tmp_path: Path) -> None:
    folder = _copy(recorded["hm3d"].history, tmp_path)
    (folder / "00003.txt").unlink()
    with pytest.raises(AeqaError, match=r"00003\.txt: pose of frame 00003 missing.*remove"):
        memory_from_history(folder)


def test_rgb_only_history_says_how_to_extract_depth(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    folder = _copy(recorded["hm3d"].history, tmp_path)
    for pattern in ("*-depth.png", "?????.txt"):
        for path in folder.glob(pattern):
            path.unlink()
    with pytest.raises(AeqaError, match=r"colour frames only.*without --rgb-only"):
        EpisodeHistory(folder)


def test_depth_of_the_wrong_size_is_named(recorded: dict[str, Recorded], tmp_path: Path) -> None:
    folder = _copy(recorded["hm3d"].history, tmp_path)
    depth = iio.imread(folder / "00005-depth.png")
    iio.imwrite(folder / "00005-depth.png", depth[::2, ::2])
    with pytest.raises(AeqaError, match=r"00005-depth\.png: depth frame is 80x60, the history's"):
        memory_from_history(folder)


def test_depth_of_the_wrong_dtype_is_named(recorded: dict[str, Recorded], tmp_path: Path) -> None:
    folder = _copy(recorded["scannet"].history, tmp_path)
    depth = iio.imread(folder / "000002-depth.png")
    iio.imwrite(folder / "000002-depth.png", (depth // 256).astype(np.uint8))
    with pytest.raises(
        AeqaError, match=r"000002-depth\.png: the depth frame must be a 16-bit.*got uint8"
    ):
        memory_from_history(folder)


def test_first_depth_frame_that_disagrees_with_the_intrinsics_is_named(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    folder = _copy(recorded["hm3d"].history, tmp_path)
    for path in folder.glob("*-depth.png"):
        depth = iio.imread(path)
        iio.imwrite(path, np.tile(depth, (2, 2)))
    with pytest.raises(AeqaError, match=r"00000-depth\.png: depth frame is 320x240, but"):
        memory_from_history(folder)


def test_bad_pose_and_missing_intrinsics_are_named(
    recorded: dict[str, Recorded], tmp_path: Path
) -> None:
    folder = _copy(recorded["hm3d"].history, tmp_path)
    (folder / "00001.txt").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(AeqaError, match=r"00001\.txt: camera pose must be a 4x4 matrix"):
        memory_from_history(folder)
    (folder / "intrinsic_depth.txt").unlink()
    with pytest.raises(AeqaError, match=r"intrinsic_depth\.txt: depth intrinsics missing"):
        EpisodeHistory(folder)


def test_export_into_a_history_is_refused(recorded: dict[str, Recorded]) -> None:
    history = EpisodeHistory(recorded["hm3d"].history)
    assert history.sidecar is not None
    with pytest.raises(AeqaError, match="already holds an episode history"):
        HistoryWriter(recorded["hm3d"].history, history.sidecar)

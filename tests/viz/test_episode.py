"""Pictures of one episode: the top-down map, the video and the memory renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeqa.envs.types import AgentState
from aeqa.mapping.occupancy import FREE, OCCUPIED, UNKNOWN, OccupancyMap
from aeqa.viz import colors
from aeqa.viz.data import Poses, load_episode
from aeqa.viz.memory_render import MemoryCloud, TopView, memory_figure, render_view, splat
from aeqa.viz.topdown import (
    NEVER,
    build_topdown,
    first_seen_steps,
    nice_length,
    recorded_first_seen,
    resample,
    simulated_navigable,
    title_lines,
    topdown_figure,
)
from aeqa.viz.video import EgocentricFrames, frame_indices
from aeqa.viz.visualize import VisualizeOptions, visualize
from tests.viz.conftest import assert_not_blank, tree_hashes


def _read_video(path: Path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return [np.asarray(frame) for frame in reader]
    finally:
        reader.close()


def test_episode_pictures_and_video(explored: Path, tmp_path: Path) -> None:
    before = tree_hashes(explored)
    out = tmp_path / "viz"
    written = visualize(explored, VisualizeOptions(out=out))
    names = sorted(p.name for p in written)
    assert names == [
        "episode.mp4",
        "memory_oblique.png",
        "memory_top.png",
        "topdown.png",
    ]
    assert tree_hashes(explored) == before  # nothing of the episode changed
    for name in ("topdown.png", "memory_top.png", "memory_oblique.png"):
        assert_not_blank(out / name, min_colors=30)
    episode = load_episode(explored)
    assert episode.problems == [] and episode.poses is not None
    frames = _read_video(out / "episode.mp4")
    # One frame per pose (the start and 30 steps), then the answer held.
    assert len(frames) > len(episode.poses)
    assert frames[0].shape[0] % 16 == 0 and frames[0].shape[1] % 16 == 0
    for frame in (frames[0], frames[len(frames) // 2], frames[-1]):
        assert_not_blank(frame)
    # The egocentric half changes as the agent turns and walks.
    half = frames[0].shape[1] // 2
    assert np.abs(frames[5][:, :half].astype(int) - frames[20][:, :half].astype(int)).mean() > 3


def test_default_output_is_inside_the_episode(explored: Path, tmp_path: Path) -> None:
    episode = tmp_path / "episode"
    shutil.copytree(explored, episode)
    before = tree_hashes(episode)
    written = visualize(episode, VisualizeOptions(video=False, memory=False))
    assert [p.relative_to(episode).as_posix() for p in written] == ["viz/topdown.png"]
    after = tree_hashes(episode)
    assert {k: v for k, v in after.items() if not k.startswith("viz/")} == before


def test_topdown_layers_follow_the_trajectory(explored: Path) -> None:
    episode = load_episode(explored)
    topdown = build_topdown(episode)
    assert topdown.plan is not None and topdown.notes == []
    assert topdown.navigable.any() and topdown.walls.any() and (topdown.instance > 0).any()
    seen_area = [np.count_nonzero(topdown.first_seen <= s) for s in (0, 10, 20, 30)]
    assert seen_area == sorted(seen_area) and seen_area[0] > 0
    # At the last step the map is the memory's own map.
    assert np.array_equal(topdown.state_at(topdown.last_step) != UNKNOWN, topdown.state != UNKNOWN)
    # The answer's evidence is in the memory and drawn.
    assert episode.evidence_ids and episode.evidence
    assert topdown.frontiers(10, episode.poses.positions[10]) is not None


def test_video_re_renders_views_without_saved_frames(explored: Path, tmp_path: Path) -> None:
    episode = load_episode(explored)
    topdown = build_topdown(episode)
    saved = EgocentricFrames(episode, topdown)
    assert saved.source == "saved frames"
    episode.frames = {}
    rendered = EgocentricFrames(episode, topdown)
    assert rendered.source == "re-rendered from the scene"
    view = rendered.frame(3)
    assert view is not None and view.shape[2] == 3
    assert_not_blank(view, min_colors=4)
    rendered.close()
    # Without frames and without the scene: the map alone.
    copy = tmp_path / "episode"
    shutil.copytree(explored, copy, ignore=shutil.ignore_patterns("frames"))
    record = json.loads((copy / "episode.json").read_text())
    record["scene"] = str(tmp_path / "gone" / "apartment")
    (copy / "episode.json").write_text(json.dumps(record))
    written = visualize(copy, VisualizeOptions(out=tmp_path / "out", memory=False, gif=True))
    assert [p.name for p in written] == ["topdown.png", "episode.mp4", "episode.gif"]
    frames = _read_video(tmp_path / "out" / "episode.mp4")
    assert_not_blank(frames[-1])
    assert_not_blank(tmp_path / "out" / "topdown.png")
    import imageio.v3 as iio

    gif = iio.imread(tmp_path / "out" / "episode.gif", index=None)
    assert gif.shape[0] > 10
    assert_not_blank(gif[-1])


def test_first_seen_steps_stop_at_walls() -> None:
    occupancy = OccupancyMap(cell_m=0.1, initial_half_extent_m=3.0)
    occupancy.state[:] = FREE
    wall_row = occupancy.grid.world_to_cell_xz(0.0, -1.0)[0]
    occupancy.state[wall_row, :] = OCCUPIED
    poses = Poses(
        steps=np.array([0, 1]),
        positions=np.zeros((2, 3)),
        # Facing -Z (towards the wall), then +Z.
        rotations=np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]),
        actions=["start", "turn_left"],
        collided=np.zeros(2, dtype=bool),
    )
    first = first_seen_steps(occupancy, poses, hfov_deg=90.0)
    g = occupancy.grid
    in_front = g.world_to_cell_xz(0.0, -0.5)
    behind_wall = g.world_to_cell_xz(0.0, -2.0)
    behind_agent = g.world_to_cell_xz(0.0, 1.5)
    assert first[in_front] == 0
    assert first[wall_row, g.world_to_cell_xz(0.0, -1.0)[1]] == 0
    assert first[behind_agent] == 1
    # Never reached by a fan, yet known to the map: counted from the last step.
    assert first[behind_wall] == 1
    occupancy.state[behind_wall] = UNKNOWN
    assert first_seen_steps(occupancy, poses, 90.0)[behind_wall] == NEVER


def test_splat_keeps_the_nearest_point() -> None:
    uv = np.array([[5.5, 5.5], [5.5, 5.5], [20.0, 3.0]])
    depth = np.array([2.0, 1.0, -1.0])
    result = splat(uv, depth, np.array([3.0, 1.0, 1.0]), 32, 16)
    assert result.index[5, 5] == 1 and result.depth[5, 5] == 1.0
    # The far point's larger square shows around the near one.
    assert result.index[4, 4] == 0 and result.index[6, 6] == 0
    assert result.index[3, 20] == -1  # behind the camera
    assert np.count_nonzero(result.index >= 0) == 9


def test_helpers() -> None:
    assert nice_length(10.0) == 2.0 and nice_length(4.0) == 1.0
    assert list(frame_indices(5, 10)) == [0, 1, 2, 3, 4]
    sampled = frame_indices(1000, 100)
    assert sampled[0] == 0 and sampled[-1] == 999 and len(sampled) == 100


@pytest.mark.parametrize("broken", ["episode.json", "trajectory.json", "memory"])
def test_a_damaged_episode_still_draws(explored: Path, tmp_path: Path, broken: str) -> None:
    copy = tmp_path / "episode"
    shutil.copytree(explored, copy, ignore=shutil.ignore_patterns("frames"))
    target = copy / broken
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.write_text(target.read_text()[:40])
    episode = load_episode(copy)
    assert len(episode.problems) == 1 and broken in episode.problems[0]
    options = VisualizeOptions(out=tmp_path / "out", video=False, memory=broken == "memory")
    written = visualize(copy, options)
    assert [p.name for p in written] == ["topdown.png"]
    assert_not_blank(written[0])


def _window(artist: Any, fig: Any) -> Any:
    return artist.get_window_extent(fig.canvas.get_renderer())


def _scale_bar_of(ax: Any) -> Any:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    (bar,) = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    return bar


def test_map_title_shows_a_reference_only_where_one_is_known(explored: Path) -> None:
    episode = load_episode(explored)
    assert not episode.reference
    title, _ = title_lines(episode)
    assert "reference" not in title and title.startswith("Q: What color is the sofa?")
    episode.reference = "red"
    assert "reference: red" in title_lines(episode)[0]


def test_map_scale_bar_and_legend_stay_off_the_map(explored: Path) -> None:
    episode = load_episode(explored)
    fig = topdown_figure(episode, build_topdown(episode))
    fig.canvas.draw()
    ax = fig.axes[0]
    assert _window(_scale_bar_of(ax), fig).y1 <= _window(ax, fig).y0 + 1  # under the map
    legend = _window(fig.legends[0], fig)
    assert legend.y0 >= 0 and legend.x1 <= fig.bbox.width + 1


def test_frontiers_are_one_colour_the_trajectory_never_takes(explored: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.collections import PathCollection

    frontier = np.array(colors.FRONTIER) / 255.0
    trajectory = np.asarray(colormaps[colors.TIME_CMAP](np.linspace(0, 1, 256)))[:, :3]
    assert np.linalg.norm(trajectory - frontier, axis=1).min() > 0.25
    episode = load_episode(explored)
    fig = topdown_figure(episode, build_topdown(episode), frontier_steps=[10, 20, 30])
    drawn = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert len(drawn) >= 2  # cells and centres of at least one step
    for collection in drawn:
        assert np.allclose(collection.get_facecolors()[:, :3], frontier)


def test_memory_legend_and_scale_bar_fit_a_long_low_picture() -> None:
    """A 20 m x 1.5 m strip with 20 categories: the legend (15 entries) is taller than the
    picture in one column, so it takes more columns and stays whole."""
    rng = np.random.default_rng(0)
    n = 6000
    points = np.column_stack([rng.uniform(0, 20, n), rng.uniform(0, 1, n), rng.uniform(0, 1.5, n)])
    cloud = MemoryCloud(
        points=points,
        rgb=rng.integers(0, 255, (n, 3)).astype(np.uint8),
        category=rng.integers(0, 20, n).astype(np.int64),
        categories=[f"thing {i}" for i in range(20)],
        voxel_m=0.05,
        floor_y=0.0,
        objects=[],
    )
    view = TopView.fit(points, cloud.voxel_m)
    rgb, by_category, _ = render_view(cloud, view)
    fig = memory_figure(cloud, view, rgb, by_category, (0, 0), [], "strip", 2.0, 110)
    fig.canvas.draw()
    legend = _window(fig.legends[0], fig)
    assert legend.y0 >= 0 and legend.y1 <= fig.bbox.height + 1
    assert legend.x1 <= fig.bbox.width + 1
    ax = fig.axes[0]
    assert _window(_scale_bar_of(ax), fig).y1 <= _window(ax, fig).y0 + 1


def _copy_run(explored: Path, to: Path) -> Path:
    """A copy of the run that holds ``explored`` (its config with it); the copied episode."""
    shutil.copytree(explored.parent.parent, to)
    return to / "episodes" / explored.name


def test_map_reads_what_the_episode_recorded_after_the_scene_is_gone(
    explored: Path, viz_scene: Path, tmp_path: Path
) -> None:
    """The navigable area and the first-seen steps come from the episode folder: the map still
    shows them once the scene's files are deleted."""
    scene = tmp_path / "scene" / viz_scene.name
    scene.parent.mkdir()
    for path in viz_scene.parent.glob(viz_scene.name + ".*"):
        shutil.copy(path, scene.parent / path.name)
    copy = _copy_run(explored, tmp_path / "run")
    record = json.loads((copy / "episode.json").read_text())
    record["scene"] = str(scene)
    (copy / "episode.json").write_text(json.dumps(record))
    episode = load_episode(copy)
    assert episode.problems == [] and episode.navigable is not None
    assert episode.first_seen is not None and episode.occupancy is not None
    with_scene = build_topdown(episode)
    assert with_scene.notes == [] and with_scene.walls.any()
    # The record is the simulator's island at the start, as it gives it now.
    assert episode.poses is not None
    start = AgentState(episode.poses.positions[0], episode.poses.rotations[0])
    asked = simulated_navigable(scene, episode.config.sim, start)
    assert np.array_equal(asked.mask, episode.navigable.mask)
    assert (asked.origin_x, asked.origin_z) == (
        episode.navigable.origin_x,
        episode.navigable.origin_z,
    )
    for path in scene.parent.glob(scene.name + ".*"):
        path.unlink()
    episode = load_episode(copy)
    topdown = build_topdown(episode)
    assert topdown.notes == [f"scene {scene} not found: walls and objects not drawn"]
    assert not topdown.walls.any() and topdown.plan is None
    assert np.array_equal(topdown.navigable, with_scene.navigable) and topdown.navigable.any()
    expected = resample(episode.navigable.grid, episode.navigable.mask, topdown.grid, False)
    assert np.array_equal(topdown.navigable, expected)
    # Cells first seen at the step the memory recorded, not reconstructed from poses.
    assert episode.first_seen is not None and episode.occupancy is not None
    first = recorded_first_seen(episode.first_seen, episode.occupancy.state, topdown.last_step)
    assert np.array_equal(
        topdown.first_seen, resample(episode.occupancy.grid, first, topdown.grid, NEVER)
    )
    assert len(np.unique(episode.first_seen[episode.first_seen >= 0])) > 10
    written = visualize(copy, VisualizeOptions(out=tmp_path / "out", video=False, memory=False))
    assert_not_blank(written[0], min_colors=30)


def test_episode_without_records_asks_the_simulator(explored: Path, tmp_path: Path) -> None:
    """An episode written before the navigable area and first-seen steps were recorded: the
    navigable area is asked of a simulator built from the run's config, and the steps are
    reconstructed from the poses."""
    recorded = build_topdown(load_episode(explored))
    copy = _copy_run(explored, tmp_path / "run")
    (copy / "navigable.npz").unlink()
    occupancy_path = copy / "memory" / "occupancy.npz"
    with np.load(occupancy_path) as npz:
        saved = {k: npz[k] for k in npz.files if k != "first_seen"}
    np.savez_compressed(occupancy_path, **saved)
    episode = load_episode(copy)
    assert episode.problems == [] and episode.navigable is None and episode.first_seen is None
    topdown = build_topdown(episode)
    assert topdown.notes == []
    assert np.array_equal(topdown.navigable, recorded.navigable)
    assert np.array_equal(topdown.state_at(topdown.last_step) != UNKNOWN, topdown.state != UNKNOWN)
    seen_area = [np.count_nonzero(topdown.first_seen <= s) for s in (0, 10, 20, 30)]
    assert seen_area == sorted(seen_area) and seen_area[0] > 0


def test_re_rendered_views_are_the_views_the_agent_saw(explored: Path) -> None:
    """Views re-rendered through the simulator at the recorded poses match the frames the
    episode saved (same size here: 120 x 90 is under the re-rendering's limit)."""
    episode = load_episode(explored)
    saved = EgocentricFrames(episode, build_topdown(episode))
    unsaved = load_episode(explored)
    unsaved.frames = {}
    rendered = EgocentricFrames(unsaved, build_topdown(unsaved))
    assert rendered.source == "re-rendered from the scene"
    try:
        for index in (0, 7, 19, 30, 12):  # backwards too
            a, b = saved.frame(index), rendered.frame(index)
            assert a is not None and b is not None and a.shape == b.shape
            assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0, index
    finally:
        rendered.close()


def test_re_rendered_views_follow_the_camera_tilt(explored: Path, tmp_path: Path) -> None:
    """``look_down`` / ``look_up`` steps tilt the re-rendered camera as they tilted the agent's."""
    from aeqa.envs.simulator import make_simulator
    from aeqa.envs.types import LOOK_DOWN, LOOK_UP

    copy = _copy_run(explored, tmp_path / "run")
    shutil.rmtree(copy / "frames")
    record = json.loads((copy / "episode.json").read_text())
    pose = {"position": record["start_position"], "rotation": record["start_rotation"]}
    actions = [LOOK_DOWN, LOOK_DOWN, LOOK_UP]
    steps = [{"step": i + 1, "action": a, "collided": False, **pose} for i, a in enumerate(actions)]
    (copy / "trajectory.json").write_text(json.dumps(steps))
    episode = load_episode(copy)
    rendered = EgocentricFrames(episode, build_topdown(episode))
    sim = make_simulator(episode.config.sim)
    try:
        start = AgentState(np.array(pose["position"]), np.array(pose["rotation"]))
        expected = [sim.reset(record["scene"], start).rgb]
        expected += [sim.step(action).rgb for action in actions]
        for index in (1, 2, 3, 0, 2):
            view = rendered.frame(index)
            assert view is not None
            assert np.abs(view.astype(int) - expected[index].astype(int)).mean() < 1.0, index
        assert np.abs(expected[2].astype(int) - expected[0].astype(int)).mean() > 5.0
    finally:
        sim.close()
        rendered.close()

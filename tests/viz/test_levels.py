"""The top-down map of an episode in a split-level house: one panel per floor level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.scenegen import generate_scene
from aeqa.envs.types import NavigableGrid
from aeqa.viz.data import load_episode
from aeqa.viz.topdown import build_topdown, level_of_points, topdown_figure
from aeqa.viz.visualize import VisualizeOptions, visualize
from tests.viz.conftest import SMALL, assert_not_blank


@pytest.fixture(scope="module")
def split_episode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``aeqa explore`` (5 steps) in a generated split-level house."""
    from aeqa.launch.cli import main

    scene = generate_scene(tmp_path_factory.mktemp("split"), "split", seed=3, size="split-level")
    out = tmp_path_factory.mktemp("explored_split")
    code = main(
        [
            "explore",
            "--scene",
            str(scene),
            "--question",
            "What color is the sofa?",
            "--max-steps",
            "5",
            "--out",
            str(out),
            *SMALL,
        ]
    )
    assert code == 0
    return out / "episodes" / "explore"


@pytest.mark.slow
def test_split_level_map_has_a_panel_per_floor(split_episode: Path, tmp_path: Path) -> None:
    navigable = NavigableGrid.load(split_episode / "navigable.npz")
    assert navigable.heights is not None and len(navigable.levels()) == 2
    episode = load_episode(split_episode)
    topdown = build_topdown(episode)
    assert len(topdown.level_heights) == 2 and topdown.level_of is not None
    # every navigable cell of each level is drawn on that level's panel
    for index, mask in enumerate(navigable.level_masks()):
        rows, cols = np.nonzero(mask)
        x = navigable.origin_x + (cols + 0.5) * navigable.cell_m
        z = navigable.origin_z + (rows + 0.5) * navigable.cell_m
        r = np.floor((z - topdown.grid.origin_z) / topdown.grid.cell_m).astype(int)
        c = np.floor((x - topdown.grid.origin_x) / topdown.grid.cell_m).astype(int)
        assert np.mean(topdown.level_of[r, c] == index) > 0.99
    assert episode.poses is not None
    assert np.all(level_of_points(topdown, episode.poses.positions) == 0)
    figure = topdown_figure(episode, topdown)
    titles = [ax.get_title(loc="right") for ax in figure.axes]
    assert sum(t.startswith("floor ") for t in titles) == 2
    written = visualize(split_episode, VisualizeOptions(out=tmp_path, video=False, memory=False))
    assert_not_blank(tmp_path / "topdown.png", min_colors=30)
    assert any(p.name == "topdown.png" for p in written)

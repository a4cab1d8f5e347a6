"""Fixtures of the visualisation tests: one explored episode with saved frames, one batch run
of 6 generated questions, both made once per session, and checks that a picture is not blank."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.questions import Question, generate_questions, write_questions

SMALL = ["sim.width=120", "sim.height=90", "coverage_samples=100"]


@pytest.fixture(scope="session")
def viz_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated apartment's basename."""
    return generate_scenes(tmp_path_factory.mktemp("viz_scenes"), 1, seed=3)[0]


@pytest.fixture(scope="session")
def explored(tmp_path_factory: pytest.TempPathFactory, viz_scene: Path) -> Path:
    """The episode folder of ``aeqa explore --save-frames`` (30 steps) about the sofa."""
    from aeqa.launch.cli import main

    out = tmp_path_factory.mktemp("explored")
    code = main(
        [
            "explore",
            "--scene",
            str(viz_scene),
            "--question",
            "What color is the sofa?",
            "--max-steps",
            "30",
            "--save-frames",
            "--out",
            str(out),
            *SMALL,
        ]
    )
    assert code == 0
    return out / "episodes" / "explore"


@pytest.fixture(scope="session")
def questions(
    tmp_path_factory: pytest.TempPathFactory, viz_scene: Path
) -> tuple[Path, list[Question]]:
    """6 generated questions about the scene, and their file (kept outside the run folder)."""
    generated = generate_questions([viz_scene], 6, seed=0)
    assert len(generated) == 6
    path = write_questions(tmp_path_factory.mktemp("questions") / "questions.json", generated)
    return path, generated


@pytest.fixture(scope="session")
def batch_run(
    tmp_path_factory: pytest.TempPathFactory, questions: tuple[Path, list[Question]]
) -> Path:
    """A batch run folder (``aeqa.evaluation.batch.run_batch``, one local worker, 20 steps)."""
    from aeqa.agents.episode import resolve_episode_config
    from aeqa.evaluation.batch import run_batch

    config = resolve_episode_config("discrete", "memory", [*SMALL, "explorer.max_steps=20"])
    out = tmp_path_factory.mktemp("run")
    summary = run_batch(questions[1], config, out, workers=1, progress=False)
    assert summary.finished == 6 and summary.failed == 0, summary.failures
    return out


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_not_blank(image: np.ndarray | Path, min_colors: int = 12) -> None:
    """A picture with content: varied pixels, much of it not background, many colours."""
    if not isinstance(image, np.ndarray):
        import imageio.v3 as iio

        image = np.asarray(iio.imread(image))
    rgb = np.asarray(image)[..., :3]
    assert rgb.ndim == 3 and rgb.shape[0] > 32 and rgb.shape[1] > 32, rgb.shape
    assert float(rgb.std()) > 15.0, f"flat picture (std {rgb.std():.1f})"
    content = np.any(rgb < 235, axis=2).mean()
    assert content > 0.05, f"only {100 * content:.1f}% of the picture differs from white"
    packed = rgb.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    colours = len(np.unique(packed))
    assert colours >= min_colors, f"only {colours} colours"

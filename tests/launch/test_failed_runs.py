"""A command that fails on a bad input before it has a result leaves no run folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.questions import Question, write_questions
from aeqa.launch.cli import main

SMALL = ["sim.width=96", "sim.height=72", "coverage_samples=100", "explorer.max_steps=5"]


def _run_folders(root: Path, command: str) -> list[Path]:
    """The ``outputs/<command>/<date>/<time>_<name>/`` folders under ``root``."""
    return sorted((root / "outputs" / command).glob("*/*"))


def test_evaluate_that_fails_before_an_episode_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = generate_scenes(tmp_path / "scenes", 1, seed=0)[0]
    question = Question(
        "q0", "What is on the table?", "mug", "object recognition", "generated/x", scene=str(scene)
    )
    questions = str(write_questions(tmp_path / "q.json", [question]))
    monkeypatch.chdir(tmp_path)
    # Refused before a worker starts (a scenes root that is not there), in the default folder.
    argv = ["evaluate", "--questions", questions, "--no-progress"]
    assert main([*argv, "--scenes-root", str(tmp_path / "no-hm3d"), *SMALL]) == 2
    assert "scenes root does not exist" in capsys.readouterr().err
    assert _run_folders(tmp_path, "evaluate") == []
    # Refused by the workers (an answering head they cannot build), in a folder of --out.
    out = tmp_path / "run"
    bad_head = [*SMALL, "answerer.type=openai", "answerer.base_url=ftp://nowhere"]
    assert main([*argv, "--out", str(out), *bad_head]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not an http(s) URL" in err[-1]
    assert not out.exists()
    # Where --out was there already, it keeps what it held and gets nothing new.
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main([*argv, "--out", str(out), *bad_head]) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_explore_that_fails_before_an_episode_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["explore", "--scene", str(tmp_path / "nowhere" / "scene.glb")]
    assert main([*argv, *SMALL]) == 2
    assert "scene.glb" in capsys.readouterr().err
    assert _run_folders(tmp_path, "explore") == []
    out = tmp_path / "bad"
    assert main([*argv, "--out", str(out), *SMALL]) == 2
    assert not out.exists()

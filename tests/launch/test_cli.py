"""The ``aeqa`` command line end to end: explore, scenes, bench, and its bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aeqa.launch.cli import main

SMALL = ["sim.width=96", "sim.height=72", "coverage_samples=200"]


def _explore(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    code = main(["explore", "--max-steps", "25", "--seed", "1", "--out", str(out), *extra, *SMALL])
    assert code == 0
    return out


def test_explore_writes_the_episode_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _explore(tmp_path, "run", "--question", "How many sofas are there?")
    printed = capsys.readouterr().out
    assert "answer:" in printed
    episode = out / "episodes" / "explore"
    result = json.loads((episode / "episode.json").read_text())
    assert result["steps"] == 25 and result["stop_reason"] == "budget"
    assert result["answer"]
    assert 0.0 <= result["coverage"] <= 1.0
    assert (out / "config.yaml").read_text().count("seed: 1") >= 1
    assert (episode / "memory" / "points.ply").is_file()
    trajectory = json.loads((episode / "trajectory.json").read_text())
    assert len(trajectory) == 25


def test_same_seed_same_trajectory_and_answer(tmp_path: Path) -> None:
    first = _explore(tmp_path, "a") / "episodes" / "explore"
    second = _explore(tmp_path, "b") / "episodes" / "explore"
    assert (first / "trajectory.json").read_text() == (second / "trajectory.json").read_text()
    a = json.loads((first / "episode.json").read_text())
    b = json.loads((second / "episode.json").read_text())
    assert a["answer"] == b["answer"] and a["confidence"] == b["confidence"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--answerer", "nosuch"], "unknown answerer preset 'nosuch'"),
        (["--question", "   "], "the question is empty"),
        (["--question", "x" * 10_000], "10000 characters long"),
        (["--start-position", "50", "0", "50"], "not on the navigable area"),
        (["--scene", "/nowhere/scene.glb"], "scene.glb"),
        (["explorer.bogus=1"], "Key 'bogus' not in"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["explore", "--max-steps", "3", "--out", str(tmp_path / "bad"), *args, *SMALL])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1


def test_scenes_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenes", "generate", "--out", str(tmp_path), "--count", "2", "--seed", "4"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2
    for base in printed:
        for suffix in (
            ".glb",
            ".semantic.glb",
            ".semantic.txt",
            ".stage_config.json",
            ".scene.json",
        ):
            assert Path(base + suffix).is_file()
    assert main(["scenes", "generate", "--out", str(tmp_path), "--count", "0"]) == 2


def test_scenes_generate_houses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["scenes", "generate", "--out", str(tmp_path), "--size", "house", "--seed", "4"]
    assert main(argv) == 0
    (base,) = capsys.readouterr().out.split()
    assert Path(base).name == "house_000"
    truth = json.loads(Path(base + ".scene.json").read_text(encoding="utf-8"))
    assert truth["generator"]["size"] == "house"
    assert 10 <= len(truth["regions"]) <= 25
    with pytest.raises(SystemExit):
        main(["scenes", "generate", "--out", str(tmp_path), "--size", "castle"])


def test_bench_sim_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--json", "--frames", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("renderer", "fps", "renderers", "raw_fps", "ratio"):
        assert key in result
    assert result["renderers"]["raycast"] > 0 and result["raw_fps"] > 0


def test_bench_mapping_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "mapping", "--json", "--frames", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("fps", "points_per_s", "raw_points_per_s", "ratio", "points", "bound"):
        assert key in result
    assert result["points"] <= result["bound"] * 1.01


def test_questions_generate_writes_a_question_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenes", "generate", "--out", str(tmp_path / "scenes"), "--count", "2"]) == 0
    out = tmp_path / "questions.json"
    argv = ["questions", "generate", "--scenes", str(tmp_path / "scenes"), "--out", str(out)]
    assert main([*argv, "--per-scene", "7", "--seed", "3"]) == 0
    assert "14 questions over 7 categories" in capsys.readouterr().out
    questions = json.loads(out.read_text())
    assert len(questions) == 14 and len({q["question_id"] for q in questions}) == 14
    assert all(q["scene"] and q["answer"] and len(q["position"]) == 3 for q in questions)
    first = out.read_bytes()
    assert main([*argv, "--per-scene", "7", "--seed", "3"]) == 0
    assert out.read_bytes() == first


def test_questions_generate_without_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["questions", "generate", "--scenes", str(tmp_path), "--out", str(tmp_path / "q.json")]
    assert main(argv) == 2
    assert "no generated scene" in capsys.readouterr().err

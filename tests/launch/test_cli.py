"""The ``aeqa`` command line end to end: explore, scenes, bench, and its bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from aeqa.envs.errors import AeqaError
from aeqa.envs.meshsim.renderer import egl_device
from aeqa.envs.scenegen import generate_scene
from aeqa.evaluation.questions import generate_questions, write_questions
from aeqa.launch.cli import main
from tests.scenes import box_room_boxes

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
    assert "answer:" in printed and "answering head: 1 call (" in printed
    episode = out / "episodes" / "explore"
    result = json.loads((episode / "episode.json").read_text())
    assert result["steps"] == 25 and result["stop_reason"] == "budget"
    assert result["answer"]
    assert 0.0 <= result["coverage"] <= 1.0
    assert (out / "config.yaml").read_text().count("seed: 1") >= 1
    # The renderer that drew, not ``auto``: raster wherever EGL works (llvmpipe included).
    renderer = "raster" if egl_device() is not None else "raycast"
    assert f"renderer: {renderer}" in (out / "config.yaml").read_text()
    assert result["renderer"] == renderer
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
        (["sim.width=-5"], "sim.width=-5 is out of range; use a value from 1 to 8192"),
        (["sim.width=0"], "sim.width=0 is out of range"),
        (["sim.hfov_deg=0"], "sim.hfov_deg=0.0 is out of range; use a value in (0, 180)"),
        (["memory.voxel_m=0"], "memory.voxel_m=0.0 is out of range; use a value above 0"),
        (["--seed", "-1"], "--seed -1 is out of range; use a value of at least 0, e.g. --seed 0"),
        (["--max-steps", "-1"], "--max-steps -1 is out of range; use a value of at least 1"),
        (["--max-steps", "0"], "--max-steps 0 is out of range"),
        (["explorer.score"], "bad override 'explorer.score': expected key=value"),
        (["--preset", "mine.yaml"], "--sim-preset FILE and --agent-preset FILE"),
        (["--sim-preset", "/nowhere/sim.yaml"], "no such sim preset file"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "bad"
    code = main(["explore", "--max-steps", "3", "--out", str(out), *SMALL, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["sim.width=-5"],
        ["--question", "Where is the sofa?", "--scene", "/nowhere/scene.glb"],
        ["--question", "Where is the sofa?", "--start-position", "50", "0", "50"],
    ],
)
def test_bad_input_leaves_no_run_folder_in_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "--max-steps", "3", *SMALL, *args]) == 2
    leftovers = [p for p in (tmp_path / "outputs").rglob("*") if not p.is_dir()]
    assert leftovers == []
    assert not list((tmp_path / "outputs").rglob("*_*"))  # no <time>_<name> run folder


def _unwritable_folder(tmp_path: Path) -> Path:
    if Path("/proc/self").is_dir():
        return Path("/proc")  # not writable even by root
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def _command_with_out(command: str, tmp_path: Path, out: Path) -> list[str]:
    if command == "explore":
        return ["explore", "--max-steps", "3", "--out", str(out), *SMALL]
    if command == "evaluate":
        questions = tmp_path / "questions.json"
        questions.write_text("[]")
        return ["evaluate", "--questions", str(questions), "--out", str(out)]
    return ["visualize", str(tmp_path), "--out", str(out)]


@pytest.mark.parametrize("command", ["explore", "evaluate", "visualize"])
@pytest.mark.parametrize("where", ["file", "inside a file", "unwritable", "inside unwritable"])
def test_out_that_cannot_be_written_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, where: str
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    out = {
        "file": a_file,
        "inside a file": a_file / "run",
        "unwritable": _unwritable_folder(tmp_path),
        "inside unwritable": _unwritable_folder(tmp_path) / "run",
    }[where]
    argv = _command_with_out(command, tmp_path, out)
    before = sorted(tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"aeqa: error: --out {out}: ")
    assert ("not a folder" if "file" in where else "cannot write in") in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="/proc: a folder nobody can write")
@pytest.mark.parametrize("command", ["explore", "evaluate"])
def test_default_run_folder_that_cannot_be_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    argv = _command_with_out(command, tmp_path, tmp_path)
    argv = argv[: argv.index("--out")] + argv[argv.index("--out") + 2 :]
    if command == "evaluate":
        questions = tmp_path / "questions.json"
        write_questions(
            questions, generate_questions([generate_scene(tmp_path, "a", seed=0)], 1, 0)
        )
    monkeypatch.chdir("/proc")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"aeqa: error: cannot create the run folder outputs/{command}/")
    assert err.endswith("run from a folder you can write to, or give --out")


def test_debug_works_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AeqaError, match=r"sim\.width=-5 is out of range"):
        main(["explore", "--debug", *SMALL, "sim.width=-5"])
    with pytest.raises(AeqaError, match="--frames 0 is out of range"):
        main(["bench", "sim", "--frames", "0", "--debug"])
    with pytest.raises(AeqaError, match="--seed -1 is out of range"):
        main(["--debug", "explore", "--seed", "-1"])
    assert main(["explore", "-v", "--seed", "-1"]) == 2
    assert "--seed -1" in capsys.readouterr().err


def test_evaluate_refuses_a_negative_seed_and_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text("[]")
    out = tmp_path / "run"
    for option, value in (("--seed", "-1"), ("--max-steps", "0")):
        argv = ["evaluate", "--questions", str(questions), "--out", str(out), option, value]
        assert main(argv) == 2
        assert f"{option} {value} is out of range" in capsys.readouterr().err
        assert not out.exists()


def test_score_refuses_scores_off_the_scale_and_a_bad_temperature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(
        json.dumps(
            [
                {
                    "question_id": "q1",
                    "question": "What color is the sofa?",
                    "answer": "red",
                    "category": "attribute recognition",
                    "episode_history": "generated/x",
                }
            ]
        )
    )
    scores = tmp_path / "scores.json"
    scores.write_text('{"q1": 7}')
    assert main(["score", "--questions", str(questions), "--scores", str(scores)]) == 2
    assert "the scores of q1 are outside 1 to 5 (e.g. 7)" in capsys.readouterr().err
    predictions = tmp_path / "predictions.json"
    predictions.write_text('[{"question_id": "q1", "answer": "red"}]')
    argv = ["score", "--questions", str(questions), "--predictions", str(predictions)]
    assert main([*argv, "--judge-temperature", "-5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "aeqa: error: --judge-temperature -5.0 is out of range; use a value from 0 to 2, "
        "e.g. --judge-temperature 0.2"
    )
    assert (tmp_path / "scores.json").read_text() == '{"q1": 7}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "predictions.json",
        "questions.json",
        "scores.json",
    ]


def test_explore_asks_about_an_object_of_the_generated_scene(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _explore(tmp_path, "run")
    printed = capsys.readouterr().out
    question = json.loads((out / "episodes" / "explore" / "episode.json").read_text())["question"]
    truth = json.loads((out / "scene" / "apartment.scene.json").read_text())
    assert question.startswith("What color is the ")
    assert any(f"the {o['category']}" in question.lower() for o in truth["objects"])
    reference = next(line for line in printed.splitlines() if line.startswith("reference:"))
    assert reference.split()[1] in {o["color_name"] for o in truth["objects"]}
    # Kept as a batch run keeps its questions, for aeqa visualize's title and judge score.
    (kept,) = json.loads((out / "questions.json").read_text())
    assert kept["question_id"] == "explore" and kept["question"] == question
    assert kept["answer"] == reference.split()[1]
    # Another question into the same folder: no stale reference is left for it.
    _explore(tmp_path, "run", "--question", "Is there a bed?")
    assert not (out / "questions.json").exists()


@pytest.mark.slow
def test_the_default_episode_answers_its_default_question(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``aeqa explore`` with nothing but --out: the generated apartment's default question,
    answered right by the offline head after the whole default episode."""
    assert main(["explore", "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["question"].startswith("What color is the ")
    assert result["stop_reason"] == "explored"
    assert result["answer"] == result["reference"]


def test_explore_json_prints_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _explore(tmp_path, "run", "--json")
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["steps"] == 25 and result["outputs"] == str(out)
    assert result["reference"] and result["question"].startswith("What color is the ")
    assert captured.err == ""


def test_explore_a_scene_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder holding one scene is that scene; one holding several is refused by name."""
    generate_scene(tmp_path / "one", "flat", seed=2)
    out = _explore(tmp_path, "run", "--scene", str(tmp_path / "one"))
    episode = json.loads((out / "episodes" / "explore" / "episode.json").read_text())
    assert episode["scene"] == str(tmp_path / "one" / "flat.glb")
    assert "reference:" in capsys.readouterr().out
    generate_scene(tmp_path / "one", "other", seed=3)
    code = main(["explore", "--scene", str(tmp_path / "one"), "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "a folder of 2 scenes (flat.glb, other.glb); give one scene file" in err
    assert not (tmp_path / "x").exists()


def test_explore_needs_a_question_where_the_scene_has_no_ground_truth(
    tmp_path: Path, box_room: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--scene", f"{box_room}.glb", "--out", str(tmp_path / "run"), *SMALL]
    assert main(argv) == 2
    assert "--question is needed" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_explore_with_a_sim_preset_file(tmp_path: Path) -> None:
    sim_file = tmp_path / "tiny.yaml"
    sim_file.write_text("width: 48\nheight: 36\nhfov_deg: 100\n")
    out = tmp_path / "run"
    argv = ["explore", "--max-steps", "5", "--out", str(out), "--sim-preset", str(sim_file)]
    assert main([*argv, "coverage_samples=100"]) == 0
    config = (out / "config.yaml").read_text()
    assert "width: 48" in config and "hfov_deg: 100.0" in config
    assert "max_steps: 5" in config


def _run_on_a_terminal(argv: list[str], cwd: Path) -> str:
    """What ``aeqa ARGV`` shows on a 100-column terminal (stdout and stderr)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    command = [sys.executable, "-m", "aeqa.launch.cli", *argv]
    with subprocess.Popen(command, cwd=cwd, stdout=follower, stderr=follower) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=120)
    os.close(leader)
    assert process.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
def test_explore_shows_progress_on_a_terminal_and_not_with_json(tmp_path: Path) -> None:
    argv = ["explore", "--max-steps", "12", "--out", "run", *SMALL]
    shown = _run_on_a_terminal(argv, tmp_path)
    assert "exploring:" in shown and "12/12" in shown and "coverage" in shown
    assert "step/s" in shown and "question: What color is the " in shown
    quiet = _run_on_a_terminal([*argv[: -len(SMALL)], "--json", *SMALL], tmp_path)
    assert "exploring" not in quiet and "step/s" not in quiet
    assert json.loads(quiet.strip())["steps"] == 12


def test_bench_sim_a_y_up_mesh_with_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Y-up glb (not habitat's Z-up default) is benchmarked upright with --up y, at the
    camera the overrides give."""
    meshes = []
    for box in box_room_boxes():
        lo, hi = np.array(box.lo), np.array(box.hi)
        mesh = trimesh.creation.box(extents=hi - lo)
        mesh.apply_translation((lo + hi) / 2.0)
        meshes.append(mesh)
    path = tmp_path / "room_y_up.glb"
    trimesh.util.concatenate(meshes).export(path)
    argv = ["bench", "sim", "--scene", str(path), "--frames", "2", "--json"]
    assert main([*argv, "--up", "y", "sim.width=48", "sim.height=32", "hfov_deg=100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["width"], result["height"], result["hfov_deg"]) == (48, 32, 100.0)
    assert result["renderers"]["raycast"] > 0
    assert main([*argv, "sim.width"]) == 2
    assert "bad override 'width': expected key=value" in capsys.readouterr().err


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
    assert main(["bench", "mapping", "--frames", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--frames 1 or more" in err and len(err.splitlines()) == 1


def test_bench_explore_refuses_a_baseline_budget_below_the_explorers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "explore", "--baseline-steps", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "(100 steps)" in err and "--baseline-steps" in err and len(err.splitlines()) == 1


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

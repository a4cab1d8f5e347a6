"""Batch evaluation: the crash-safe results log, kill-and-resume, failures that stay with their
episode, the Ray engine, worker-count independence, the throughput benchmark and bad inputs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aeqa.agents.episode import EpisodeConfig, EpisodeResult, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.batch import episode_dir_name, failed_result, plan_batch, run_batch
from aeqa.evaluation.bench import bench_batch
from aeqa.evaluation.questions import Question, generate_questions, write_questions
from aeqa.evaluation.results import ResultsLog, write_predictions
from aeqa.launch.cli import main as aeqa_main
from aeqa.launch.config import save_config
from aeqa.launch.evaluate_command import register

ROOT = Path(__file__).resolve().parents[2]
FAST = ["sim.width=96", "sim.height=72", "explorer.max_steps=15", "coverage_samples=100"]
#: what must not change with worker count, order or resuming (wall times may)
SCORED = ("answer", "confidence", "stop_reason", "steps", "path_length_m", "coverage", "error")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_scenes(tmp_path_factory.mktemp("scenes"), 4, seed=0)


@pytest.fixture(scope="module")
def config() -> EpisodeConfig:
    return resolve_episode_config("discrete", "memory", FAST)


@pytest.fixture(scope="module")
def twelve(scenes: list[Path]) -> list[Question]:
    """12 questions over 3 scenes."""
    questions = generate_questions(scenes[:3], 4, seed=0)
    assert len(questions) == 12
    return questions


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, twelve: list[Question], config: EpisodeConfig
) -> Path:
    """An uninterrupted run of the 12 questions on 2 local workers."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_batch(twelve, config, out, workers=2, progress=False)
    assert summary.finished == 12 and summary.failed == 0, summary.failures
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _scored(run: Path) -> dict[str, tuple[Any, ...]]:
    return {r["question_id"]: tuple(r[k] for k in SCORED) for r in _lines(run / "results.jsonl")}


def _result(qid: str, answer: str = "a") -> EpisodeResult:
    q = Question(qid, "What is it?", answer, "object recognition", "generated/x")
    record = failed_result(q, "scene", "x")
    record.answer, record.error = answer, None
    return record


# --- the results log -------------------------------------------------------------------------


def test_results_log_survives_a_torn_line_and_never_duplicates(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    assert log.records() == [] and log.finished_ids() == set()
    assert log.append(_result("q1")) and log.append(_result("q2"))
    # A crash mid-write leaves a torn last line without its newline.
    with open(log.path, "ab") as f:
        f.write(b'{"question_id": "q3", "answ')
    assert [r.question_id for r in log.records()] == ["q1", "q2"]
    assert ResultsLog(log.path).finished_ids() == {"q1", "q2"}
    fresh = ResultsLog(log.path)
    assert fresh.append(_result("q3", "b"))
    assert not fresh.append(_result("q1", "other"))  # already recorded: not written again
    text = log.path.read_text()
    assert text.endswith("\n") and "answ\n" not in text
    assert [r["question_id"] for r in _lines(log.path)] == ["q1", "q2", "q3"]
    # A duplicate written by someone else: the first record wins.
    with open(log.path, "a") as f:
        f.write(json.dumps({**_result("q2", "late").to_json()}) + "\n")
    records = {r.question_id: r.answer for r in ResultsLog(log.path).records()}
    assert records == {"q1": "a", "q2": "a", "q3": "b"}


def test_predictions_leave_out_failed_episodes(tmp_path: Path) -> None:
    q = Question("bad", "What is it?", "x", "object recognition", "generated/x")
    path = write_predictions(
        tmp_path / "predictions.json", [_result("ok"), failed_result(q, "", "boom")]
    )
    assert json.loads(path.read_text()) == [{"question_id": "ok", "answer": "a"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.json"]  # no temp file


def test_plan_groups_by_scene_in_a_fixed_order(twelve: list[Question]) -> None:
    groups, unrunnable = plan_batch(list(reversed(twelve)))
    assert not unrunnable
    assert [g.scene for g in groups] == sorted(g.scene for g in groups)
    assert len(groups) == 3 and all(len(g.items) == 4 for g in groups)
    for g in groups:
        ids = [i.question.question_id for i in g.items]
        assert ids == sorted(ids) and {i.scene for i in g.items} == {g.scene}
    assert episode_dir_name("a/b\\..c") == "a%2Fb%5C..c"


# --- kill and resume -------------------------------------------------------------------------


def _evaluate_command(questions: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aeqa.launch.cli",
        "evaluate",
        "--questions",
        str(questions),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
        *extra,
        *FAST,
    ]


@pytest.mark.slow
def test_killed_batch_resumes_to_the_same_results(
    tmp_path: Path, twelve: list[Question], reference: Path
) -> None:
    questions = write_questions(tmp_path / "questions.json", twelve)
    out = tmp_path / "run"
    results = out / "results.jsonl"
    driver = subprocess.Popen(
        _evaluate_command(questions, out), cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and driver.poll() is None:
        if results.is_file() and results.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    assert driver.poll() is None, f"the batch ended before it could be killed: {driver.stderr}"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert driver.stderr is not None
    driver.stderr.close()
    done_before = len(_lines(results))
    assert 3 <= done_before < 12
    assert not (out / "summary.json").exists()
    # And as if the machine died mid-write: a torn last line.
    with open(results, "ab") as f:
        f.write(b'{"question_id": "apartment_0')

    resumed = subprocess.run(
        _evaluate_command(questions, out, "--resume"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "12 of 12 recorded" in resumed.stdout
    lines = _lines(results)
    ids = [r["question_id"] for r in lines]
    assert len(lines) == 12 and len(set(ids)) == 12
    assert results.read_bytes().endswith(b"\n")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == done_before and summary["ran"] == 12 - done_before
    assert summary["failed"] == 0
    assert _scored(out) == _scored(reference)
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions == json.loads((reference / "predictions.json").read_text())
    assert [p["question_id"] for p in predictions] == [q.question_id for q in twelve]
    for qid in ids:
        assert (out / "episodes" / episode_dir_name(qid) / "episode.json").is_file()
    assert (out / "config.yaml").read_text() == (reference / "config.yaml").read_text()


# --- failures stay with their episode --------------------------------------------------------


def test_a_failing_episode_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, twelve: list[Question], scenes: list[Path], config: EpisodeConfig
) -> None:
    good = twelve[:2]
    corrupt = tmp_path / "broken" / "apartment_000"
    corrupt.parent.mkdir()
    for path in scenes[0].parent.glob(f"{scenes[0].name}.*"):
        (corrupt.parent / path.name).write_bytes(path.read_bytes())
    corrupt.with_name("apartment_000.glb").write_bytes(b"glTF not really a mesh")
    broken = Question(
        "corrupt-scene",
        "What is on the table?",
        "mug",
        "object recognition",
        "generated/x",
        scene=str(corrupt),
        start_position=good[0].start_position,
        start_rotation=good[0].start_rotation,
    )
    missing = Question(
        "missing-scene",
        "What is on the table?",
        "mug",
        "object recognition",
        "generated/y",
        scene=str(tmp_path / "nowhere" / "apartment_009"),
    )
    bad_pose = Question(
        "bad-pose",
        "What is on the table?",
        "mug",
        "object recognition",
        "generated/x",
        scene=str(scenes[0]),
        start_position=[0.0, 0.0, 0.0],
        start_rotation=[2.0, 0.0, 0.0, 0.0],
    )
    out = tmp_path / "run"
    summary = run_batch([broken, *good, missing, bad_pose], config, out, progress=False)
    assert summary.finished == 5 and summary.succeeded == 2 and summary.failed == 3
    records = {r["question_id"]: r for r in _lines(out / "results.jsonl")}
    assert records["missing-scene"]["error"].startswith("scene not found")
    assert "apartment_009" in records["missing-scene"]["error"]
    assert records["corrupt-scene"]["error"] and records["corrupt-scene"]["answer"] == ""
    assert "unit quaternion" in records["bad-pose"]["error"]
    traceback_text = (out / "episodes" / "corrupt-scene" / "error.txt").read_text()
    assert "Traceback" in traceback_text
    for q in good:
        assert records[q.question_id]["error"] is None and records[q.question_id]["answer"]
        assert records[q.question_id]["model_calls"] == 1  # the answer, once explored
    predictions = json.loads((out / "predictions.json").read_text())
    assert [p["question_id"] for p in predictions] == [q.question_id for q in good]
    written = json.loads((out / "summary.json").read_text())
    assert written["mean_model_calls"] == 1.0 and written["mean_model_time_s"] >= 0.0
    assert {f["question_id"] for f in written["failures"]} == {
        "corrupt-scene",
        "missing-scene",
        "bad-pose",
    }


def test_an_episode_past_its_timeout_is_recorded(
    tmp_path: Path, twelve: list[Question], config: EpisodeConfig
) -> None:
    summary = run_batch(twelve[:2], config, tmp_path, episode_timeout_s=0.01, progress=False)
    assert summary.failed == 2
    assert all("timed out" in f.error for f in summary.failures)


def _worker_pids() -> list[int]:
    """This process's spawned worker processes (not multiprocessing's resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_episode_retried(
    tmp_path: Path, twelve: list[Question], config: EpisodeConfig, reference: Path
) -> None:
    out = tmp_path / "run"
    results = out / "results.jsonl"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = run_batch(twelve, config, out, workers=2, progress=False)
        except BaseException as e:  # reported below
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and thread.is_alive():
        if results.is_file() and results.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    victims = _worker_pids()
    assert victims, "no worker process found"
    os.kill(victims[0], signal.SIGKILL)
    thread.join(timeout=180)
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert summary.finished == 12 and summary.failed == 0
    assert _scored(out) == _scored(reference)


# --- Ray -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_with_two_workers_matches_the_local_run(
    tmp_path: Path, twelve: list[Question], config: EpisodeConfig, reference: Path
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'aeqa[ray]')")
    summary = run_batch(twelve, config, tmp_path, engine="ray", workers=2, progress=False)
    assert summary.finished == 12 and summary.failed == 0, summary.failures
    assert _scored(tmp_path) == _scored(reference)
    assert (tmp_path / "predictions.json").read_text() == (
        reference / "predictions.json"
    ).read_text()
    # The workers shipped each episode folder back to the driver.
    episode = tmp_path / "episodes" / twelve[0].question_id
    assert (episode / "episode.json").is_file() and (episode / "trajectory.json").is_file()


@pytest.mark.slow
def test_bench_evaluate_compares_worker_counts_on_one_batch(tmp_path: Path) -> None:
    result = bench_batch(
        questions=3, scenes=2, engines=("local",), overrides=FAST, out_dir=tmp_path
    )
    assert result["questions"] == 3 and result["failed"] == 0
    assert set(result["episodes_per_s"]["local"]) == {"1", "2"}
    assert result["speedup"]["local"] > 0 and result["identical_predictions"] is True
    assert (tmp_path / "local-2" / "predictions.json").is_file()


# --- bad input -------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aeqa")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["evaluate", *argv])


def test_a_scenes_root_that_does_not_exist(
    tmp_path: Path, twelve: list[Question], config: EpisodeConfig
) -> None:
    with pytest.raises(AeqaError, match="scenes root does not exist"):
        run_batch(twelve, config, tmp_path / "run", scenes_root=tmp_path / "no-hm3d")
    questions = write_questions(tmp_path / "q.json", twelve)
    args = _parse("--questions", str(questions), "--scenes-root", str(tmp_path / "no-hm3d"))
    with pytest.raises(AeqaError, match="no-hm3d: the scenes root does not exist"):
        args.handler(args)
    aeqa = Question("q", "Where is the mug?", "kitchen", "object localization", "00826-BFRyYbPCCPE")
    with pytest.raises(AeqaError, match="--scenes-root"):
        run_batch([aeqa], config, tmp_path / "run")


def test_resume_needs_an_existing_run(
    tmp_path: Path,
    twelve: list[Question],
    config: EpisodeConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    questions = str(write_questions(tmp_path / "q.json", twelve))
    args = _parse("--questions", questions, "--resume")
    with pytest.raises(AeqaError, match="--resume needs --out"):
        args.handler(args)
    empty = tmp_path / "empty"
    empty.mkdir()
    args = _parse("--questions", questions, "--resume", "--out", str(empty))
    with pytest.raises(AeqaError, match="no run to resume"):
        args.handler(args)
    assert aeqa_main(["evaluate", "--questions", questions, "--resume", "--out", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aeqa: error:") and "no run to resume" in err and "Traceback" not in err
    with pytest.raises(AeqaError, match="no run to resume"):
        run_batch(twelve, config, empty, resume=True)
    # A run folder of another config, and results without --resume.
    run = tmp_path / "run"
    save_config(config, run / "config.yaml")
    other = resolve_episode_config("discrete", "memory", [*FAST, "seed=7"])
    with pytest.raises(AeqaError, match="another config"):
        run_batch(twelve, other, run, resume=True)
    ResultsLog(run / "results.jsonl").append(_result(twelve[0].question_id))
    with pytest.raises(AeqaError, match="already holds results"):
        run_batch(twelve, config, run)
    with pytest.raises(AeqaError, match="unknown engine"):
        run_batch(twelve, config, tmp_path / "x", engine="dask")

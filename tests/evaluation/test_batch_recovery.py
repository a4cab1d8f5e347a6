"""Batch runs that lose nothing and refuse what they cannot do right: an answer that fails keeps
its exploration and is answered again from it, the exit code, resuming with other questions or
config, the run lock, episode folder names, broken result lines, the worker cap."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest

from aeqa.agents.episode import (
    AnswerError,
    Episode,
    EpisodeConfig,
    EpisodeSpec,
    resolve_episode_config,
    start_state,
    write_result,
)
from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.envs.simulator import make_simulator
from aeqa.evaluation.batch import failed_result, machine_cpus, plan_batch, run_batch
from aeqa.evaluation.questions import Question, generate_questions, load_questions, write_questions
from aeqa.evaluation.results import (
    ResultsLog,
    RunLock,
    episode_dir_name,
    question_id_from_dir_name,
)
from aeqa.evaluation.scoring import load_results
from aeqa.launch.cli import main as aeqa_main
from aeqa.viz.report import collect_rows
from tests.chat_server import ChatServer, Reply

FAST = ["sim.width=96", "sim.height=72", "explorer.max_steps=15", "coverage_samples=100"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scenes(tmp_path_factory.mktemp("scenes"), 1, seed=0)[0]


@pytest.fixture(scope="module")
def two(scene: Path) -> list[Question]:
    """Two questions about ``scene``, with ids that older folder names mixed up."""
    questions = generate_questions([scene], 2, seed=0)
    return [replace(q, question_id=qid) for q, qid in zip(questions, ("x/1", "x_1"), strict=True)]


@pytest.fixture(scope="module")
def config() -> EpisodeConfig:
    return resolve_episode_config("discrete", "memory", FAST)


def _openai_config(server: ChatServer) -> EpisodeConfig:
    return resolve_episode_config(
        "discrete",
        "openai",
        [
            *FAST,
            f"answerer.base_url={server.base_url}",
            "answerer.model=gpt-test",
            "answerer.api_key=sk-test-0123456789",
            "answerer.max_retries=0",
            "answerer.max_images=1",
            "answerer.timeout_s=10",
        ],
    )


def _switchable(serve: Callable[[Callable[[int], Reply]], ChatServer]) -> tuple[ChatServer, dict]:
    """A chat server that fails with HTTP 500 while ``state["failing"]``, then answers."""
    state = {"failing": True}
    server = serve(lambda call: Reply(status=500) if state["failing"] else Reply())
    return server, state


def _missing(tmp_path: Path, count: int) -> list[Question]:
    """Questions whose scene is not there: recorded as failed without starting a worker."""
    return [
        Question(
            f"q{i}",
            "What is on the table?",
            "mug",
            "object recognition",
            "generated/gone",
            scene=str(tmp_path / "gone" / "apartment_000"),
        )
        for i in range(count)
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _files(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """The trajectory and memory files of an episode folder with their bytes and mtimes."""
    paths = [folder / "trajectory.json", *sorted((folder / "memory").rglob("*"))]
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths if p.is_file()}


# --- an answer that fails --------------------------------------------------------------------


def test_a_failed_answer_keeps_the_exploration_and_answers_again_without_the_simulator(
    tmp_path: Path, two: list[Question], serve: Callable
) -> None:
    server, state = _switchable(serve)
    config = _openai_config(server)
    q = two[0]
    spec = EpisodeSpec(
        q.question, q.scene, q.question_id, start_state(q.start_position, q.start_rotation)
    )
    out = tmp_path / "episode"
    sim = make_simulator(config.sim)
    try:
        with pytest.raises(AnswerError) as caught:
            Episode(sim, config).run(spec, out)
    finally:
        sim.close()
    failed = caught.value.result
    assert failed.error is not None and failed.error.startswith("AeqaError: chat endpoint")
    assert failed.steps == 15 and failed.path_length_m > 0 and failed.coverage > 0
    assert failed.stop_reason == "budget" and failed.answer == ""
    assert json.loads((out / "episode.json").read_text())["error"] == failed.error
    saved = _files(out)
    assert (out / "memory" / "memory.json") in saved

    state["failing"] = False
    # A simulator that never loaded a scene: answering again must not need one.
    fresh = make_simulator(config.sim)
    try:
        result = Episode(fresh, config).reanswer(spec, out)
    finally:
        fresh.close()
    assert (result.answer, result.confidence, result.error) == ("red", 0.9, None)
    kept = ("steps", "path_length_m", "coverage", "seen_area_m2", "stop_reason")
    assert all(getattr(result, k) == getattr(failed, k) for k in kept)
    assert result.wall_time_s["explore"] == failed.wall_time_s["explore"]
    assert _files(out) == saved
    assert json.loads((out / "episode.json").read_text())["answer"] == "red"


@pytest.mark.slow
def test_retry_failed_answers_again_from_the_saved_exploration(
    tmp_path: Path, two: list[Question], serve: Callable
) -> None:
    server, state = _switchable(serve)
    config = _openai_config(server)
    off_floor = replace(two[0], question_id="off-floor", start_position=[50.0, 0.0, 50.0])
    questions = [*two, off_floor]
    out = tmp_path / "run"
    first = run_batch(questions, config, out, progress=False)
    assert first.failed == 3
    before = {r["question_id"]: r for r in _lines(out / "results.jsonl")}
    saved = {}
    for q in two:
        record = before[q.question_id]
        assert "chat endpoint" in record["error"] and record["answer"] == ""
        assert record["steps"] == 15 and record["path_length_m"] > 0 and record["coverage"] > 0
        folder = out / "episodes" / episode_dir_name(q.question_id)
        assert (folder / "error.txt").is_file()
        saved[q.question_id] = _files(folder)
    assert before["off-floor"]["steps"] == 0  # failed before exploring: nothing saved

    state["failing"] = False
    calls = server.calls
    second = run_batch(questions, config, out, resume=True, retry_failed=True, progress=False)
    assert (second.ran, second.resumed, second.failed) == (3, 0, 1)
    after = {r["question_id"]: r for r in _lines(out / "results.jsonl")}
    for q in two:
        old, new = before[q.question_id], after[q.question_id]
        assert (new["answer"], new["error"]) == ("red", None)
        kept = ("steps", "path_length_m", "coverage", "stop_reason")
        assert [new[k] for k in kept] == [old[k] for k in kept]
        assert new["wall_time_s"]["explore"] == old["wall_time_s"]["explore"]
        folder = out / "episodes" / episode_dir_name(q.question_id)
        assert _files(folder) == saved[q.question_id]  # not explored again
    assert server.calls == calls + 2  # one answer each, no exploring
    # Failed before exploring: run again in full (and fails again).
    assert "not on the navigable area" in after["off-floor"]["error"]
    retried = _lines(out / "results.retried.jsonl")
    assert sorted(r["question_id"] for r in retried) == ["off-floor", "x/1", "x_1"]
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions == [
        {"question_id": "x/1", "answer": "red"},
        {"question_id": "x_1", "answer": "red"},
    ]


@pytest.mark.slow
def test_ray_retry_failed_answers_again_and_caps_workers(
    tmp_path: Path, two: list[Question], serve: Callable
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'aeqa[ray]')")
    server, state = _switchable(serve)
    config = _openai_config(server)
    out = tmp_path / "run"
    first = run_batch(two[:1], config, out, engine="ray", workers=10_000, progress=False)
    assert first.failed == 1 and first.workers == machine_cpus()
    folder = out / "episodes" / episode_dir_name(two[0].question_id)
    trajectory = (folder / "trajectory.json").read_bytes()
    state["failing"] = False
    calls = server.calls
    second = run_batch(
        two[:1], config, out, engine="ray", resume=True, retry_failed=True, progress=False
    )
    assert second.failed == 0 and server.calls == calls + 1
    record = _lines(out / "results.jsonl")[0]
    assert record["answer"] == "red" and record["steps"] == 15
    assert (folder / "trajectory.json").read_bytes() == trajectory


# --- exit code -------------------------------------------------------------------------------


def test_evaluate_exits_non_zero_when_an_episode_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = write_questions(tmp_path / "q.json", _missing(tmp_path, 2))
    out = tmp_path / "run"
    argv = ["evaluate", "--questions", str(questions), "--out", str(out), "--no-progress"]
    assert aeqa_main([*argv, *FAST]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("aeqa:")]
    assert len(err) == 1 and "2 of 2 episodes failed" in err[0] and "--retry-failed" in err[0]
    assert len(_lines(out / "results.jsonl")) == 2
    assert json.loads((out / "predictions.json").read_text()) == []
    assert json.loads((out / "summary.json").read_text())["failed"] == 2


# --- resuming another run, two runs at once --------------------------------------------------


def test_resume_refuses_another_question_set_or_config(
    tmp_path: Path, config: EpisodeConfig
) -> None:
    questions = _missing(tmp_path, 3)
    out = tmp_path / "run"
    run_batch(questions, config, out, progress=False)
    stored = (out / "questions.json").read_bytes()
    with pytest.raises(
        AeqaError, match=r"another question set \(1 of its 3 questions not given: q2\)"
    ):
        run_batch(questions[:2], config, out, resume=True, progress=False)
    reworded = [replace(questions[0], question="What is under the table?"), *questions[1:]]
    with pytest.raises(AeqaError, match=r"question q0 differs in question.*another --out") as e:
        run_batch(reworded, config, out, resume=True, progress=False)
    assert "\n" not in str(e.value)
    other = resolve_episode_config("discrete", "memory", [*FAST, "seed=7"])
    with pytest.raises(AeqaError, match=r"another config \(seed: 0 -> 7\)"):
        run_batch(questions, other, out, resume=True, progress=False)
    assert (out / "questions.json").read_bytes() == stored
    assert run_batch(questions, config, out, resume=True, progress=False).resumed == 3


def test_a_second_batch_on_one_run_folder_is_refused(
    tmp_path: Path, config: EpisodeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = _missing(tmp_path, 1)
    path = write_questions(tmp_path / "q.json", questions)
    out = tmp_path / "run"
    with RunLock(out):
        with pytest.raises(AeqaError, match=rf"another batch \(process {os.getpid()} on "):
            run_batch(questions, config, out, progress=False)
        argv = ["evaluate", "--questions", str(path), "--out", str(out), "--no-progress"]
        assert aeqa_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another batch" in err[0] and "another --out" in err[0]
        assert not (out / "results.jsonl").exists()
    assert not (out / "run.lock").exists()
    # A lock left by a process that is gone is taken over.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    (out / "run.lock").write_text(f"{socket.gethostname()} {gone.stdout.strip()}\n")
    assert run_batch(questions, config, out, progress=False).finished == 1
    assert not (out / "run.lock").exists()


# --- episode folder names --------------------------------------------------------------------


def test_episode_folder_names_are_unique_and_reversible() -> None:
    ids = ["x/1", "x_1", "x%2F1", "a b", "über", ".hidden", ".", "..", "a\\b", "q:1?"]
    names = [episode_dir_name(qid) for qid in ids]
    assert len(set(names)) == len(ids)
    for qid, name in zip(ids, names, strict=True):
        assert question_id_from_dir_name(name) == qid
        assert "/" not in name and "\\" not in name and not name.startswith(".")
    for plain in ("apartment_000-003", "5f7c1c3e-8b2a-4d3e-9f1a-2b3c4d5e6f70", "a.b_c-D"):
        assert episode_dir_name(plain) == plain
    with pytest.raises(AeqaError, match="shorten the ids"):
        episode_dir_name("x" * 300)


def test_the_report_reads_episode_folders_by_the_same_names(tmp_path: Path) -> None:
    run = tmp_path / "run"
    log = ResultsLog(run / "results.jsonl")
    for qid in ("x/1", "x_1"):
        q = Question(qid, "What is it?", "mug", "object recognition", "generated/x")
        record = replace(failed_result(q, "scene", "x"), answer=f"answer of {qid}", error=None)
        write_result(run / "episodes" / episode_dir_name(qid), record)
        assert log.append(record)
    (run / "episodes" / episode_dir_name("z/3")).mkdir()  # a folder without a results line
    rows, _ = collect_rows(run)
    assert {row.question_id: row.folder for row in rows} == {
        "x/1": run / "episodes" / "x%2F1",
        "x_1": run / "episodes" / "x_1",
        "z/3": run / "episodes" / "z%2F3",
    }
    for row in rows[:2]:
        assert row.folder is not None
        episode = json.loads((row.folder / "episode.json").read_text())
        assert episode["answer"] == f"answer of {row.question_id}"


# --- broken result lines ---------------------------------------------------------------------


def test_a_broken_results_line_is_moved_aside_on_resume(
    tmp_path: Path, config: EpisodeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    questions = _missing(tmp_path, 3)
    out = tmp_path / "run"
    run_batch(questions, config, out, progress=False)
    results = out / "results.jsonl"
    first, _, third = results.read_bytes().splitlines(keepends=True)
    broken = b'{"question_id": "q1", "ans\xff\n'
    results.write_bytes(first + broken + third)
    # Scoring reads the good lines and names the broken one.
    with caplog.at_level(logging.WARNING):
        outcomes = load_results(results)
    assert set(outcomes) == {"q0", "q2"} and "line 2" in caplog.text
    # Resuming moves it aside, keeps every good line and runs its question again.
    summary = run_batch(questions, config, out, resume=True, progress=False)
    assert (out / "results.jsonl.corrupt").read_bytes() == broken
    assert [r["question_id"] for r in _lines(results)] == ["q0", "q2", "q1"]
    assert results.read_bytes().startswith(first + third)
    assert (summary.finished, summary.resumed) == (3, 2)
    assert ResultsLog(results).repair() == 0  # nothing left to repair


# --- worker count ----------------------------------------------------------------------------


def test_more_workers_than_cpus_are_capped(
    tmp_path: Path, config: EpisodeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        summary = run_batch(_missing(tmp_path, 1), config, out, workers=10_000, progress=False)
    assert summary.workers == machine_cpus() <= (os.cpu_count() or 1)
    assert json.loads((out / "summary.json").read_text())["workers"] == machine_cpus()
    assert "10000 workers asked for" in caplog.text


# --- scene paths in question files -----------------------------------------------------------


def test_question_files_keep_scene_paths_relative_to_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    monkeypatch.chdir(made)
    assert aeqa_main(["scenes", "generate", "--out", "scenes", "--count", "1"]) == 0
    argv = ["questions", "generate", "--scenes", "scenes", "--out", "sets/questions.json"]
    assert aeqa_main([*argv, "--per-scene", "2"]) == 0
    stored = json.loads((made / "sets" / "questions.json").read_text())
    assert all(entry["scene"].startswith("../scenes/") for entry in stored)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_questions("../made/sets/questions.json")
    groups, unrunnable = plan_batch(loaded)
    assert not unrunnable and len(groups) == 1
    assert Path(groups[0].scene).parent == made / "scenes"
    # The file and its scenes moved together still load.
    (made).rename(tmp_path / "moved")
    moved = load_questions(tmp_path / "moved" / "sets" / "questions.json")
    assert all(Path(q.scene).parent == tmp_path / "moved" / "scenes" for q in moved)
    # An absolute path is taken as it is.
    entry = {**stored[0], "scene": str(scene)}
    (tmp_path / "absolute.json").write_text(json.dumps([entry]))
    assert load_questions(tmp_path / "absolute.json")[0].scene == str(scene)

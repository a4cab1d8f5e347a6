"""EM-EQA: questions answered from recorded episode histories (``aeqa evaluate --mode em``) on
the batch machinery of explored runs: the same answers and scores as the live run whose
episodes were exported, the ``hf`` / ``openai`` heads' keyframes, missing histories, modes
that must not mix, and the options that go together."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import pytest

from aeqa.agents.answerers.base import AnswererConfig
from aeqa.agents.em_episode import HistoryEpisode, HistorySpec
from aeqa.agents.episode import EpisodeConfig, EpisodeResult, resolve_episode_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import T_world_camera_from_agent, quat_from_yaw
from aeqa.envs.scenegen import generate_scenes
from aeqa.envs.types import AgentState, Observations
from aeqa.evaluation.batch import failed_result, run_batch
from aeqa.evaluation.em import plan_histories
from aeqa.evaluation.questions import Question, generate_questions, write_questions
from aeqa.evaluation.results import ResultsLog
from aeqa.launch.cli import main as aeqa_main
from aeqa.launch.config import save_config
from aeqa.mapping.history import HistorySidecar, HistoryWriter
from tests.chat_server import Reply

FAST = ["sim.width=96", "sim.height=72", "explorer.max_steps=15", "coverage_samples=100"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _question(qid: str, history: str) -> Question:
    return Question(qid, "What is on the wall?", "a painting", "object recognition", history)


def write_turning_history(folder: Path, frames: int = 10) -> Path:
    """A history without instance ids (as OpenEQA's): a camera 1.5 m up turning on the spot in
    a room whose floor and walls are flat colours per frame."""
    width, height, hfov = 32, 24, 90.0
    writer = HistoryWriter(
        folder,
        HistorySidecar("hm3d", width, height, hfov, camera_height_m=1.5, floor_y=0.0),
    )
    for step in range(frames):
        rotation = quat_from_yaw(2 * math.pi * step / frames)
        T = T_world_camera_from_agent(np.zeros(3), rotation, 1.5, -30.0)
        rgb = np.full((height, width, 3), (20 * step, 100, 200 - 10 * step), dtype=np.uint8)
        writer.write(
            Observations(
                rgb=rgb,
                depth=np.full((height, width), 2.0, dtype=np.float32),
                semantic=np.zeros((height, width), dtype=np.int32),
                T_world_camera=T,
                state=AgentState(np.zeros(3), rotation),
                hfov_deg=hfov,
            ),
            step,
        )
    writer.close()
    # OpenEQA's histories carry no sidecar
    (folder / "aeqa_history.json").unlink()
    return folder


# --- planning ------------------------------------------------------------------------------------


def test_histories_are_found_by_episode_history(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    (root / "hm3d-v0" / "000-hm3d-BFRyYbPCCPE").mkdir(parents=True)
    (root / "generated" / "apt").mkdir(parents=True)
    questions = [
        _question("a", "hm3d-v0/000-hm3d-BFRyYbPCCPE"),
        _question("b", "00826-BFRyYbPCCPE"),  # 3D-Mem's HM3D folder name: OpenEQA's history
        _question("c", "generated/apt"),
        _question("d", "scannet-v0/002-scannet-scene0709_00"),
    ]
    groups, missing = plan_histories(questions, root)
    assert [(g.scene, [i.question.question_id for i in g.items]) for g in groups] == [
        (str(root / "generated" / "apt"), ["c"]),
        (str(root / "hm3d-v0" / "000-hm3d-BFRyYbPCCPE"), ["a", "b"]),
    ]
    assert [q.question_id for q, _ in missing] == ["d"]
    assert "scannet-v0/002-scannet-scene0709_00' not found under" in missing[0][1]
    assert "--export-history" in missing[0][1]
    with pytest.raises(AeqaError, match="histories root does not exist"):
        plan_histories(questions, tmp_path / "nowhere")


# --- the vision-language heads see the memory's keyframes ----------------------------------------


def test_openai_head_answers_from_a_history_with_evenly_spaced_frames(
    serve, tmp_path: Path
) -> None:
    """Without instance ids no keyframe is any object's view: the frames spread over the
    episode, as OpenEQA's multi-frame baselines pick theirs."""
    history = write_turning_history(tmp_path / "hm3d-v0" / "000-hm3d-AAAAAAAAAAA")
    server = serve(lambda call: Reply())
    config = resolve_episode_config("discrete", "openai")
    config.answerer = AnswererConfig(
        type="openai",
        model="gpt-test",
        base_url=server.base_url,
        api_key="sk-test",
        max_images=4,
        timeout_s=5.0,
        max_retries=0,
    )
    episode = HistoryEpisode(config)

    result = episode.run(
        HistorySpec("What colour is the wall?", str(history), "q1"), tmp_path / "e"
    )

    assert (result.answer, result.confidence, result.error) == ("red", 0.9, None)
    assert (result.mode, result.perception, result.stop_reason) == ("em", "none", "history")
    assert result.steps == 10 and result.path_length_m == 0.0
    assert result.frame_ids == [0, 3, 6, 9]  # round(linspace(0, 9, 4))
    images = [p for p in server.requests[0]["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(images) == 4
    saved = json.loads((tmp_path / "e" / "episode.json").read_text())
    assert saved["mode"] == "em" and saved["answer"] == "red"
    # a second question about the same history reuses its memory
    again = episode.run(HistorySpec("Is it bright?", str(history), "q2"))
    assert again.wall_time_s["read_history"] == 0.0 and result.wall_time_s["read_history"] > 0


# --- modes and options ---------------------------------------------------------------------------


def test_resume_refuses_another_mode(tmp_path: Path) -> None:
    config = resolve_episode_config("discrete", "memory", FAST)
    out = tmp_path / "run"
    out.mkdir()
    save_config(config, out / "config.yaml")
    question = _question("q1", "generated/apt")
    write_questions(out / "questions.json", [question])
    ResultsLog(out / "results.jsonl").append(_em_record(question))
    with pytest.raises(AeqaError, match="made with --mode em; resume it with --mode em"):
        run_batch([question], config, out, resume=True, progress=False, scenes_root=tmp_path)
    with pytest.raises(AeqaError, match="pass --histories-root"):
        run_batch([question], config, tmp_path / "other", mode="em", progress=False)
    with pytest.raises(AeqaError, match="unknown mode 'active'"):
        run_batch([question], config, tmp_path / "other", mode="active", progress=False)


def _em_record(question: Question) -> EpisodeResult:
    record = failed_result(question, "", "x")
    record.error, record.answer, record.mode = None, "a painting", "em"
    return record


def test_em_options_go_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = tmp_path / "q.json"
    write_questions(questions, [_question("q1", "generated/apt")])
    cases = [
        (["evaluate", "--questions", str(questions), "--mode", "em"], "pass --histories-root"),
        (
            ["evaluate", "--questions", str(questions), "--histories-root", str(tmp_path)],
            "are for --mode em",
        ),
        (
            [
                "evaluate",
                "--questions",
                str(questions),
                "--mode",
                "em",
                "--histories-root",
                str(tmp_path),
                "--scenes-root",
                str(tmp_path),
            ],
            "--scenes-root is for exploring",
        ),
        (["explore", "--history-format", "scannet"], "add --export-history DIR"),
    ]
    for argv, message in cases:
        assert aeqa_main(argv) == 2
        assert message in capsys.readouterr().err
    history = write_turning_history(tmp_path / "h")
    assert aeqa_main(["explore", "--export-history", str(history)]) == 2
    assert "already holds an episode history" in capsys.readouterr().err


def test_scores_of_em_results_have_no_spl(tmp_path: Path) -> None:
    from aeqa.evaluation.scoring import score_files

    question = _question("q1", "generated/apt")
    question.path_length_m = 3.0
    write_questions(tmp_path / "q.json", [question])
    (tmp_path / "p.json").write_text(json.dumps([{"question_id": "q1", "answer": "a painting"}]))
    ResultsLog(tmp_path / "results.jsonl").append(_em_record(question))
    (tmp_path / "s.json").write_text(json.dumps({"q1": 5}))
    summary = score_files(
        tmp_path / "q.json",
        tmp_path / "p.json",
        scores_path=tmp_path / "s.json",
        results_path=tmp_path / "results.jsonl",
    ).summary
    assert summary.llm_match == 100.0 and summary.llm_spl is None


# --- the same answers as the live run ------------------------------------------------------------


@pytest.fixture(scope="module")
def six_questions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Question]]:
    root = tmp_path_factory.mktemp("em")
    scenes = generate_scenes(root / "scenes", 2, seed=0)
    questions = generate_questions(scenes, 3, seed=0)
    assert len(questions) == 6 and len({q.scene for q in questions}) == 2
    return write_questions(root / "questions.json", questions), questions


@pytest.mark.slow
def test_em_run_on_exported_histories_scores_as_the_live_run(
    six_questions: tuple[Path, list[Question]], tmp_path: Path
) -> None:
    questions_path, questions = six_questions
    live, em, histories = tmp_path / "live", tmp_path / "em", tmp_path / "frames"
    assert (
        aeqa_main(
            [
                "evaluate",
                "--questions",
                str(questions_path),
                "--out",
                str(live),
                "--no-progress",
                *FAST,
            ]
        )
        == 0
    )
    # One history per scene, as OpenEQA has one per episode history: the explorer does not
    # depend on the question, so each scene's episode is the one its questions explored.
    for scene_question in {q.episode_history: q for q in questions}.values():
        assert scene_question.start_position and scene_question.start_rotation
        assert (
            aeqa_main(
                [
                    "explore",
                    "--scene",
                    scene_question.scene,
                    "--question",
                    "What is here?",
                    "--start-position",
                    *map(str, scene_question.start_position),
                    "--start-rotation",
                    *map(str, scene_question.start_rotation),
                    "--export-history",
                    str(histories / scene_question.episode_history),
                    "--out",
                    str(tmp_path / "explore"),
                    "--json",
                    *FAST,
                ]
            )
            == 0
        )
    assert (
        aeqa_main(
            [
                "evaluate",
                "--mode",
                "em",
                "--questions",
                str(questions_path),
                "--histories-root",
                str(histories),
                "--out",
                str(em),
                "--no-progress",
                *FAST,
            ]
        )
        == 0
    )

    predictions = json.loads((em / "predictions.json").read_text())
    assert predictions == json.loads((live / "predictions.json").read_text())
    assert len(predictions) == 6 and any(p["answer"] != "unknown" for p in predictions)
    records = {r["question_id"]: r for r in _lines(em / "results.jsonl")}
    explored = {r["question_id"]: r for r in _lines(live / "results.jsonl")}
    assert {r["mode"] for r in records.values()} == {"em"}
    assert {r["mode"] for r in explored.values()} == {"aeqa"}
    for qid, record in records.items():
        # every frame of the exploration (the start's and one a step) read back
        assert (record["stop_reason"], record["steps"]) == ("history", explored[qid]["steps"] + 1)
        assert (record["perception"], record["path_length_m"]) == ("gt", 0.0)
    summary = json.loads((em / "summary.json").read_text())
    assert summary["mode"] == "em" and summary["succeeded"] == 6
    assert json.loads((live / "summary.json").read_text())["mode"] == "aeqa"

    scores = {}
    for run in (live, em):
        out = tmp_path / f"{run.name}-scores.json"
        assert (
            aeqa_main(
                [
                    "score",
                    "--predictions",
                    str(run / "predictions.json"),
                    "--questions",
                    str(questions_path),
                    "--results",
                    str(run / "results.jsonl"),
                    "--out",
                    str(out),
                    "--json",
                ]
            )
            == 0
        )
        scores[run.name] = json.loads(out.read_text())
    assert scores["em"] == scores["live"] and max(scores["em"].values()) > 1

    # resumed: nothing to run again, and an explored resume of it is refused
    assert (
        aeqa_main(
            [
                "evaluate",
                "--mode",
                "em",
                "--questions",
                str(questions_path),
                "--histories-root",
                str(histories),
                "--out",
                str(em),
                "--resume",
                "--no-progress",
                *FAST,
            ]
        )
        == 0
    )
    assert json.loads((em / "summary.json").read_text())["ran"] == 0
    assert (
        aeqa_main(
            [
                "evaluate",
                "--questions",
                str(questions_path),
                "--out",
                str(em),
                "--resume",
                "--no-progress",
                *FAST,
            ]
        )
        == 2
    )


def test_missing_history_is_recorded_as_failed(tmp_path: Path) -> None:
    config: EpisodeConfig = resolve_episode_config("discrete", "memory", FAST)
    (tmp_path / "frames").mkdir()
    summary = run_batch(
        [_question("q1", "generated/apt")],
        config,
        tmp_path / "run",
        mode="em",
        histories_root=tmp_path / "frames",
        progress=False,
    )
    assert (summary.failed, summary.mode) == (1, "em")
    (record,) = _lines(tmp_path / "run" / "results.jsonl")
    assert record["mode"] == "em" and "generated/apt' not found under" in record["error"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_em_batch_on_both_engines(engine: str, tmp_path: Path) -> None:
    """An OpenEQA-like history without instance ids on a worker process or a Ray task: the
    memory head finds nothing to name (unknown, not a failure); a 3D-Mem entry's HM3D folder
    name reads OpenEQA's history; a missing history fails alone."""
    if engine == "ray":
        pytest.importorskip("ray")
    write_turning_history(tmp_path / "frames" / "hm3d-v0" / "000-hm3d-AAAAAAAAAAA")
    questions = [
        _question("q1", "hm3d-v0/000-hm3d-AAAAAAAAAAA"),
        _question("q2", "00800-AAAAAAAAAAA"),
        _question("q3", "hm3d-v0/001-hm3d-BBBBBBBBBBB"),
    ]
    config = resolve_episode_config("discrete", "memory")
    summary = run_batch(
        questions,
        config,
        tmp_path / "run",
        engine=engine,
        workers=1,
        mode="em",
        histories_root=tmp_path / "frames",
        progress=False,
    )
    assert (summary.succeeded, summary.failed, summary.mode) == (2, 1, "em")
    records = {r["question_id"]: r for r in _lines(tmp_path / "run" / "results.jsonl")}
    for qid in ("q1", "q2"):
        assert (records[qid]["answer"], records[qid]["error"]) == ("unknown", None)
        assert (records[qid]["steps"], records[qid]["perception"]) == (10, "none")
    assert "not found under" in records["q3"]["error"]

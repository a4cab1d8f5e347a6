"""Scoring: LLM-Match / LLM-SPL re-aggregated from the real A-EQA files, failed questions and
fallback scores, bad input files, and the ``aeqa score`` command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeqa.envs.errors import AeqaError
from aeqa.evaluation.judges import JudgeScore
from aeqa.evaluation.questions import Question, load_questions, select_split, write_questions
from aeqa.evaluation.scoring import (
    EpisodeOutcome,
    aggregate,
    llm_match,
    llm_spl,
    load_predictions,
    load_results,
    load_scores,
    score_files,
    score_predictions,
    spl_weight,
)
from aeqa.launch.cli import build_parser
from tests.chat_server import Reply
from tests.conftest import shared_data


def run_cli(argv: list[str]) -> int:
    """``aeqa score ...``'s handler, raising its errors (``aeqa`` itself prints them)."""
    args = build_parser().parse_args(["score", *argv])
    return int(args.handler(args))


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_results(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- the formulas ------------------------------------------------------------------------------


def test_formulas() -> None:
    assert llm_match([1, 5]) == 50.0
    assert llm_match([0, 7, 3]) == pytest.approx((0 + 100 + 50) / 3)  # clipped to 1..5
    assert spl_weight(2.0, 8.0) == 0.25 and spl_weight(5.0, 1.0) == 1.0
    assert spl_weight(0.0, 0.0) == 1.0 and spl_weight(3.0, float("inf")) == 0.0
    assert llm_spl([5, 3], [2.0, 4.0], [4.0, 1.0]) == pytest.approx((100 * 0.5 + 50) / 2)
    with pytest.raises(ValueError):
        llm_match([])


# --- re-aggregating the real A-EQA 184 questions -----------------------------------------------


@pytest.fixture(scope="module")
def aeqa_184() -> tuple[Path, Path, list[Question]]:
    questions_path = shared_data("openeqa", "open-eqa-v0.json")
    ids_path = shared_data("openeqa", "open-eqa-v0-184-questions.json")
    questions = select_split(load_questions(questions_path), "aeqa-184", ids_path)
    assert len(questions) == 184
    return questions_path, ids_path, questions


def _reference(
    questions: list[Question],
    scores: dict[str, float],
    gt: dict[str, float] | None = None,
    agent: dict[str, float] | None = None,
) -> tuple[float, float | None, dict[str, tuple[float, float | None, int]]]:
    """The formulas written out plainly, independent of aeqa.evaluation.scoring."""

    def rows(subset: list[Question]) -> tuple[float, float | None, int]:
        match_terms, spl_terms = [], []
        for q in subset:
            s = min(max(scores[q.question_id], 1), 5)
            normalized = 100 * (s - 1) / 4
            match_terms.append(normalized)
            if gt is not None and agent is not None:
                l_gt, l_agent = gt[q.question_id], agent[q.question_id]
                spl_terms.append(normalized * l_gt / max(l_gt, l_agent))
        match = sum(match_terms) / len(match_terms)
        spl = sum(spl_terms) / len(spl_terms) if spl_terms else None
        return match, spl, len(subset)

    categories = sorted({q.category for q in questions})
    per = {c: rows([q for q in questions if q.category == c]) for c in categories}
    overall = rows(questions)
    return overall[0], overall[1], per


def test_reaggregate_reproduces_the_formula(
    aeqa_184: tuple[Path, Path, list[Question]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    questions_path, ids_path, questions = aeqa_184
    rng = np.random.default_rng(184)
    scores: dict[str, float] = {q.question_id: int(rng.integers(1, 6)) for q in questions}
    # OpenEQA's judge gives 0 for a missing prediction; a few fractional scores as well
    for q in questions[:3]:
        scores[q.question_id] = 0
    for q in questions[3:6]:
        scores[q.question_id] = float(rng.uniform(1, 5))
    gt_path = shared_data("aeqa", "gt_path_length.json")
    gt = json.loads(gt_path.read_text())
    agent = {q.question_id: float(rng.uniform(0.0, 3.0 * gt[q.question_id])) for q in questions}
    # published files may cover all of A-EQA: ids of the question file outside the split are
    # left out
    outside = next(qid for qid in gt if qid not in scores)
    scores_path = write_json(tmp_path / "scores.json", scores | {outside: 5})
    results_path = write_results(
        tmp_path / "results.jsonl",
        [{"question_id": k, "path_length_m": v, "error": None} for k, v in agent.items()],
    )
    base = [
        "--questions",
        str(questions_path),
        "--split",
        "aeqa-184",
        "--subset-ids",
        str(ids_path),
    ]
    base += ["--scores", str(scores_path), "--json"]

    for with_spl in (False, True):
        extra = ["--path-lengths", str(gt_path), "--results", str(results_path)] if with_spl else []
        assert run_cli(base + extra) == 0
        out = json.loads(capsys.readouterr().out)
        match, spl, per = _reference(questions, scores, gt if with_spl else None, agent)
        assert out["count"] == 184 and out["failed"] == 0
        assert out["llm_match"] == pytest.approx(match, abs=0.01)
        if with_spl:
            assert spl is not None and 0 < spl < match
            assert out["llm_spl"] == pytest.approx(spl, abs=0.01)
        else:
            assert out["llm_spl"] is None
        assert set(out["by_category"]) == set(per)
        for category, (c_match, c_spl, count) in per.items():
            row = out["by_category"][category]
            assert row["count"] == count
            assert row["llm_match"] == pytest.approx(c_match, abs=0.01)
            if with_spl:
                assert row["llm_spl"] == pytest.approx(c_spl, abs=0.01)
            else:
                assert row["llm_spl"] is None

    summary = aggregate(questions, scores, gt, agent)
    match, spl, _ = _reference(questions, scores, gt, agent)
    assert summary.llm_match == pytest.approx(match, abs=1e-9)
    assert summary.llm_spl == pytest.approx(spl, abs=1e-9)


def test_published_scores_with_unknown_ids_are_rejected(
    aeqa_184: tuple[Path, Path, list[Question]], tmp_path: Path
) -> None:
    questions_path, _, questions = aeqa_184
    scores = {q.question_id: 3 for q in questions} | {"not-a-question": 5}
    scores_path = write_json(tmp_path / "published.json", scores)
    with pytest.raises(AeqaError, match="not-a-question") as error:
        run_cli(["--questions", str(questions_path), "--scores", str(scores_path)])
    assert str(scores_path) in str(error.value) and str(questions_path) in str(error.value)


# --- failed questions and fallback scores ------------------------------------------------------


def _small_questions() -> list[Question]:
    categories = ["object recognition", "object recognition", "world knowledge", "world knowledge"]
    return [
        Question(
            question_id=f"q{i}",
            question=f"Question {i}?",
            answer=f"answer {i}",
            category=category,
            episode_history="hm3d-v0/000-hm3d-BFRyYbPCCPE",
        )
        for i, category in enumerate(categories, start=1)
    ]


class TableJudge:
    """Scores from a table of predictions, recording what it was asked."""

    def __init__(self, table: dict[str, int]) -> None:
        self.table = table
        self.asked: list[str] = []

    def score(self, question: Question, prediction: str) -> JudgeScore:
        self.asked.append(question.question_id)
        return JudgeScore(self.table[prediction], "table")

    def info(self) -> dict[str, Any]:
        return {"type": "table", "model": "none", "seed": 0, "temperature": 0.0, "prompt": "t"}


def test_failed_questions_score_one_with_weight_zero_unless_a_fallback() -> None:
    questions = _small_questions()
    # q1 judged 5; q2 has an episode error; q3's answer is null; q4 has no prediction
    predictions: dict[str, str | None] = {"q1": "good", "q2": "fine", "q3": None}
    results = {
        "q1": EpisodeOutcome("q1", 4.0, None),
        "q2": EpisodeOutcome("q2", None, "RuntimeError: the renderer died"),
        "q3": EpisodeOutcome("q3", 1.0, None),
    }
    gt = {qid: 2.0 for qid in ("q1", "q2", "q3", "q4")}
    judge = TableJudge({"good": 5, "fine": 5})

    scores, summary = score_predictions(questions, predictions, judge, gt, results)

    assert judge.asked == ["q1"] and scores == {"q1": 5}
    assert summary.failed_ids == ["q2", "q3", "q4"] and summary.failed == 3
    assert summary.llm_match == pytest.approx(100 / 4)
    assert summary.llm_spl == pytest.approx(100 * 0.5 / 4)
    assert summary.by_category["object recognition"].llm_match == pytest.approx(50.0)
    assert summary.by_category["world knowledge"].llm_match == 0.0
    assert summary.judge["type"] == "table"

    _, with_fallback = score_predictions(
        questions, predictions, judge, gt, results, fallback_scores={"q3": 4, "q2": 2}
    )
    assert with_fallback.fallback_used == 2
    assert with_fallback.llm_match == pytest.approx((100 + 25 + 75 + 0) / 4)
    assert with_fallback.llm_spl == pytest.approx(100 * 0.5 / 4)  # failed: weight 0
    assert with_fallback.by_category["world knowledge"].llm_spl == 0.0


def test_reaggregated_scores_respect_failures(tmp_path: Path) -> None:
    questions = _small_questions()
    scores = {"q1": 5, "q2": 5, "q3": 3}  # q4 has no score: failed
    failed_by_results = {"q2"}
    summary = aggregate(
        questions, scores, failed=failed_by_results, fallback_scores={"q4": 5, "q9": 1}
    )
    assert summary.failed_ids == ["q2", "q4"] and summary.fallback_used == 1
    assert summary.llm_match == pytest.approx((100 + 0 + 50 + 100) / 4)
    assert summary.llm_spl is None

    with pytest.raises(AeqaError, match=r"the scores: the scores of q1 are not finite"):
        aggregate(questions, {"q1": float("nan")})
    with pytest.raises(AeqaError, match=r"no path length for 1 scored questions: q3"):
        aggregate(questions, scores, {"q1": 1.0}, {"q1": 1.0, "q3": 2.0}, failed={"q2", "q4"})


def test_score_command_judges_and_writes_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = _small_questions()
    questions[0].answer, questions[1].answer = "red", "2"
    questions[2].answer, questions[3].answer = "yes", "kitchen"
    questions_path = write_questions(tmp_path / "questions.json", questions)
    run = tmp_path / "run"
    run.mkdir()
    predictions_path = write_json(
        run / "predictions.json",
        [
            {"question_id": "q1", "answer": "Red."},
            {"question_id": "q2", "answer": "three"},
            {"question_id": "q3", "answer": "Yes, it is."},
            {"question_id": "q4", "answer": "unknown", "steps": 12},
        ],
    )
    fallback = write_json(tmp_path / "fallback.json", {"q2": 5})
    results = write_results(
        run / "results.jsonl",
        [
            {"question_id": "q1", "path_length_m": 1.0, "error": None},
            {"question_id": "q2", "path_length_m": None, "error": "crashed"},
            {"question_id": "q3", "path_length_m": 8.0, "error": None},
            {"question_id": "q4", "path_length_m": 2.0, "error": None},
        ],
    )
    gt = write_json(tmp_path / "gt.json", {"q1": 2.0, "q2": 2.0, "q3": 2.0, "q4": 2.0})

    argv = ["--predictions", str(predictions_path), "--questions", str(questions_path)]
    argv += ["--judge", "offline", "--path-lengths", str(gt), "--results", str(results)]
    argv += ["--fallback-scores", str(fallback)]
    assert run_cli(argv) == 0
    text = capsys.readouterr().out
    assert "LLM-Match" in text and "LLM-SPL" in text and "world knowledge" in text

    written = json.loads((run / "scores.json").read_text())
    assert written == {"q1": 5, "q3": 4, "q4": 1}  # q2 failed: not judged
    expected_match = (100 + 100 + 75 + 0) / 4  # q2 from the fallback file
    expected_spl = (100 * 1.0 + 0 + 75 * 2.0 / 8.0 + 0) / 4
    assert run_cli(argv + ["--json", "--out", str(tmp_path / "again.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["llm_match"] == pytest.approx(expected_match, abs=0.01)
    assert out["llm_spl"] == pytest.approx(expected_spl, abs=0.01)
    assert out["failed_ids"] == ["q2"] and out["fallback_used"] == 1
    assert out["judge"]["type"] == "offline" and out["judge"]["prompt"]
    assert out["scores_file"] == str(tmp_path / "again.json")

    # the written scores re-aggregate to the same summary
    argv = ["--questions", str(questions_path), "--scores", str(run / "scores.json"), "--json"]
    argv += ["--path-lengths", str(gt), "--results", str(results)]
    assert run_cli(argv + ["--fallback-scores", str(fallback)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["llm_match"], again["llm_spl"]) == (out["llm_match"], out["llm_spl"])
    assert again["by_category"] == out["by_category"]


# --- bad inputs --------------------------------------------------------------------------------


def _raw(text: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return make


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"question_id": "q1", "answer": "red"', r"not valid JSON at line 1"),
        ('{"q1": "red"}', "expected a JSON list"),
        ('[{"question_id": "q1"}]', r"entry 0: missing field 'answer'"),
        ('[{"answer": "red"}]', r"entry 0: missing field 'question_id'"),
        ('[{"question_id": "q1", "answer": 3}]', r"field 'answer' must be a string or null"),
        (
            '[{"question_id": "q1", "answer": "a"}, {"question_id": "q1", "answer": "b"}]',
            r"entry 1: question_id 'q1' repeats entry 0",
        ),
    ],
)
def test_bad_predictions_files(tmp_path: Path, content: str, message: str) -> None:
    path = _raw(content)(tmp_path / "predictions.json")
    with pytest.raises(AeqaError, match=message) as error:
        load_predictions(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_predictions_with_unknown_ids(tmp_path: Path) -> None:
    questions_path = write_questions(tmp_path / "questions.json", _small_questions())
    unknown = [f"ghost-{i}" for i in range(8)]
    predictions = write_json(
        tmp_path / "predictions.json",
        [{"question_id": qid, "answer": "x"} for qid in ["q1", *unknown]],
    )
    with pytest.raises(AeqaError) as error:
        run_cli(["--predictions", str(predictions), "--questions", str(questions_path)])
    message = str(error.value)
    assert str(predictions) in message and str(questions_path) in message
    assert "8 question ids" in message and "ghost-0" in message and "and 3 more" in message
    assert "ghost-7" not in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"q1": 5, "q2": "five"}', r"scores of q2 are not numbers \(e\.g\. 'five'\)"),
        ('{"q1": null}', "scores of q1 are not numbers"),
        ('{"q1": true}', "scores of q1 are not numbers"),
        ('{"q1": 5, "q2": 7}', r"scores of q2 are outside 1 to 5 \(e\.g\. 7\); give judge scores"),
        ('{"q1": 0.5, "q2": 100, "q3": 0}', "scores of q1, q2 are outside 1 to 5"),
        ("[5, 4]", r"expected a JSON object \{question_id: score\}"),
        ("{'q1': 5}", "not valid JSON"),
    ],
)
def test_bad_scores_files(tmp_path: Path, content: str, message: str) -> None:
    path = _raw(content)(tmp_path / "scores.json")
    with pytest.raises(AeqaError, match=message) as error:
        load_scores(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"question_id": "q1", "error": null}\n', "missing field 'path_length_m'"),
        ('{"question_id": "q1", "path_length_m": -1, "error": null}\n', "path_length_m"),
        ('{"question_id": "q1", "path_length_m": null, "error": null}\n', "finished episode"),
        ('{"question_id": "q1", "path_length_m": 1, "error": 3}\n', "field 'error'"),
    ],
)
def test_bad_results_files(tmp_path: Path, lines: str, message: str) -> None:
    path = _raw(lines)(tmp_path / "results.jsonl")
    with pytest.raises(AeqaError, match=message) as error:
        load_results(path)
    assert str(path) in str(error.value)


def test_results_first_line_wins_and_a_torn_tail_is_skipped(tmp_path: Path) -> None:
    path = write_results(
        tmp_path / "results.jsonl",
        [
            {"question_id": "q1", "path_length_m": 3.5, "error": None, "steps": 9},
            {"question_id": "q1", "path_length_m": None, "error": "crashed"},
            {"question_id": "q2", "path_length_m": 1.0, "error": None},
        ],
    )
    path.write_text(path.read_text() + '\n{"question_id": "q3", "path_le', encoding="utf-8")
    assert load_results(path) == {
        "q1": EpisodeOutcome("q1", 3.5, None),
        "q2": EpisodeOutcome("q2", 1.0, None),
    }


def test_score_command_errors(tmp_path: Path) -> None:
    questions_path = write_questions(tmp_path / "questions.json", _small_questions())
    with pytest.raises(AeqaError, match="--predictions FILE"):
        run_cli(["--questions", str(questions_path)])
    with pytest.raises(AeqaError, match="no such scores file"):
        run_cli(["--questions", str(questions_path), "--scores", str(tmp_path / "none.json")])
    scores = write_json(tmp_path / "scores.json", {"q1": 5})
    gt = write_json(tmp_path / "gt.json", {"q1": "far"})
    with pytest.raises(AeqaError, match=r"gt\.json.*not non-negative numbers"):
        run_cli(
            ["--questions", str(questions_path), "--scores", str(scores), "--path-lengths", str(gt)]
        )
    results = write_results(
        tmp_path / "results.jsonl", [{"question_id": "q2", "path_length_m": 1, "error": None}]
    )
    gt = write_json(tmp_path / "gt.json", {"q1": 1.0})
    argv = ["--questions", str(questions_path), "--scores", str(scores), "--path-lengths", str(gt)]
    with pytest.raises(
        AeqaError, match=r"results\.jsonl: no episode result for 1 scored questions.*q1"
    ):
        run_cli(argv + ["--results", str(results)])
    with pytest.raises(AeqaError, match="no questions to score"):
        score_files(
            write_questions(tmp_path / "empty.json", []),
            scores_path=write_json(tmp_path / "none.json", {}),
        )


def test_spl_uses_the_path_lengths_a_question_file_carries(tmp_path: Path) -> None:
    entries = [
        {
            "question_id": qid,
            "question": "What is it?",
            "answer": "sofa",
            "category": "object recognition",
            "episode_history": "generated/a",
            "gt_path_length_m": gt,
        }
        for qid, gt in (("a", 2.0), ("b", 4.0))
    ]
    questions = write_json(tmp_path / "questions.json", entries)
    scores = write_json(tmp_path / "scores.json", {"a": 5, "b": 5})
    results = tmp_path / "results.jsonl"
    results.write_text(
        "".join(
            json.dumps({"question_id": qid, "path_length_m": agent, "error": None}) + "\n"
            for qid, agent in (("a", 4.0), ("b", 4.0))
        )
    )
    run = score_files(questions, scores_path=scores, results_path=results)
    assert run.summary.llm_match == pytest.approx(100.0)
    assert run.summary.llm_spl == pytest.approx((100 * 2 / 4 + 100) / 2)
    assert "gt_path_length_m" in run.summary.sources["path_lengths"]


# --- a judge that fails on some questions ------------------------------------------------------


def test_a_judge_failure_keeps_the_other_scores_and_a_rerun_judges_only_what_is_missing(
    serve: Callable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aeqa.launch.cli import main

    questions = _small_questions()
    questions_path = write_questions(tmp_path / "questions.json", questions)
    predictions = {"q1": "one", "q2": "two", "q3": "three", "q4": "four"}
    predictions_path = tmp_path / "predictions.json"

    def write_predictions() -> None:
        write_json(
            predictions_path, [{"question_id": k, "answer": v} for k, v in predictions.items()]
        )

    broken = {"three"}  # the server rejects the request that judges this prediction

    def plan(call: int) -> Reply:
        user = server.requests[call - 1]["messages"][-1]["content"]
        prediction = user.rsplit("Prediction: ", 1)[1]
        if prediction in broken:
            return Reply(status=400, error="this request cannot be served")
        return Reply(content=f"Score: {len(prediction) % 5 + 1}")

    server = serve(plan)
    write_predictions()
    argv = ["score", "--predictions", str(predictions_path), "--questions", str(questions_path)]
    argv += ["--judge", "openai", "--judge-base-url", server.base_url, "--judge-model", "m"]
    argv += ["--judge-retries", "0", "--json"]

    assert main(argv) == 1
    captured = capsys.readouterr()
    assert server.calls == 4  # the failure did not stop the judging
    expected = {qid: len(p) % 5 + 1 for qid, p in predictions.items()}
    scores_path, log_path = tmp_path / "scores.json", tmp_path / "scores.jsonl"
    assert json.loads(scores_path.read_text()) == {k: v for k, v in expected.items() if k != "q3"}
    out = json.loads(captured.out)
    assert [f["question_id"] for f in out["judge_failures"]] == ["q3"]
    error = out["judge_failures"][0]["error"]
    assert "HTTP 400" in error and "this request cannot be served" in error and "\n" not in error
    assert out["failed_ids"] == ["q3"] and out["judged_log"] == str(log_path)
    (err_line,) = captured.err.strip().splitlines()
    assert "judge failed on 1 questions (q3" in err_line and str(scores_path) in err_line
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(e["question_id"], e.get("score"), "error" in e) for e in logged] == [
        ("q1", expected["q1"], False),
        ("q2", expected["q2"], False),
        ("q3", None, True),
        ("q4", expected["q4"], False),
    ]

    # Run again with the server healthy: only the failed question is judged.
    broken.clear()
    assert main(argv) == 0
    capsys.readouterr()
    assert server.calls == 5
    assert json.loads(scores_path.read_text()) == expected

    # A changed prediction is judged again; the unchanged ones are not.
    predictions["q2"] = "a different answer"
    write_predictions()
    expected["q2"] = len(predictions["q2"]) % 5 + 1
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert server.calls == 6
    assert json.loads(scores_path.read_text()) == expected
    assert out["judge_failures"] == [] and out["failed_ids"] == []

    # Re-aggregating the scores file with predictions that changed since: those scores are
    # not used.
    predictions["q4"] = "changed after judging"
    write_predictions()
    argv = ["--questions", str(questions_path), "--scores", str(scores_path)]
    run = score_files(questions_path, predictions_path=predictions_path, scores_path=scores_path)
    assert run.summary.failed_ids == ["q4"]
    assert run_cli([*argv, "--json"]) == 0  # without predictions, every score counts
    assert json.loads(capsys.readouterr().out)["failed_ids"] == []

"""Judges: the offline rules and embedding fallback, score parsing, and the OpenAI-compatible
judge against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest

from aeqa.envs.errors import AeqaError
from aeqa.evaluation.judges import (
    JUDGE_PROMPT_NAME,
    JudgeConfig,
    JudgeScore,
    OfflineJudge,
    OpenAIJudge,
    load_prompt,
    make_judge,
    normalize_answer,
    parse_score,
    similarity_score,
)
from aeqa.evaluation.questions import Question
from tests.chat_server import Reply

MODEL = "judge-test"
KEY = "sk-judge-123"


def _question(answer: str, extra: tuple[str, ...] = (), text: str = "What is it?") -> Question:
    return Question(
        question_id="q-1",
        question=text,
        answer=answer,
        category="object recognition",
        episode_history="hm3d-v0/000-hm3d-BFRyYbPCCPE",
        extra_answers=list(extra),
    )


# --- the offline judge -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline() -> OfflineJudge:
    return OfflineJudge()


def test_normalize_answer() -> None:
    assert normalize_answer("  The Air-Conditioning unit. ") == "air conditioning unit"
    assert normalize_answer("Two grey chairs!") == "2 gray chairs"
    assert normalize_answer("I don't know") == "i do not know"
    assert normalize_answer("I can't tell") == normalize_answer("I can not tell") == "i cannot tell"
    assert normalize_answer("") == ""


@pytest.mark.parametrize(
    ("answer", "extra", "prediction", "score"),
    [
        # exact after normalisation
        ("Air conditioning unit", (), "an air-conditioning unit.", 5),
        ("Yes", (), "yes", 5),
        # synonym through extra_answers
        ("sofa", ("couch", "settee"), "The couch", 5),
        # number words and digits
        ("2", (), "Two", 5),
        ("three", (), "3 chairs", 4),
        ("2", (), "three", 1),
        # containment either way
        ("in the kitchen", (), "kitchen", 4),
        ("kitchen", (), "It is in the kitchen", 4),
        # closed vocabularies that conflict
        ("red", (), "blue", 1),
        ("in the kitchen", (), "in the bedroom", 1),
        ("yes", (), "No, it is closed", 1),
        ("open", (), "shut", 1),
        # no answer
        ("red", (), "unknown", 1),
        ("red", (), "I don't know.", 1),
        ("red", (), "", 1),
        ("red", (), "   ", 1),
    ],
)
def test_offline_rules(
    offline: OfflineJudge, answer: str, extra: tuple[str, ...], prediction: str, score: int
) -> None:
    verdict = offline.score(_question(answer, extra), prediction)
    assert verdict.score == score, verdict.reason
    assert verdict.reason


def test_offline_embedding_fallback_is_deterministic(offline: OfflineJudge) -> None:
    unrelated = offline.score(_question("refrigerator"), "a pile of bananas")
    assert unrelated.score <= 2 and "embedding similarity" in unrelated.reason
    close = offline.score(_question("sofa"), "couch")
    assert close.score == 4 and "embedding similarity" in close.reason
    again = OfflineJudge().score(_question("sofa"), "couch")
    assert again == close
    info = offline.info()
    assert info["type"] == "offline" and info["prompt"] and "model" in info
    assert {"seed", "temperature"} <= set(info)


def test_similarity_thresholds() -> None:
    assert [similarity_score(s) for s in (0.95, 0.80, 0.7, 0.5, 0.49, -1.0)] == [4, 4, 3, 2, 1, 1]
    with pytest.raises(ValueError, match=r"1\.\.5"):
        JudgeScore(6, "too high")


# --- parsing a judge's reply -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 4", 4),
        ("score:5", 5),
        ("Your mark: 3\n", 3),
        ("The prediction is close. Score: 2", 2),
        ("**Score:** 4", 4),
        ("4", 4),
        ("**5**.", 5),
        ("I would rate it 4/5.", 4),
        ("That is 3 out of 5", 3),
        ("Rating (1-5): 2", 2),
        ("Score: 9", None),
        ("0", None),
        ("I'm sorry, I can't help with that.", None),
        ("Somewhere between 2 and 3", None),
        ("", None),
    ],
)
def test_parse_score(reply: str, score: int | None) -> None:
    assert parse_score(reply) == score


def _judge(base_url: str, **options: object) -> OpenAIJudge:
    kwargs: dict = {
        "base_url": base_url,
        "model": MODEL,
        "api_key": KEY,
        "seed": 7,
        "temperature": 0.0,
        "timeout_s": 5.0,
        "max_retries": 2,
        "retry_backoff_s": 0.01,
    }
    kwargs.update(options)
    return OpenAIJudge(**kwargs)


QUESTION = _question("tan with pink and blue", ("brown rug",), "What color is the rug?")


# --- the OpenAI-compatible judge ---------------------------------------------------------------


def test_openai_judge_request_and_parse(serve: Callable) -> None:
    server = serve(lambda call: Reply(content="Score: 4"))
    judge = _judge(server.base_url)

    verdict = judge.score(QUESTION, "brown with pink and blue")

    assert verdict == JudgeScore(4, "Score: 4")
    assert server.calls == 1 and server.paths == ["/v1/chat/completions"]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    body = server.requests[0]
    assert (body["model"], body["seed"], body["temperature"], body["max_tokens"]) == (
        MODEL,
        7,
        0.0,
        32,
    )
    system, user = body["messages"]
    assert system["role"] == "system" and "Score: N" in system["content"]
    assert user["role"] == "user"
    for text in ("What color is the rug?", "tan with pink and blue", "brown rug", "brown with"):
        assert text in user["content"]
    info = judge.info()
    assert info["model"] == MODEL and info["seed"] == 7 and info["temperature"] == 0.0
    assert info["prompt"] == JUDGE_PROMPT_NAME and len(info["prompt_sha256"]) == 64
    assert info["base_url"] == server.base_url


def test_openai_judge_prompt_file(serve: Callable, tmp_path: Path) -> None:
    prompt = tmp_path / "mmbench-extra.txt"
    prompt.write_text(
        "Grade {{strictly}}.\nQuestion: {question}\nAnswer: {answer}\n"
        "Extra Answers: {extra_answers}\nYour Answer: {prediction}\nYour mark:",
        encoding="utf-8",
    )
    server = serve(lambda call: Reply(content="5"))
    judge = _judge(server.base_url, prompt_path=prompt)

    assert judge.score(QUESTION, "tan rug").score == 5

    (user,) = server.requests[0]["messages"]
    assert user["role"] == "user"
    assert user["content"].startswith("Grade {strictly}.\nQuestion: What color is the rug?")
    assert "Extra Answers: ['brown rug']\nYour Answer: tan rug\nYour mark:" in user["content"]
    assert judge.info()["prompt"] == str(prompt)
    assert judge.info()["prompt_sha256"] != _judge(server.base_url).info()["prompt_sha256"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Question: {question}\nAnswer: {answer}", r"lacks \{prediction\}"),
        ("{question} {answer} {prediction} {context}", r"unknown placeholder \{context\}"),
        ("{question} {answer} {prediction} {", "not a valid prompt template"),
    ],
)
def test_bad_prompt_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AeqaError, match=message) as error:
        load_prompt(path)
    assert str(path) in str(error.value)
    with pytest.raises(AeqaError, match="no such judge prompt file"):
        load_prompt(tmp_path / "missing.txt")


def test_openai_judge_retries_server_errors(serve: Callable) -> None:
    server = serve(lambda call: Reply(status=500) if call <= 2 else Reply(content="Score: 3"))
    assert _judge(server.base_url, max_retries=2).score(QUESTION, "pink").score == 3
    assert server.calls == 3


def test_openai_judge_asks_again_after_a_reply_without_score(serve: Callable) -> None:
    server = serve(lambda call: Reply(content="Hmm." if call == 1 else "Your mark: 2"))
    assert _judge(server.base_url).score(QUESTION, "pink").score == 2
    assert server.calls == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(content="I'm sorry, I can't help with that."), "no score 1..5 in the reply"),
        (Reply(content=None, refusal="I cannot grade this."), "the model refused"),
    ],
)
def test_openai_judge_refusal_is_an_error(serve: Callable, reply: Reply, message: str) -> None:
    server = serve(lambda call: reply)
    with pytest.raises(AeqaError, match=message) as error:
        _judge(server.base_url, max_retries=1).score(QUESTION, "pink")
    assert server.calls == 2
    assert "after 2 tries" in str(error.value) and "q-1" in str(error.value)


def test_openai_judge_timeouts(serve: Callable) -> None:
    server = serve(lambda call: Reply(delay_s=1.0))
    started = time.perf_counter()
    with pytest.raises(AeqaError, match="timeout") as error:
        _judge(server.base_url, timeout_s=0.2, max_retries=1).score(QUESTION, "pink")
    assert time.perf_counter() - started < 3.0
    assert server.calls == 2
    assert str(error.value).startswith("judge: ") and "\n" not in str(error.value)


def test_openai_judge_unreachable_and_client_errors(serve: Callable) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AeqaError, match="connection error"):
        _judge(f"http://127.0.0.1:{port}/v1", max_retries=1).score(QUESTION, "pink")

    server = serve(lambda call: Reply(status=401))
    with pytest.raises(AeqaError, match="HTTP 401"):
        _judge(server.base_url).score(QUESTION, "pink")
    assert server.calls == 1  # not retried


def test_judge_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEQA_NO_SUCH_KEY", raising=False)
    with pytest.raises(AeqaError, match=r"no API key for the judge.*\$AEQA_NO_SUCH_KEY"):
        OpenAIJudge(base_url="https://api.openai.com/v1", api_key_env="AEQA_NO_SUCH_KEY")
    with pytest.raises(AeqaError, match="--judge-base-url"):
        OpenAIJudge(base_url="ftp://example.org", api_key=KEY)
    with pytest.raises(AeqaError, match="timeout_s"):
        OpenAIJudge(base_url="http://127.0.0.1:9/v1", timeout_s=0)
    with pytest.raises(AeqaError, match="unknown judge 'gpt'"):
        make_judge(JudgeConfig(type="gpt"))
    assert isinstance(make_judge(JudgeConfig(type="offline")), OfflineJudge)
    judge = make_judge(JudgeConfig(type="openai", base_url="http://127.0.0.1:9/v1", seed=3))
    assert isinstance(judge, OpenAIJudge) and judge.info()["seed"] == 3


def test_score_command_with_the_openai_judge(
    serve: Callable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from aeqa.evaluation.questions import write_questions
    from aeqa.launch.score_command import register

    server = serve(lambda call: Reply(content=f"Score: {1 + call % 5}"))
    questions = [
        Question(f"q{i}", f"Question {i}?", f"answer {i}", "world knowledge", "generated/a")
        for i in range(3)
    ]
    questions_path = write_questions(tmp_path / "questions.json", questions)
    predictions = tmp_path / "predictions.json"
    predictions.write_text(
        json.dumps([{"question_id": q.question_id, "answer": "x"} for q in questions])
    )
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["score", "--predictions", str(predictions), "--questions", str(questions_path)]
        + ["--judge", "openai", "--judge-base-url", server.base_url, "--judge-model", MODEL]
        + ["--judge-seed", "5", "--judge-temperature", "0", "--json"]
    )
    assert args.handler(args) == 0

    out = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "scores.json").read_text()) == {"q0": 2, "q1": 3, "q2": 4}
    assert out["llm_match"] == pytest.approx((25 + 50 + 75) / 3, abs=0.01)
    assert out["judge"]["model"] == MODEL and out["judge"]["seed"] == 5
    assert [r["seed"] for r in server.requests] == [5, 5, 5]
    assert {r["temperature"] for r in server.requests} == {0.0}

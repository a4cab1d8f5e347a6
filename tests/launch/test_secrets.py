"""API keys never reach a file or the terminal: a chat server that echoes the key in its error
bodies, answered through ``aeqa explore``, ``aeqa evaluate`` and ``aeqa score``, and every file
written and everything printed searched for the key afterwards."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from aeqa.envs.errors import REDACTED, redact, register_secret
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.questions import generate_questions, write_questions
from aeqa.launch.cli import main
from tests.chat_server import Reply

#: not shaped like an OpenAI key, so only the key itself can find it
CANARY = "canary-0f3c9a7e5b1d42e8"
SMALL = ["sim.width=96", "sim.height=72", "coverage_samples=100"]


def _leaks(folder: Path) -> list[str]:
    return [
        str(path.relative_to(folder))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and CANARY.encode() in path.read_bytes()
    ]


@pytest.mark.slow
def test_a_key_echoed_by_the_server_is_written_and_printed_nowhere(
    serve: Callable,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(
        lambda call: Reply(
            status=401,
            error=f"Incorrect API key provided: {CANARY}. Sent as Authorization: Bearer {CANARY}",
        )
    )
    scenes = generate_scenes(tmp_path / "scenes", 1, seed=0)
    questions = generate_questions(scenes, 2, seed=0)
    questions_path = write_questions(tmp_path / "questions.json", questions)
    answerer = ["--answerer", "openai", "--max-steps", "4"]
    answerer += [f"answerer.api_key={CANARY}", f"answerer.base_url={server.base_url}"]
    answerer += ["answerer.max_retries=0", *SMALL]

    caplog.set_level(logging.INFO)
    explore = tmp_path / "explore"
    argv = ["explore", "--scene", str(scenes[0]), "--question", "What color is the sofa?"]
    assert main([*argv, "--out", str(explore), *answerer]) == 2
    batch = tmp_path / "batch"
    argv = ["evaluate", "--questions", str(questions_path), "--workers", "1", "--no-progress"]
    assert main([*argv, "--out", str(batch), *answerer]) != 2  # episodes failed, not the batch
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    predictions = tmp_path / "predictions.json"
    predictions.write_text(
        json.dumps([{"question_id": q.question_id, "answer": "red"} for q in questions])
    )
    argv = ["score", "--predictions", str(predictions), "--questions", str(questions_path)]
    argv += ["--judge", "openai", "--judge-base-url", server.base_url, "--judge-retries", "0"]
    assert main([*argv, "--json"]) == 1
    captured = capfd.readouterr()

    # The key was sent, and the server echoed it back every time.
    assert server.calls == 1 + 2 + 2
    assert {h["Authorization"] for h in server.headers} == {f"Bearer {CANARY}"}
    assert _leaks(tmp_path) == []
    printed = captured.out + captured.err + caplog.text
    assert CANARY not in printed
    # What went wrong is still said, with the key redacted.
    assert f"provided: {REDACTED}" in captured.err
    assert "answerer.api_key or $OPENAI_API_KEY" in captured.err
    assert f"api_key: '{REDACTED}'" in (explore / "config.yaml").read_text()
    assert f"api_key: '{REDACTED}'" in (batch / "config.yaml").read_text()
    results = [json.loads(line) for line in (batch / "results.jsonl").read_text().splitlines()]
    assert len(results) == 2
    assert all("HTTP 401" in r["error"] and REDACTED in r["error"] for r in results)
    summary = json.loads((batch / "summary.json").read_text())
    assert summary["failed"] == 2 and all(REDACTED in f["error"] for f in summary["failures"])
    error_files = sorted(batch.glob("episodes/*/error.txt"))
    assert len(error_files) == 2 and all(REDACTED in p.read_text() for p in error_files)
    judged = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(judged) == 2 and all(REDACTED in e["error"] for e in judged)
    assert (
        json.loads(captured.out.splitlines()[-1])["judge_failures"][0]["error"]
        == (judged[0]["error"])
    )


def test_redact() -> None:
    key = "kx-7c1e93aa04b2"
    text = (
        f"bad key {key}; Authorization: Bearer abc.DEF-123; sk-proj-Abc123xyz_0; api_key=hunter22x"
    )
    redacted = redact(text, (key,))
    assert redacted == (
        f"bad key {REDACTED}; Authorization: Bearer {REDACTED}; {REDACTED}; api_key={REDACTED}"
    )
    assert redact('{"api_key": "s3cr3t-value"}') == f'{{"api_key": "{REDACTED}"}}'
    # Short strings are not secrets worth garbling a message for.
    assert redact("a key of abc", ("abc",)) == "a key of abc"
    assert redact("no secrets here: HTTP 401 Unauthorized") == (
        "no secrets here: HTTP 401 Unauthorized"
    )
    # A registered key is redacted wherever redact() runs in this process.
    registered = "registered-9a8b7c6d5e"
    register_secret(registered)
    assert redact(f"echo {registered}!") == f"echo {REDACTED}!"

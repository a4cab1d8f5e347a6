"""The ``openai`` head against real chat-completions servers on 127.0.0.1, and the prompt and
reply handling it shares with the ``hf`` head (``aeqa.agents.answerers.context``)."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest

from aeqa.agents.answerers.base import AnswererConfig, make_answerer
from aeqa.agents.answerers.context import (
    build_prompt,
    object_list_text,
    parse_reply,
    relevant_objects,
    select_keyframes,
)
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.agents.answerers.openai_head import OpenAIAnswerer
from aeqa.envs.errors import AeqaError
from aeqa.mapping.memory import SemanticMemory
from tests.chat_server import Reply

QUESTION = "What colour is the table?"
MODEL = "gpt-test"
KEY = "sk-test-123"
PNG_PREFIX = "data:image/png;base64,"


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


def _config(base_url: str, **overrides: object) -> AnswererConfig:
    config = AnswererConfig(
        type="openai",
        model=MODEL,
        base_url=base_url,
        api_key=KEY,
        max_images=2,
        timeout_s=5.0,
        max_retries=3,
        retry_backoff_s=0.01,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


# --- the head -----------------------------------------------------------------------------------


def test_answers_through_chat_completions(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply())
    head = make_answerer(_config(server.base_url, temperature=0.0, seed=7, max_new_tokens=32))
    assert isinstance(head, OpenAIAnswerer) and head.name == "openai"

    answer = head.answer(QUESTION, memory)

    assert (answer.text, answer.confidence) == ("red", 0.9)
    assert server.calls == 1
    assert server.paths == ["/v1/chat/completions"]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert server.headers[0]["Content-Type"] == "application/json"
    body = server.requests[0]
    assert body["model"] == MODEL
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.0, 7, 32)
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"]
    assert user["role"] == "user"
    texts = [p["text"] for p in user["content"] if p["type"] == "text"]
    assert len(texts) == 1 and QUESTION in texts[0] and "Confidence:" in texts[0]
    images = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
    assert len(images) == 2 == len(answer.frame_ids)
    for url, frame_id in zip(images, answer.frame_ids, strict=True):
        assert url.startswith(PNG_PREFIX)
        png = base64.b64decode(url[len(PNG_PREFIX) :])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert frame_id in memory.keyframes.frames
    table = next(o for o in memory.objects() if o.category == "table")
    assert answer.object_ids == [table.object_id]


def test_key_from_environment_and_no_header_without_one(
    serve: Callable, memory: SemanticMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(lambda call: Reply())
    monkeypatch.setenv("AEQA_TEST_KEY", "sk-from-env")
    OpenAIAnswerer(_config(server.base_url, api_key="", api_key_env="AEQA_TEST_KEY")).answer(
        QUESTION, memory
    )
    monkeypatch.delenv("AEQA_TEST_KEY")
    OpenAIAnswerer(_config(server.base_url, api_key="", api_key_env="AEQA_TEST_KEY")).answer(
        QUESTION, memory
    )
    assert server.headers[0]["Authorization"] == "Bearer sk-from-env"
    assert "Authorization" not in server.headers[1]


def test_base_url_from_environment(
    serve: Callable, memory: SemanticMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(lambda call: Reply())
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    head = OpenAIAnswerer(_config(""))
    assert head.endpoint == server.base_url + "/chat/completions"
    assert head.answer(QUESTION, memory).text == "red"


def test_retries_5xx_then_succeeds(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(status=500) if call <= 2 else Reply())
    answer = OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, memory)
    assert answer.text == "red"
    assert server.calls == 3


def test_retries_429(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(status=429) if call == 1 else Reply())
    assert OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, memory).text == "red"
    assert server.calls == 2


def test_always_500_gives_up(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(status=500))
    head = OpenAIAnswerer(_config(server.base_url, max_retries=2))
    with pytest.raises(AeqaError) as error:
        head.answer(QUESTION, memory)
    assert server.calls == 3
    message = str(error.value)
    assert server.base_url in message and "HTTP 500" in message and "3 tries" in message
    assert "\n" not in message


def test_nothing_listening(memory: SemanticMemory) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = OpenAIAnswerer(_config(f"http://127.0.0.1:{port}/v1", max_retries=2))
    started = time.perf_counter()
    with pytest.raises(AeqaError, match=rf"127\.0\.0\.1:{port}.*connection.*server is running"):
        head.answer(QUESTION, memory)
    assert time.perf_counter() - started < 2.0


def test_timeout(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(delay_s=1.5))
    head = OpenAIAnswerer(_config(server.base_url, timeout_s=0.5, max_retries=1))
    started = time.perf_counter()
    with pytest.raises(AeqaError, match="timeout"):
        head.answer(QUESTION, memory)
    assert server.calls == 2
    assert time.perf_counter() - started < 3.0


def test_401_is_not_retried(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(status=401))
    with pytest.raises(AeqaError, match=r"HTTP 401.*API key") as error:
        OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, memory)
    assert server.calls == 1
    assert "status 401 from the test server" in str(error.value)


def test_404_is_not_retried(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(status=404))
    with pytest.raises(AeqaError, match="base_url"):
        OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, memory)
    assert server.calls == 1


def test_reply_without_format(serve: Callable, memory: SemanticMemory) -> None:
    server = serve(lambda call: Reply(content='"Dark red."'))
    answer = OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, memory)
    assert (answer.text, answer.confidence) == ("Dark red", 0.5)


def test_empty_memory_sends_no_images(serve: Callable) -> None:
    server = serve(lambda call: Reply(content=""))
    answer = OpenAIAnswerer(_config(server.base_url)).answer(QUESTION, SemanticMemory())
    assert (answer.text, answer.confidence) == ("unknown", 0.0)
    assert answer.frame_ids == [] and answer.object_ids == []
    parts = server.requests[0]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text"]
    assert "(no objects remembered)" in parts[0]["text"]


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AeqaError, match="ftp://x"):
        OpenAIAnswerer(_config("ftp://x"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("AEQA_NO_KEY", raising=False)
    with pytest.raises(AeqaError, match=r"API key.*\$AEQA_NO_KEY"):
        OpenAIAnswerer(_config("", api_key="", api_key_env="AEQA_NO_KEY"))
    with pytest.raises(AeqaError, match="timeout_s"):
        OpenAIAnswerer(_config("http://127.0.0.1:1/v1", timeout_s=0))


# --- shared context: objects, keyframes, prompt, reply ----------------------------------------


def test_relevant_objects_skip_structure(memory: SemanticMemory, embedder: TextEmbedder) -> None:
    objects = relevant_objects(QUESTION, memory, embedder, limit=5)
    assert [o.category for o in objects] == ["table"]
    assert relevant_objects(QUESTION, memory, embedder, limit=0) == []


def test_select_keyframes(memory: SemanticMemory, embedder: TextEmbedder) -> None:
    table = next(o for o in memory.objects() if o.category == "table")
    frames = select_keyframes(QUESTION, memory, embedder, max_images=5)
    ids = [f.frame_id for f in frames]
    assert len(ids) == 5 == len(set(ids))
    # the table's stored views first, best first, then frames picked by objects shown
    assert ids[:3] == [f for f in table.best_frames if f in memory.keyframes.frames][:3]
    assert select_keyframes(QUESTION, memory, embedder, max_images=0) == []
    assert select_keyframes(QUESTION, SemanticMemory(), embedder, max_images=3) == []


def test_object_list_and_prompt(memory: SemanticMemory) -> None:
    table = next(o for o in memory.objects() if o.category == "table")
    line = object_list_text([table])
    x, y, z = (round(float(v), 1) + 0.0 for v in table.centroid)
    assert line == f"- id {table.object_id}: table, colour {table.color_name}, at ({x}, {y}, {z}) m"
    prompt = build_prompt(QUESTION, [table])
    assert line in prompt and QUESTION in prompt
    assert "Answer:" in prompt and "Confidence:" in prompt


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Answer: red\nConfidence: 0.9", ("red", 0.9)),
        ("answer: 'the kitchen'\nconfidence: 1.7", ("the kitchen", 1.0)),
        ("Answer: blue Confidence: -0.2", ("blue", 0.0)),
        ('**Answer:** "Two chairs."\n**Confidence:** 80%', ("Two chairs", 0.8)),
        ("Answer:\ngreen\nConfidence: .25", ("green", 0.25)),
        ("It is red.", ("It is red", 0.5)),
        ("Confidence: 0.7\nred", ("red", 0.7)),
        ("", ("unknown", 0.0)),
        ("   \n ", ("unknown", 0.0)),
        ("Answer: \nConfidence: 0.9", ("unknown", 0.0)),
        (None, ("unknown", 0.0)),
    ],
)
def test_parse_reply(reply: str | None, expected: tuple[str, float]) -> None:
    text, confidence = parse_reply(reply)
    assert text == expected[0]
    assert confidence == pytest.approx(expected[1])

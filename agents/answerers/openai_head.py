"""The ``openai`` head: any OpenAI-compatible chat-completions endpoint that takes images
(GPT-4o, a vLLM or other local server), reached with the standard library only.

One request per question: ``POST {base_url}/chat/completions`` with a system message and a
user message holding the prompt and the keyframes as ``data:image/png;base64,...`` URLs.
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; other 4xx fail at
once. A server's error body may echo the request's key, so every message built from a response
has the key (and anything that looks like one) redacted (:func:`aeqa.envs.errors.redact`)
before it is logged or raised.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeqa.agents.answerers.base import Answer, AnswererConfig, check_question
from aeqa.agents.answerers.context import SYSTEM_PROMPT, build_context
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.envs.errors import AeqaError, redact, register_secret
from aeqa.mapping.memory import SemanticMemory

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: the longest wait between two tries, whatever the backoff or a Retry-After header says
MAX_BACKOFF_S = 60.0


def resolve_base_url(base_url: str) -> str:
    """The configured base URL, else ``$OPENAI_BASE_URL``, else OpenAI's; no trailing slash.

    Raises:
        AeqaError: the URL is not http(s).
    """
    url = (base_url or os.environ.get("OPENAI_BASE_URL", "") or DEFAULT_BASE_URL).strip()
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AeqaError(
            f"answerer base_url {url!r} is not an http(s) URL; give one such as "
            "http://localhost:8000/v1 or https://api.openai.com/v1"
        )
    return url.rstrip("/")


def png_data_url(rgb: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an (h, w, 3) uint8 RGB image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_request(config: AnswererConfig, prompt: str, images: list[np.ndarray]) -> dict[str, Any]:
    """The chat-completions request body: system + user (the text, then the images, (h, w, 3)
    uint8 RGB, in order)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    content += [{"type": "image_url", "image_url": {"url": png_data_url(rgb)}} for rgb in images]
    return {
        "model": config.model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": content},
        ],
        "temperature": config.temperature,
        "seed": config.seed,
        "max_tokens": config.max_new_tokens,
    }


def reply_text(response: dict[str, Any]) -> str:
    """The assistant's text in a chat-completions response ("" where it gave none).

    Raises:
        AeqaError: the response has no ``choices[0].message``.
    """
    try:
        message = response["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as e:
        raise AeqaError(
            "the chat endpoint's response has no choices[0].message; "
            "point base_url at an OpenAI-compatible /v1 endpoint"
        ) from e
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


@dataclass
class _Failure:
    """Why one try failed, and whether another may succeed."""

    cause: str
    retryable: bool
    status: int = 0
    retry_after_s: float = 0.0


class OpenAIAnswerer:
    """Answers with an OpenAI-compatible chat endpoint.

    Args:
        config: reads ``model``, ``base_url``, ``api_key`` / ``api_key_env``, ``max_images``,
            ``max_new_tokens``, ``temperature``, ``seed``, ``timeout_s``, ``max_retries``,
            ``retry_backoff_s`` and ``embedding_model`` (ranks objects for the keyframes).

    Raises:
        AeqaError: a malformed base URL, or no API key for api.openai.com (at construction).
    """

    name = "openai"

    def __init__(self, config: AnswererConfig) -> None:
        if config.timeout_s <= 0:
            raise AeqaError(f"answerer timeout_s must be positive, got {config.timeout_s}")
        if config.max_retries < 0:
            raise AeqaError(f"answerer max_retries must be 0 or more, got {config.max_retries}")
        self.config = config
        self.base_url = resolve_base_url(config.base_url)
        self.endpoint = f"{self.base_url}/chat/completions"
        self.api_key = config.api_key or os.environ.get(config.api_key_env, "")
        if not self.api_key and urllib.parse.urlparse(self.base_url).hostname == "api.openai.com":
            raise AeqaError(
                f"no API key for {self.base_url}; set ${config.api_key_env} or answerer.api_key"
            )
        register_secret(self.api_key)
        self.embedder = TextEmbedder(config.embedding_model)

    def answer(self, question: str, memory: SemanticMemory) -> Answer:
        """Answer from the keyframes of the relevant objects and the object list."""
        text = check_question(question)
        context = build_context(text, memory, self.embedder, self.config.max_images)
        answer = context.answer(self.ask(context.prompt, [k.rgb for k in context.keyframes]))
        logger.info("%s -> %r (confidence %.2f)", text, answer.text, answer.confidence)
        return answer

    def ask(self, prompt: str, images: list[np.ndarray]) -> str:
        """The model's reply to ``prompt`` with ``images`` ((h, w, 3) uint8 RGB) after it."""
        return reply_text(self.post(chat_request(self.config, prompt, images)))

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the endpoint and return the decoded JSON response.

        Tries at most ``max_retries + 1`` times, waiting ``retry_backoff_s * 2**k`` (or the
        server's Retry-After, at most a minute) between tries.

        Raises:
            AeqaError: the last try failed, or a try failed in a way that retrying cannot fix
                (4xx other than 429, a response that is not JSON).
        """
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        tries = self.config.max_retries + 1
        failure = _Failure("no try was made", retryable=False)
        for attempt in range(tries):
            request = urllib.request.Request(self.endpoint, data=data, headers=headers)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                failure = self._http_failure(e)
            except (OSError, http.client.HTTPException) as e:
                failure = _connection_failure(e, self.config.timeout_s)
            else:
                logger.debug("%s answered in %.2f s", self.endpoint, time.perf_counter() - started)
                return self._decoded(raw)
            if not failure.retryable:
                raise self._error(failure, attempt + 1)
            if attempt + 1 < tries:
                wait_s = min(
                    MAX_BACKOFF_S,
                    max(self.config.retry_backoff_s * 2**attempt, failure.retry_after_s),
                )
                logger.warning(
                    "%s: try %d/%d failed (%s); retrying in %.2f s",
                    self.endpoint,
                    attempt + 1,
                    tries,
                    failure.cause,
                    wait_s,
                )
                time.sleep(wait_s)
        raise self._error(failure, tries)

    def redact(self, text: str) -> str:
        """``text`` without this client's key (or anything else that looks like a key)."""
        return redact(text, (self.api_key,))

    def _decoded(self, raw: bytes) -> dict[str, Any]:
        try:
            response = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AeqaError(
                self.redact(
                    f"{self.endpoint} answered with something that is not JSON ({e}); "
                    "point base_url at an OpenAI-compatible /v1 endpoint"
                )
            ) from e
        if not isinstance(response, dict):
            raise AeqaError(f"{self.endpoint} answered with JSON that is not an object")
        return response

    def _http_failure(self, error: urllib.error.HTTPError) -> _Failure:
        status = int(error.code)
        # Redacted before it is cut short: a cut would leave part of a key unrecognised.
        detail = self.redact(_error_detail(error))[:200]
        cause = self.redact(f"HTTP {status} {error.reason}") + (f": {detail}" if detail else "")
        retry_after_s = 0.0
        header = error.headers.get("Retry-After") if error.headers else None
        if header:
            try:
                retry_after_s = float(header)
            except ValueError:
                retry_after_s = 0.0
        return _Failure(cause, status == 429 or status >= 500, status, retry_after_s)

    def _error(self, failure: _Failure, tries: int) -> AeqaError:
        if failure.status in (401, 403):
            fix = (
                f"check the API key (answerer.api_key or ${self.config.api_key_env}) "
                "and that it may use this model"
            )
        elif failure.status == 404:
            fix = f"check base_url (it should end in /v1) and the model name {self.config.model!r}"
        elif 400 <= failure.status < 500 and failure.status != 429:
            fix = f"check the model name {self.config.model!r} and that it accepts images"
        elif failure.status:
            fix = "the server is failing or rate-limiting; try again later or raise max_retries"
        else:
            fix = "check base_url, that the server is running, and the network"
        plural = "try" if tries == 1 else "tries"
        return AeqaError(
            self.redact(
                f"chat endpoint {self.endpoint} failed after {tries} {plural} "
                f"({failure.cause}); {fix}"
            )
        )


def _connection_failure(error: BaseException, timeout_s: float) -> _Failure:
    """A failed connection, send or read (URLError wraps the socket's error as its reason)."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return _Failure(f"timeout: no answer within {timeout_s:g} s", retryable=True)
    text = str(reason) or type(reason).__name__
    return _Failure(f"connection error: {' '.join(text.split())}", retryable=True)


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body, on one line."""
    try:
        raw = error.read()
    except OSError:
        return ""
    finally:
        error.close()
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
        message = body["error"]["message"] if isinstance(body.get("error"), dict) else body["error"]
        text = str(message)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return " ".join(text[:100_000].split())

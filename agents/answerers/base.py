"""The ``Answerer`` protocol, its records and the factory that picks a head by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from aeqa.envs.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Range
from aeqa.envs.errors import AeqaError
from aeqa.mapping.memory import SemanticMemory

ANSWERERS = ("memory", "hf", "openai")
#: the longest question a head accepts, in characters
MAX_QUESTION_CHARS = 2000


@dataclass
class AnswererConfig:
    """Which head answers, and its options (each head reads the fields it needs)."""

    #: ``memory`` | ``hf`` | ``openai``
    type: str = "memory"
    #: hf: model id or local path; openai: model name on the endpoint
    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    #: hf: ``auto`` | ``cpu`` | ``cuda``
    device: str = "auto"
    #: hf / openai: keyframes sent with the question
    max_images: int = 4
    max_new_tokens: int = 64
    temperature: float = 0.0
    seed: int = 0
    #: openai: endpoint base URL (default from OPENAI_BASE_URL, then api.openai.com)
    base_url: str = ""
    #: openai: the key, or empty to read the environment variable ``api_key_env``
    api_key: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    retry_backoff_s: float = 1.0
    #: memory: sentence-embedding model (a path, or empty for the packaged all-MiniLM-L6-v2)
    embedding_model: str = ""
    #: memory: how similar a question word must be to a category to match it
    match_threshold: float = 0.62

    LIMITS: ClassVar[dict[str, Range]] = {
        "max_images": NON_NEGATIVE,
        "max_new_tokens": AT_LEAST_ONE,
        "temperature": Range(0, 2),
        "seed": NON_NEGATIVE,
        "timeout_s": POSITIVE,
        "max_retries": NON_NEGATIVE,
        "retry_backoff_s": NON_NEGATIVE,
        "match_threshold": FRACTION,
    }


@dataclass
class Answer:
    """An answer with its confidence (0..1) and the evidence it relied on."""

    text: str
    confidence: float
    object_ids: list[int] = field(default_factory=list)
    frame_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "object_ids": list(self.object_ids),
            "frame_ids": list(self.frame_ids),
        }


class Answerer(Protocol):
    """Answers a natural-language question from an episode's memory."""

    name: str

    def answer(self, question: str, memory: SemanticMemory) -> Answer: ...


def check_question(question: str) -> str:
    """The question stripped, or an error for one that is empty or too long."""
    text = " ".join(str(question).split())
    if not text:
        raise AeqaError("the question is empty; ask something about the scene")
    if len(text) > MAX_QUESTION_CHARS:
        raise AeqaError(
            f"the question is {len(text)} characters long; keep it under {MAX_QUESTION_CHARS}"
        )
    return text


def make_answerer(config: AnswererConfig) -> Answerer:
    """Build the head ``config.type`` names, importing only its module."""
    if config.type == "memory":
        from aeqa.agents.answerers.memory_head import MemoryAnswerer

        return MemoryAnswerer(config)
    if config.type == "hf":
        from aeqa.agents.answerers.hf_head import HFAnswerer

        return HFAnswerer(config)
    if config.type == "openai":
        from aeqa.agents.answerers.openai_head import OpenAIAnswerer

        return OpenAIAnswerer(config)
    raise AeqaError(f"unknown answerer {config.type!r}; use one of {', '.join(ANSWERERS)}")

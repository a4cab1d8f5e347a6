"""Judges: each gives a predicted answer a score from 1 (wrong) to 5 (same meaning as a reference).

Two judges behind one :class:`Judge` protocol, built by :func:`make_judge` from a
:class:`JudgeConfig` (the ``openai`` one imports its HTTP client only when chosen):

- ``offline`` (:class:`OfflineJudge`): deterministic rules on normalised text, then sentence-
  embedding similarity. Serves CI and quick checks; it is not a substitute for an LLM judge.
- ``openai`` (:class:`OpenAIJudge`): any OpenAI-compatible chat-completions endpoint (GPT-4o, a
  vLLM server) with our prompt (:data:`JUDGE_PROMPT`) or a prompt file such as OpenEQA's. Its
  model, base URL, seed, temperature and prompt (name and SHA-256) go into :meth:`Judge.info`,
  so a summary says exactly which judge produced it.

Offline rules (each reference, the answer and every ``extra_answers`` entry, is compared on its
own; the best score wins):

1. Normalise both texts: NFKC, lower case, ``can't`` -> ``cannot``, ``n't`` -> `` not``,
   punctuation -> spaces, drop the articles a / an / the, number words zero..twenty and the
   tens -> digits, ``grey`` -> ``gray``.
2. An empty prediction or a "don't know" (:data:`UNKNOWN_ANSWERS`) -> 1.
3. The same normalised text -> 5.
4. A conflict in a closed vocabulary -> 1: both texts name colours, rooms or numbers and share
   none (``red`` vs ``blue``, ``kitchen`` vs ``bedroom``, ``2`` vs ``3``); or the reference is a
   bare yes / no, open / closed or on / off and the prediction names only the other value.
5. One text contained in the other as whole words (and the contained one is not only stop
   words) -> 4 (``in the kitchen`` vs ``kitchen``).
6. Otherwise the cosine similarity ``s`` of all-MiniLM-L6-v2 embeddings of the normalised texts
   (:class:`aeqa.agents.answerers.matching.TextEmbedder`): ``s >= 0.80`` -> 4, ``s >= 0.65`` -> 3,
   ``s >= 0.50`` -> 2, else 1 (:data:`SIMILARITY_THRESHOLDS`). Measured with that model: couch /
   sofa 0.86, ac unit / air conditioning unit 0.82, laptop / computer 0.71, chair / stool 0.60,
   laptop / banana 0.28.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from aeqa.envs.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, validate
from aeqa.envs.errors import AeqaError
from aeqa.evaluation.questions import Question

if TYPE_CHECKING:
    from aeqa.agents.answerers.matching import TextEmbedder
    from aeqa.agents.answerers.openai_head import OpenAIAnswerer

logger = logging.getLogger(__name__)

JUDGES: tuple[str, ...] = ("offline", "openai")
MIN_SCORE = 1
MAX_SCORE = 5


@dataclass(frozen=True)
class JudgeScore:
    """A judge's verdict on one prediction: ``score`` in 1..5 and why."""

    score: int
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not MIN_SCORE <= self.score <= MAX_SCORE:
            raise ValueError(f"a judge score is an integer 1..5, got {self.score!r}")


class Judge(Protocol):
    """Scores a prediction against a question's reference answers."""

    def score(self, question: Question, prediction: str) -> JudgeScore: ...

    def info(self) -> dict[str, Any]:
        """What to record beside the scores: ``type``, ``model``, ``seed``, ``temperature``,
        ``prompt`` (and whatever else pins the judge down)."""
        ...


@dataclass
class JudgeConfig:
    """Which judge scores, and its options (each judge reads the fields it needs)."""

    #: ``offline`` | ``openai``
    type: str = "offline"
    #: openai: the model name on the endpoint (OpenEQA's scorer used gpt-4o)
    model: str = "gpt-4o"
    #: openai: endpoint base URL (default from OPENAI_BASE_URL, then api.openai.com)
    base_url: str = ""
    #: openai: the key, or empty to read the environment variable ``api_key_env``
    api_key: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    #: openai: OpenEQA's evaluate-predictions.py uses seed 1234 and temperature 0.2
    seed: int = 1234
    temperature: float = 0.2
    max_tokens: int = 32
    timeout_s: float = 60.0
    max_retries: int = 3
    retry_backoff_s: float = 1.0
    #: openai: a prompt template file, or empty for :data:`JUDGE_PROMPT`
    prompt_path: str = ""
    #: offline: sentence-embedding model (a path, or empty for the packaged all-MiniLM-L6-v2)
    embedding_model: str = ""

    #: the temperature range of OpenAI's chat API
    LIMITS: ClassVar[dict[str, Range]] = {
        "temperature": Range(0, 2),
        "max_tokens": AT_LEAST_ONE,
        "timeout_s": POSITIVE,
        "max_retries": NON_NEGATIVE,
        "retry_backoff_s": NON_NEGATIVE,
    }


def make_judge(config: JudgeConfig) -> Judge:
    """Build the judge ``config.type`` names.

    Raises:
        AeqaError: an unknown type, a value out of range (``JudgeConfig.LIMITS``), or the
            chosen judge's own option errors.
    """
    validate(config, "judge.")
    if config.type == "offline":
        return OfflineJudge(config.embedding_model)
    if config.type == "openai":
        return OpenAIJudge(
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key,
            api_key_env=config.api_key_env,
            seed=config.seed,
            temperature=config.temperature,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            prompt_path=config.prompt_path or None,
            retry_backoff_s=config.retry_backoff_s,
            max_tokens=config.max_tokens,
        )
    raise AeqaError(f"unknown judge {config.type!r}; use one of {', '.join(JUDGES)}")


# --- the offline judge -------------------------------------------------------------------------

ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS: dict[str, str] = {
    word: str(i)
    for i, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80"}
SPELLINGS: dict[str, str] = {"grey": "gray", "colour": "color", "colours": "colors"}
#: words that alone do not make a contained phrase count (rule 5)
STOP_WORDS = frozenset(
    "in on at of to for by near next it is are and or with there its this that".split()
)
#: normalised predictions that say "no answer" (rule 2)
UNKNOWN_ANSWERS_RAW: tuple[str, ...] = (
    "unknown",
    "I don't know",
    "I do not know",
    "don't know",
    "not sure",
    "I'm not sure",
    "I am not sure",
    "unsure",
    "cannot tell",
    "can't tell",
    "cannot determine",
    "can't determine",
    "no answer",
    "n/a",
)
#: closed vocabularies (rule 4): groups of synonyms; two texts conflict where both name
#: members of a vocabulary and share no group
COLOR_GROUPS: tuple[tuple[str, ...], ...] = (
    ("red", "maroon", "crimson"),
    ("green", "olive"),
    ("blue", "navy"),
    ("yellow",),
    ("white", "off white"),
    ("black",),
    ("gray", "silver"),
    ("brown", "tan", "wood color", "wooden color"),
    ("orange",),
    ("pink",),
    ("purple", "violet", "lavender"),
    ("beige", "cream", "ivory"),
    ("teal", "turquoise", "cyan"),
    ("gold", "golden"),
)
ROOM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("kitchen",),
    ("bedroom", "master bedroom"),
    ("bathroom", "restroom", "washroom", "toilet room"),
    ("living room", "lounge", "family room", "sitting room"),
    ("dining room",),
    ("hallway", "hall", "corridor"),
    ("office",),
    ("garage",),
    ("laundry room", "utility room"),
    ("closet",),
    ("basement",),
    ("balcony", "porch", "patio"),
)
#: bare-word references (rule 4): the prediction conflicts where it names only the other value
STATE_GROUPS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("yes",), ("no",)),
    (("open", "opened"), ("closed", "shut")),
    (("on",), ("off",)),
)
#: (lowest similarity, score), highest first (rule 6)
SIMILARITY_THRESHOLDS: tuple[tuple[float, int], ...] = ((0.80, 4), (0.65, 3), (0.50, 2))

_CANNOT_RE = re.compile(r"\bcan(?:['’]t| not)\b")
_NOT_RE = re.compile(r"n['’]t\b")
_PUNCT_RE = re.compile(r"[^\w\s]|_")


def normalize_answer(text: str) -> str:
    """Lower case, punctuation as spaces, no articles, number words as digits (rule 1)."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = _CANNOT_RE.sub("cannot", text)
    text = _NOT_RE.sub(" not", text)
    tokens = _PUNCT_RE.sub(" ", text).split()
    out = []
    for token in tokens:
        if token in ARTICLES:
            continue
        token = NUMBER_WORDS.get(token, token)
        out.append(SPELLINGS.get(token, token))
    return " ".join(out)


UNKNOWN_ANSWERS = frozenset(normalize_answer(a) for a in UNKNOWN_ANSWERS_RAW)


def _contains(outer: str, inner: str) -> bool:
    """Whether ``inner`` occurs in ``outer`` as whole words."""
    return f" {inner} " in f" {outer} "


def _groups_named(text: str, groups: Iterable[tuple[str, ...]]) -> set[int]:
    """Indices of the groups with a member in ``text`` (normalised)."""
    return {i for i, group in enumerate(groups) if any(_contains(text, t) for t in group)}


def _numbers(text: str) -> set[str]:
    return {t for t in text.split() if t.isdigit()}


def _conflict(reference: str, prediction: str) -> str:
    """Why the two texts contradict each other in a closed vocabulary (rule 4), or ""."""
    for name, groups in (("colour", COLOR_GROUPS), ("room", ROOM_GROUPS)):
        ref, pred = _groups_named(reference, groups), _groups_named(prediction, groups)
        if ref and pred and not ref & pred:
            return f"names another {name} than"
    ref_numbers, pred_numbers = _numbers(reference), _numbers(prediction)
    if ref_numbers and pred_numbers and not ref_numbers & pred_numbers:
        return "names another number than"
    for values in STATE_GROUPS:
        for i, words in enumerate(values):
            if reference in words:
                named = _groups_named(prediction, values)
                if named and i not in named:
                    return "says the opposite of"
    return ""


def _meaningful(text: str) -> bool:
    return any(t not in STOP_WORDS for t in text.split())


def similarity_score(similarity: float) -> int:
    """The score of an embedding similarity by :data:`SIMILARITY_THRESHOLDS` (rule 6)."""
    for lowest, score in SIMILARITY_THRESHOLDS:
        if similarity >= lowest:
            return score
    return MIN_SCORE


class OfflineJudge:
    """Deterministic rules on normalised text, then sentence-embedding similarity (see the
    module docstring for the rules and thresholds). The embedding model loads on first need.

    Args:
        embedding_model: a local all-MiniLM-L6-v2 folder, or "" for the packaged one.
    """

    name = "offline"
    prompt_name = "offline-rules-v1"

    def __init__(self, embedding_model: str = "") -> None:
        self.embedding_model = embedding_model
        self._embedder: TextEmbedder | None = None

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from aeqa.agents.answerers.matching import TextEmbedder

            self._embedder = TextEmbedder(self.embedding_model)
        return self._embedder

    def info(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "model": "all-MiniLM-L6-v2" if not self.embedding_model else self.embedding_model,
            "seed": None,
            "temperature": None,
            "prompt": self.prompt_name,
            "similarity_thresholds": [list(t) for t in SIMILARITY_THRESHOLDS],
        }

    def score(self, question: Question, prediction: str) -> JudgeScore:
        pred = normalize_answer(prediction)
        if not pred or pred in UNKNOWN_ANSWERS:
            return JudgeScore(MIN_SCORE, "no answer")
        references = list(
            dict.fromkeys(
                r for r in map(normalize_answer, [question.answer, *question.extra_answers]) if r
            )
        )
        if not references:
            return JudgeScore(MIN_SCORE, "the question has no reference answer")
        best = JudgeScore(MIN_SCORE, "")
        undecided: list[str] = []
        for ref in references:
            verdict = self._rules(ref, pred)
            if verdict is None:
                undecided.append(ref)
            elif verdict.score > best.score or not best.reason:
                best = verdict
            if best.score == MAX_SCORE:
                return best
        if undecided and best.score < SIMILARITY_THRESHOLDS[0][1]:
            similarities = self.embedder.similarity([pred], undecided)[0]
            k = int(similarities.argmax())
            s = float(similarities[k])
            score = similarity_score(s)
            if score > best.score or not best.reason:
                best = JudgeScore(score, f"embedding similarity {s:.3f} to {undecided[k]!r}")
        return best

    @staticmethod
    def _rules(reference: str, prediction: str) -> JudgeScore | None:
        """Rules 3 to 5 for one reference; None where only the embedding can decide."""
        if prediction == reference:
            return JudgeScore(MAX_SCORE, f"same as {reference!r}")
        conflict = _conflict(reference, prediction)
        if conflict:
            return JudgeScore(MIN_SCORE, f"{conflict} {reference!r}")
        if (_contains(prediction, reference) and _meaningful(reference)) or (
            _contains(reference, prediction) and _meaningful(prediction)
        ):
            return JudgeScore(4, f"contains or is contained in {reference!r}")
        return None


# --- the LLM judge -----------------------------------------------------------------------------

JUDGE_PROMPT_NAME = "aeqa-judge-v1"
#: our system prompt; the user message is :data:`JUDGE_USER_TEMPLATE`
JUDGE_SYSTEM_PROMPT = """\
You grade answers to questions about an indoor scene (a house or an apartment). Compare the \
prediction with the reference answer and the other accepted answers, and rate how well the \
prediction answers the question with the same meaning as one of them:
5 - the same meaning as a reference answer, whatever the wording;
4 - mostly correct: it matches a reference answer with a small difference or extra detail \
that does not contradict it;
3 - partly correct: part of it matches a reference answer, part is missing or wrong;
2 - mostly wrong, but close to a reference answer;
1 - wrong, unrelated, or no answer (such as "unknown" or "I don't know").
Judge the meaning only, not style or length. Answer with exactly one line, "Score: N", where N \
is an integer from 1 to 5, and nothing else."""
JUDGE_USER_TEMPLATE = """\
Question: {question}
Reference answer: {answer}
Other accepted answers: {extra_answers}
Prediction: {prediction}"""
#: placeholders a prompt file must hold (``{extra_answers}`` is optional)
REQUIRED_PLACEHOLDERS: tuple[str, ...] = ("question", "answer", "prediction")
OPTIONAL_PLACEHOLDERS: tuple[str, ...] = ("extra_answers",)

_TAGGED_RE = re.compile(
    r"\b(?:score|mark|rating|grade)\s*(?:\(1\s*-\s*5\))?\s*(?:is|of)?\s*[:=]?\s*[*_\"'`]*\s*(\d+)",
    re.IGNORECASE,
)
_OUT_OF_RE = re.compile(r"\b(\d+)\s*(?:/|out of)\s*5\b", re.IGNORECASE)
_INTEGER_RE = re.compile(r"(?<![\d.])(\d+)(?![\d.])")


def parse_score(reply: str) -> int | None:
    """The 1..5 score in a judge's reply, or None where it holds none.

    Tried in order: the last ``Score: N`` / ``Your mark: N`` (OpenEQA's tag) / ``Rating: N``;
    a reply that is only an integer (markdown and a full stop allowed); ``N/5`` or ``N out of
    5``; the one distinct standalone integer 1..5 in the reply. An integer outside 1..5 found
    by the first three is not a score.
    """
    text = reply.strip()
    tagged = _TAGGED_RE.findall(text)
    if tagged:
        return _in_range(int(tagged[-1]))
    bare = text.strip("*_`'\". \n")
    if bare.isdigit():
        return _in_range(int(bare))
    out_of = _OUT_OF_RE.findall(text)
    if out_of:
        return _in_range(int(out_of[-1]))
    found = {int(n) for n in _INTEGER_RE.findall(text)}
    in_range = {n for n in found if MIN_SCORE <= n <= MAX_SCORE}
    if len(found) == 1 and len(in_range) == 1:
        return in_range.pop()
    return None


def _in_range(value: int) -> int | None:
    return value if MIN_SCORE <= value <= MAX_SCORE else None


@dataclass(frozen=True)
class PromptTemplate:
    """A judge prompt: an optional system message and a user-message template."""

    name: str
    user_template: str
    system: str = ""
    #: how the ``{extra_answers}`` placeholder is filled: ``list`` (Python's list repr, as
    #: OpenEQA's prompts receive them) or ``text`` ("a; b", or "none")
    extra_style: str = "text"

    @property
    def sha256(self) -> str:
        return hashlib.sha256((self.system + "\0" + self.user_template).encode()).hexdigest()

    def messages(self, question: Question, prediction: str) -> list[dict[str, str]]:
        extras = list(question.extra_answers)
        if self.extra_style == "list":
            extra_text = str(extras)
        else:
            extra_text = "; ".join(extras) if extras else "none"
        user = self.user_template.format(
            question=question.question,
            answer=question.answer,
            prediction=prediction,
            extra_answers=extra_text,
        )
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": user}]


DEFAULT_PROMPT = PromptTemplate(JUDGE_PROMPT_NAME, JUDGE_USER_TEMPLATE, JUDGE_SYSTEM_PROMPT)


def load_prompt(path: str | Path) -> PromptTemplate:
    """A prompt file: the whole text is one user message with Python ``str.format``
    placeholders ``{question}``, ``{answer}``, ``{prediction}`` and optionally
    ``{extra_answers}`` (filled with the list of extra answers, as OpenEQA does); write literal
    braces as ``{{`` and ``}}``.

    Raises:
        AeqaError: the file is missing or unreadable, lacks a required placeholder, or has
            another placeholder or an unmatched brace.
    """
    path = Path(path)
    if not path.is_file():
        raise AeqaError(f"{path}: no such judge prompt file; check --judge-prompt")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AeqaError(f"{path}: cannot read the judge prompt file ({e})") from e
    allowed = REQUIRED_PLACEHOLDERS + OPTIONAL_PLACEHOLDERS
    try:
        text.format(**{key: "" for key in allowed})
    except KeyError as e:
        raise AeqaError(
            f"{path}: unknown placeholder {{{e.args[0]}}}; a judge prompt may use "
            f"{', '.join('{' + k + '}' for k in allowed)} (write literal braces as {{{{ }}}})"
        ) from e
    except (ValueError, IndexError) as e:
        raise AeqaError(
            f"{path}: not a valid prompt template ({e}); write literal braces as {{{{ and }}}}"
        ) from e
    missing = [k for k in REQUIRED_PLACEHOLDERS if "{" + k + "}" not in text]
    if missing:
        raise AeqaError(
            f"{path}: the judge prompt lacks {', '.join('{' + k + '}' for k in missing)}; "
            "it must hold {question}, {answer} and {prediction}"
        )
    return PromptTemplate(str(path), text, extra_style="list")


class OpenAIJudge:
    """Scores with an OpenAI-compatible chat-completions endpoint.

    One request per prediction: ``POST {base_url}/chat/completions`` with ``model``, ``seed``,
    ``temperature``, ``max_tokens`` and the prompt's messages. Transport failures (connection
    errors, timeouts, 429, 5xx) are retried with exponential backoff by the ``openai``
    answerer's client (:meth:`aeqa.agents.answerers.openai_head.OpenAIAnswerer.post`); a reply with
    no score (a refusal, prose) is asked again, at most ``max_retries`` more times. Messages built
    from a reply have the key redacted (:func:`aeqa.envs.errors.redact`) before they are logged
    or raised.

    Raises:
        AeqaError: bad options or an unreadable prompt (at construction); an unreachable
            endpoint or no score after the retries (in :meth:`score`).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str = "",
        model: str = "gpt-4o",
        api_key: str = "",
        api_key_env: str = "OPENAI_API_KEY",
        seed: int = 1234,
        temperature: float = 0.2,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        prompt_path: str | Path | None = None,
        retry_backoff_s: float = 1.0,
        max_tokens: int = 32,
    ) -> None:
        if not model:
            raise AeqaError("the judge needs a model name; pass --judge-model")
        if timeout_s <= 0:
            raise AeqaError(f"judge timeout_s must be positive, got {timeout_s}")
        if max_retries < 0:
            raise AeqaError(f"judge max_retries must be 0 or more, got {max_retries}")
        if max_tokens < 1:
            raise AeqaError(f"judge max_tokens must be at least 1, got {max_tokens}")
        self.model = model
        self.seed = int(seed)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.max_retries = int(max_retries)
        self.prompt = load_prompt(prompt_path) if prompt_path else DEFAULT_PROMPT
        self._client = _chat_client(
            base_url, model, api_key, api_key_env, timeout_s, max_retries, retry_backoff_s
        )
        self.base_url = self._client.base_url

    def info(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "seed": self.seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "prompt": self.prompt.name,
            "prompt_sha256": self.prompt.sha256,
        }

    def request(self, question: Question, prediction: str) -> dict[str, Any]:
        """The chat-completions request body for one prediction."""
        return {
            "model": self.model,
            "messages": self.prompt.messages(question, prediction),
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
        }

    def score(self, question: Question, prediction: str) -> JudgeScore:
        from aeqa.agents.answerers.openai_head import reply_text

        body = self.request(question, prediction)
        tries = self.max_retries + 1
        why = ""
        for attempt in range(tries):
            response = self._post(body)
            # Redacted before anything is cut short or logged: the reply may echo the request.
            refusal = self._client.redact(_refusal(response))
            reply = "" if refusal else self._client.redact(reply_text(response))
            value = None if refusal else parse_score(reply)
            if value is not None:
                return JudgeScore(value, " ".join(reply.split())[:200])
            why = refusal[:150] or f"no score 1..5 in the reply {' '.join(reply.split())[:120]!r}"
            logger.warning(
                "judge %s, question %s: try %d/%d: %s",
                self.model,
                question.question_id,
                attempt + 1,
                tries,
                why,
            )
        plural = "try" if tries == 1 else "tries"
        raise AeqaError(
            self._client.redact(
                f"judge {self.model} at {self.base_url} gave no score for question "
                f"{question.question_id} after {tries} {plural} ({why}); check the judge model "
                "and prompt (the reply must hold an integer 1..5, e.g. 'Score: 4')"
            )
        )

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._client.post(body)
        except AeqaError as e:
            raise AeqaError(self._client.redact(f"judge: {e}")) from e


def _refusal(response: dict[str, Any]) -> str:
    """Why the endpoint declined to answer (OpenAI's ``message.refusal``, a content filter),
    or ""."""
    try:
        choice = response["choices"][0]
    except (KeyError, IndexError, TypeError):
        return ""
    if not isinstance(choice, dict):
        return ""
    message = choice.get("message")
    refusal = message.get("refusal") if isinstance(message, dict) else None
    if refusal:
        return f"the model refused: {' '.join(str(refusal).split())}"
    if choice.get("finish_reason") == "content_filter":
        return "the endpoint's content filter blocked the reply"
    return ""


def _chat_client(
    base_url: str,
    model: str,
    api_key: str,
    api_key_env: str,
    timeout_s: float,
    max_retries: int,
    retry_backoff_s: float,
) -> OpenAIAnswerer:
    """The ``openai`` answerer, used only for its HTTP client (``post``, ``base_url``).

    Base URL and key are checked here first so the messages name the judge's options.
    """
    import urllib.parse

    from aeqa.agents.answerers.base import AnswererConfig
    from aeqa.agents.answerers.openai_head import OpenAIAnswerer, resolve_base_url

    try:
        url = resolve_base_url(base_url)
    except AeqaError as e:
        raise AeqaError(
            f"judge base URL {base_url or os.environ.get('OPENAI_BASE_URL', '')!r} is not an "
            "http(s) URL; pass --judge-base-url such as http://localhost:8000/v1"
        ) from e
    key = api_key or os.environ.get(api_key_env, "")
    if not key and urllib.parse.urlparse(url).hostname == "api.openai.com":
        raise AeqaError(f"no API key for the judge at {url}; set ${api_key_env}")
    config = AnswererConfig(
        type="openai",
        model=model,
        base_url=url,
        api_key=key,
        api_key_env=api_key_env,
        timeout_s=float(timeout_s),
        max_retries=int(max_retries),
        retry_backoff_s=float(retry_backoff_s),
    )
    return OpenAIAnswerer(config)


__all__ = [
    "DEFAULT_PROMPT",
    "JUDGES",
    "JUDGE_PROMPT_NAME",
    "JUDGE_SYSTEM_PROMPT",
    "JUDGE_USER_TEMPLATE",
    "SIMILARITY_THRESHOLDS",
    "Judge",
    "JudgeConfig",
    "JudgeScore",
    "OfflineJudge",
    "OpenAIJudge",
    "PromptTemplate",
    "load_prompt",
    "make_judge",
    "normalize_answer",
    "parse_score",
    "similarity_score",
]

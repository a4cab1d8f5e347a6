"""The one exception type for problems a user can cause and fix, and the one redaction of
secrets (API keys, bearer tokens) from any text that is printed, logged or written to a file."""

from __future__ import annotations

import re
import threading

#: what a secret is replaced with
REDACTED = "***"
#: secrets shorter than this are not looked for: replacing a short word everywhere would garble
#: messages, and a key that short protects nothing
MIN_SECRET_CHARS = 8

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers echoed back: "Bearer <token>"
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1" + REDACTED),
    # OpenAI-style keys: sk-..., sk-proj-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), REDACTED),
    # key=value and "key": "value" forms (config overrides, query strings, JSON bodies)
    (
        re.compile(
            r"""((?:api[_-]?key|access[_-]?token|auth[_-]?token)["']?\s*[:=]\s*["']?)"""
            r"""[^\s"',;&}]+""",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
)
_registered: set[str] = set()
_lock = threading.Lock()


class AeqaError(Exception):
    """A bad input (file, pose, option, endpoint): the message names it and says how to fix it.

    The command line prints the message on one line and exits non-zero; a traceback is shown
    only with ``--debug``.
    """


def register_secret(secret: str) -> None:
    """Have every later :func:`redact` in this process hide ``secret`` (an API key in use)."""
    if len(secret) >= MIN_SECRET_CHARS:
        with _lock:
            _registered.add(secret)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with ``secrets``, the registered secrets (:func:`register_secret`), bearer
    tokens, ``sk-...`` keys and ``api_key=...`` values replaced by :data:`REDACTED`.

    Every message that may hold a server's reply or a config value goes through here before it
    is printed, logged or written.
    """
    with _lock:
        known = _registered | {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
    # Longest first, so a key that contains another is replaced whole.
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text

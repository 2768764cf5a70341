"""A dependency-free baseline encoder: hashed word and character n-gram counts.

Not a semantic model -- "film" and "movie" share nothing -- but deterministic, instant and
installed everywhere, which makes it the encoder for smoke tests, CI and a lower bound in
benchmarks ("does a real sentence encoder beat string overlap?"). Features are the words and
the character 3-grams of the lower-cased text, hashed (BLAKE2b) into ``dim`` signed buckets.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from ._base import Encoder

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEncoder(Encoder):
    name = "hashing"

    def __init__(self, dim: int = 256):
        if dim < 2:
            raise ValueError(f"dim must be >= 2, not {dim}")
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def identity(self) -> dict[str, Any]:
        return {"kind": "hashing", "version": 1, "dim": self._dim,
                "features": "words+char3", "hash": "blake2b-8"}

    def _features(self, text: str) -> list[str]:
        low = text.lower()
        words = _WORD.findall(low)
        padded = f" {' '.join(words)} "
        return [f"w:{w}" for w in words] + [f"c:{padded[i:i + 3]}"
                                             for i in range(len(padded) - 2)]

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)             # (n, d)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(),
                                   "little")
                out[row, h % self._dim] += 1.0 if (h >> 63) & 1 else -1.0
        return out

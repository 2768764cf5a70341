"""RQ-KMeans: residual k-means, level by level.

Residual quantization with k-means codebooks, the training-free alternative to TIGER's RQ-VAE
(Rajput et al. 2023); OneRec (Deng et al. 2025) builds its semantic IDs this way (with a
balanced k-means). k-means on the vectors gives level 0; each vector minus its centroid is the
residual that level 1 clusters; and so on::

    r_0 = x;   c_l = argmin_k ||r_l - C_l[k]||^2;   r_{l+1} = r_l - C_l[c_l]
    decode(c) = sum_l C_l[c_l]

Deviations: plain (not size-balanced) k-means: FAISS's ``niter`` Lloyd iterations from a
seeded random pick or k-means++, level ``l`` seeded with ``seed + l``; collisions and
uneven code use are left to the collision strategies. Vectors are used as given (no
normalisation): L2-normalise them first (or use :func:`fuse`) if only direction matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from ..errors import ConfigError, DataError
from ._base import Quantizer, as_vectors
from ._config import TokenizerConfig, check_int
from ._kmeans import INITS, assign, kmeans, squared_distances


@dataclass(frozen=True)
class RQKMeansConfig(TokenizerConfig):
    """``niter``: Lloyd iterations of each level's k-means; ``init``: ``"random"`` or
    ``"k-means++"`` (see :mod:`llmrec.tokenize._kmeans` for when each is better)."""

    niter: int = 20
    init: str = "random"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("niter", self.niter, 1)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, not {self.init!r}")


class RQKMeans(Quantizer):
    """Residual k-means quantizer; ``codebooks`` is (levels, codebook_size, d) after fit."""

    name = "rq-kmeans"
    config_class = RQKMeansConfig
    config: RQKMeansConfig

    def __init__(self, config: RQKMeansConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.codebooks: np.ndarray | None = None

    def fit(self, data: Any) -> Self:
        x = as_vectors(data)
        cfg = self.config
        residual = x.copy()
        books = []
        for level in range(cfg.levels):
            book = kmeans(residual, cfg.codebook_size, seed=cfg.seed + level, niter=cfg.niter,
                          init=cfg.init)
            residual -= book[assign(residual, book)]
            books.append(book)
        self.codebooks = np.stack(books)                       # (L, K, d)
        return self._finish_fit(x)

    def _books(self, x: np.ndarray | None = None) -> np.ndarray:
        if self.codebooks is None:
            raise ConfigError("RQKMeans is not fitted; call fit(X) first")
        if x is not None and x.shape[1] != self.codebooks.shape[2]:
            raise DataError(f"vectors have {x.shape[1]} dimensions, the codebooks "
                            f"{self.codebooks.shape[2]}")
        return self.codebooks

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, L) and the residual entering the last level (n, d)."""
        books = self._books(x)
        residual = x.copy()
        codes = np.empty((len(x), len(books)), dtype=np.int64)
        last_input = residual
        for level, book in enumerate(books):
            last_input = residual.copy()
            codes[:, level] = assign(residual, book)
            residual -= book[codes[:, level]]
        return codes, last_input

    def encode(self, x: Any) -> np.ndarray:
        return self._encode(as_vectors(x))[0]

    def decode(self, codes: Any) -> np.ndarray:
        books = self._books()
        codes = self._check_codes(codes)
        out = np.zeros((len(codes), books.shape[2]), dtype=np.float32)
        for level, book in enumerate(books):
            out += book[codes[:, level]]
        return out

    def last_level_costs(self, x: Any) -> np.ndarray:
        _, last_input = self._encode(as_vectors(x))
        return squared_distances(last_input, self._books()[-1])

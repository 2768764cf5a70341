"""PQ: product quantization of item vectors into one code per sub-space (MOTOR-style).

MOTOR (Zhang et al. 2024, "Learning ID-free Item Representation with Token Crossing for
Multimodal Recommendation", arXiv:2410.19276) replaces item IDs by product-quantized tokens of
the item's content features; VQ-Rec (Hou et al. 2023) does the same for text. Product
quantization (Jegou et al. 2011) splits the d dimensions into ``levels`` sub-spaces and runs
k-means in each::

    x = [x^(0) | x^(1) | ... | x^(L-1)];   c_l = argmin_k ||x^(l) - C_l[k]||^2
    decode(c) = [C_0[c_0] | ... | C_{L-1}[c_{L-1}]]

Unlike residual codes the levels are parallel, not coarse-to-fine: no level is a prefix of
meaning, which matters for trie decoding (every level is equally informative).

Deviations: only the tokenizer is here (MOTOR's token embeddings and Token Cross Network are
a model's business). No rotation is learnt (VQ-Rec uses OPQ), so pass rotated or
PCA-whitened vectors if the sub-spaces are unbalanced. When d is not a multiple of
``levels`` the first ``d % levels`` sub-spaces get one dimension more (``np.array_split``)
instead of refusing, as ``faiss.ProductQuantizer`` does. Any ``codebook_size`` works (FAISS
PQ needs a power of two), since each sub-space uses :func:`kmeans`, level ``l`` seeded with
``seed + l``.
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
class PQConfig(TokenizerConfig):
    """``niter``: Lloyd iterations of each sub-space's k-means; ``init``: ``"random"`` or
    ``"k-means++"``."""

    niter: int = 20
    init: str = "random"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("niter", self.niter, 1)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, not {self.init!r}")


class PQ(Quantizer):
    """Product quantizer; ``codebooks[l]`` is (codebook_size, d_l) after fit."""

    name = "pq"
    config_class = PQConfig
    config: PQConfig

    def __init__(self, config: PQConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.codebooks: list[np.ndarray] | None = None
        self.splits: list[np.ndarray] | None = None

    def fit(self, data: Any) -> Self:
        x = as_vectors(data)
        cfg = self.config
        if x.shape[1] < cfg.levels:
            raise ConfigError(f"PQ with {cfg.levels} levels needs at least {cfg.levels} "
                              f"dimensions; the vectors have {x.shape[1]}")
        self.splits = np.array_split(np.arange(x.shape[1]), cfg.levels)
        self.codebooks = [kmeans(np.ascontiguousarray(x[:, cols]), cfg.codebook_size,
                                 seed=cfg.seed + level, niter=cfg.niter, init=cfg.init)
                          for level, cols in enumerate(self.splits)]
        return self._finish_fit(x)

    def _fitted(self, x: np.ndarray | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self.codebooks is None or self.splits is None:
            raise ConfigError("PQ is not fitted; call fit(X) first")
        d = sum(len(s) for s in self.splits)
        if x is not None and x.shape[1] != d:
            raise DataError(f"vectors have {x.shape[1]} dimensions, the codebooks {d}")
        return self.codebooks, self.splits

    def encode(self, x: Any) -> np.ndarray:
        x = as_vectors(x)
        books, splits = self._fitted(x)
        return np.stack([assign(x[:, cols], book) for book, cols in zip(books, splits)], axis=1)

    def decode(self, codes: Any) -> np.ndarray:
        books, _ = self._fitted()
        codes = self._check_codes(codes)
        return np.concatenate([book[codes[:, level]] for level, book in enumerate(books)],
                              axis=1).astype(np.float32)

    def last_level_costs(self, x: Any) -> np.ndarray:
        x = as_vectors(x)
        books, splits = self._fitted(x)
        return squared_distances(x[:, splits[-1]], books[-1])

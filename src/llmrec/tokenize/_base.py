"""What every tokenizer shares: input checks, the fitted state, the step to :class:`SemanticIds`.

A tokenizer is fitted on one input (item vectors for the quantizers, an item order or a
co-occurrence matrix for the indexing baselines) and then holds, for the items it saw:

- ``codes_``: (n_items, levels) int64 raw codes, collisions not yet resolved;
- ``costs_``: (n_items, codebook_size) float32 squared distance of each item to every codeword
  of its last level (used by the balanced collision strategy), or ``None``;
- ``reconstruction_error_``: squared error of ``decode(encode(X))`` relative to the data
  variance, or ``None`` where nothing decodes;
- ``input_hash_``: SHA-256 of the input arrays.

:meth:`Tokenizer.semantic_ids` resolves collisions and returns the immutable container.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import ConfigError, DataError
from ._collisions import Strategy, collision_rate, resolve
from ._config import TokenizerConfig
from ._diagnostics import code_diagnostics
from ._ids import SemanticIds


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over dtype, shape and bytes of each array (hex)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def as_vectors(x: Any, name: str = "item vectors") -> np.ndarray:
    """Check and convert an (n_items, d) matrix of finite numbers to float32."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n_items, d), got shape "
                        f"{arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contain NaN or infinite values")
    return arr


def fuse(a: Any, b: Any, weights: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """L2-normalise the rows of ``a`` and ``b``, scale them by ``weights``, concatenate.

    The usual way to tokenize text and collaborative signal together: (n, d1), (n, d2) ->
    (n, d1 + d2). Zero rows stay zero.
    """
    a, b = as_vectors(a, "first vectors"), as_vectors(b, "second vectors")
    if len(a) != len(b):
        raise DataError(f"cannot fuse {len(a)} rows with {len(b)} rows")
    if len(weights) != 2 or min(weights) < 0:
        raise ConfigError(f"weights must be two non-negative numbers, not {weights!r}")
    parts = []
    for block, w in zip((a, b), weights):
        norm = np.linalg.norm(block, axis=1, keepdims=True)
        parts.append(block / np.where(norm > 0, norm, 1.0) * np.float32(w))
    return np.concatenate(parts, axis=1).astype(np.float32)


def relative_mse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """``sum (x - x_hat)^2 / sum (x - mean x)^2``: 0 is perfect, 1 is as bad as the mean."""
    err = float(((x.astype(np.float64) - x_hat) ** 2).sum())
    var = float(((x - x.mean(0, dtype=np.float64)) ** 2).sum())
    if var == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / var


class Tokenizer(ABC):
    """Base of every entry in ``TOKENIZERS``: ``Cls(config, **overrides).fit(data)``."""

    name: ClassVar[str]
    config_class: ClassVar[type[TokenizerConfig]] = TokenizerConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: Any) -> None:
        cfg = self.config_class() if config is None else config
        if not isinstance(cfg, self.config_class):
            raise ConfigError(f"{type(self).__name__} takes a {self.config_class.__name__}, "
                              f"not {type(cfg).__name__}")
        if overrides:
            names = {f.name for f in dataclasses.fields(cfg)}
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise ConfigError(f"unknown {self.config_class.__name__} field(s) {unknown}; "
                                  f"known: {sorted(names)}")
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self.codes_: np.ndarray | None = None
        self.costs_: np.ndarray | None = None
        self.reconstruction_error_: float | None = None
        self.input_hash_: str | None = None

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.config.codebook_size,) * self.config.levels

    @abstractmethod
    def fit(self, data: Any) -> Self:
        """Learn the codes of the items in ``data``; sets the fitted attributes."""

    def _check_fitted(self) -> np.ndarray:
        if self.codes_ is None:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(...) first")
        return self.codes_

    def semantic_ids(self, collisions: Strategy = "level") -> SemanticIds:
        """Resolve collisions of the fitted codes and package them with their diagnostics.

        ``collisions``: ``"level"`` appends a disambiguation level (TIGER), ``"balanced"``
        re-assigns the last level within each prefix group greedily, ``"sinkhorn"`` by
        LC-Rec's repeated Sinkhorn-Knopp assignment, ``"none"`` requires the raw codes to be
        unique already.
        """
        raw = self._check_fitted()
        codes, sizes = resolve(raw, self.codebook_sizes, collisions, self.costs_)
        if len(np.unique(codes, axis=0)) != len(codes):  # a bug, not a user error
            raise RuntimeError("collision handling left duplicate code tuples")
        diagnostics = code_diagnostics(codes, sizes)
        diagnostics["collision_rate"] = collision_rate(raw)
        diagnostics["distinct_before"] = len(np.unique(raw, axis=0))
        diagnostics["reconstruction_error"] = self.reconstruction_error_
        return SemanticIds(codes=codes, codebook_sizes=sizes, method=self.name,
                           config=self.config.to_dict(), collisions=collisions,
                           input_hash=self.input_hash_ or "", diagnostics=diagnostics)


class Quantizer(Tokenizer):
    """A tokenizer of item vectors with ``encode`` and ``decode``."""

    @abstractmethod
    def encode(self, x: Any) -> np.ndarray:
        """(n, d) vectors -> (n, levels) int64 codes."""

    @abstractmethod
    def decode(self, codes: Any) -> np.ndarray:
        """(n, levels) codes -> (n, d) float32 reconstruction."""

    @abstractmethod
    def last_level_costs(self, x: Any) -> np.ndarray:
        """(n, d) vectors -> (n, codebook_size) squared distances to the last-level codewords."""

    def _finish_fit(self, x: np.ndarray) -> Self:
        self.input_hash_ = array_hash(x)
        self.codes_ = self.encode(x)
        self.costs_ = self.last_level_costs(x)
        self.reconstruction_error_ = relative_mse(x, self.decode(self.codes_))
        return self

    def _check_codes(self, codes: Any) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.config.levels:
            raise DataError(f"codes must have shape (n, {self.config.levels}), got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer) or (
                codes.size and (codes.min() < 0 or codes.max() >= self.config.codebook_size)):
            raise DataError(f"codes must be integers in [0, {self.config.codebook_size})")
        return codes.astype(np.int64, copy=False)

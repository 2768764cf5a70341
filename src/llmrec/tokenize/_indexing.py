"""Random and sequential indexing, two baselines of "How to Index Item IDs".

Hua et al. 2023, "How to Index Item IDs for Recommendation Foundation Models" (SIGIR-AP):

- random indexing (RID): each item gets a random number, written as tokens; two items may
  share tokens by chance but never the whole ID;
- sequential indexing (SID): items are numbered consecutively in the order they first appear
  in the users' interaction sequences (taken user after user), so items met together get
  numbers that share leading tokens.

Here an ID is a tuple of ``levels`` codes in ``0 .. codebook_size-1`` (the number written in
base ``codebook_size``, most significant code first), so both fit the same trie and models as
semantic IDs. Deviations: the paper writes numbers as decimal strings split by the LLM's
sub-word tokenizer (variable length); here the length is fixed and the base is
``codebook_size``. Random IDs are drawn uniformly among all distinct tuples. For sequential
indexing the caller chooses the order (the paper's user-after-user concatenation, or one
global time order); items that never appear are numbered last, by index. Both are unique by
construction, so ``collisions="none"`` fits them.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from ..errors import ConfigError, DataError
from ._base import Tokenizer, array_hash
from ._config import TokenizerConfig


def to_digits(numbers: np.ndarray, base: int, levels: int) -> np.ndarray:
    """Write non-negative integers (n,) as (n, levels) base-``base`` digits, most significant
    first."""
    out = np.empty((len(numbers), levels), dtype=np.int64)
    rest = np.asarray(numbers, dtype=np.int64).copy()
    for level in range(levels - 1, -1, -1):
        out[:, level] = rest % base
        rest //= base
    return out


def _check_capacity(n: int, cfg: TokenizerConfig) -> None:
    if n > cfg.codebook_size ** cfg.levels:
        raise ConfigError(f"{n} items do not fit in {cfg.levels} levels of {cfg.codebook_size} "
                          f"codes ({cfg.codebook_size ** cfg.levels} tuples); add levels")


class RandomIndexing(Tokenizer):
    """Unique random tuples: ``fit(n_items)`` (or any array with one row per item)."""

    name = "random"

    def fit(self, data: Any) -> Self:
        n = _n_items(data)
        cfg = self.config
        _check_capacity(n, cfg)
        rng = np.random.default_rng(cfg.seed)
        space = cfg.codebook_size ** cfg.levels              # a Python int, never overflows
        if space < 2 ** 62:                                  # numbers without replacement
            codes = to_digits(rng.choice(space, size=n, replace=False), cfg.codebook_size,
                              cfg.levels)
        else:                                                # huge space: redraw duplicates
            codes = rng.integers(0, cfg.codebook_size, size=(n, cfg.levels))
            while True:
                _, first = np.unique(codes, axis=0, return_index=True)
                dup = np.setdiff1d(np.arange(n), first)
                if not len(dup):
                    break
                codes[dup] = rng.integers(0, cfg.codebook_size, size=(len(dup), cfg.levels))
        self.codes_ = codes.astype(np.int64)
        self.input_hash_ = array_hash(np.array([n]))
        return self


class SequentialIndexing(Tokenizer):
    """Items numbered by first appearance: ``fit(sequence)`` or ``fit((sequence, n_items))``.

    ``sequence`` is a 1-D array of item indices in interaction order, repeats allowed.
    """

    name = "sequential"

    def fit(self, data: Any) -> Self:
        if isinstance(data, tuple) and len(data) == 2:
            sequence, n_items = np.asarray(data[0]), int(data[1])
        else:
            sequence, n_items = np.asarray(data), None
        if sequence.ndim != 1 or (len(sequence) and not np.issubdtype(sequence.dtype,
                                                                      np.integer)):
            raise DataError("the sequence must be a 1-D array of item indices")
        if len(sequence) and sequence.min() < 0:
            raise DataError("item indices must be non-negative")
        seen = int(sequence.max()) + 1 if len(sequence) else 0
        n = seen if n_items is None else n_items
        if n < seen or n == 0:
            raise DataError(f"the sequence has item index {seen - 1} but n_items is {n}")
        _check_capacity(n, self.config)
        items, first = np.unique(sequence, return_index=True)
        order = items[np.argsort(first, kind="stable")]              # by first appearance
        unseen = np.setdiff1d(np.arange(n), order)
        rank = np.empty(n, dtype=np.int64)
        rank[np.concatenate([order, unseen]).astype(np.int64)] = np.arange(n)
        self.codes_ = to_digits(rank, self.config.codebook_size, self.config.levels)
        self.input_hash_ = array_hash(sequence.astype(np.int64), np.array([n]))
        return self


def _n_items(data: Any) -> int:
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        n = int(data)
    elif hasattr(data, "__len__"):
        n = len(data)
    else:
        raise DataError(f"random indexing takes a number of items or an array, not {data!r}")
    if n < 1:
        raise DataError("random indexing needs at least one item")
    return n


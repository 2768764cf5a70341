"""The item <-> code-tuple table and the trie of valid tuples for constrained decoding.

Lookups use a mixed-radix key per tuple, ``key = sum_l code_l * prod(sizes[l+1:])``, kept
sorted: a tuple is found and a prefix's items are listed by binary search. The key must fit
in int64, so the product of the codebook sizes must stay below 2**62 (7 levels of 256).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_directory, content_hash, write_json
from ..errors import ConfigError, DataError

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Trie:
    """Valid code tuples as a flat prefix tree (CSR), for constrained decoding.

    Nodes are numbered breadth-first, root 0; node ``v``'s children are
    ``children[indptr[v]:indptr[v+1]]``, reached by the codes ``codes[...]`` (ascending).
    ``item[v]`` is the item of a leaf, -1 elsewhere. Items (0: (0, 1), 1: (0, 2), 2: (3, 1))::

        depth 0          0
                      0/   \\3
        depth 1       1     2
                    1/ \\2   \\1
        depth 2     3   4    5

        indptr   = [0, 2, 4, 5, 5, 5, 5]
        codes    = [0, 3, 1, 2, 1]
        children = [1, 2, 3, 4, 5]
        item     = [-1, -1, -1, 0, 1, 2]
    """

    indptr: np.ndarray
    codes: np.ndarray
    children: np.ndarray
    item: np.ndarray
    depth: int

    def step(self, node: int, code: int) -> int:
        """Child of ``node`` along ``code``, or -1 if no valid tuple continues that way."""
        lo, hi = int(self.indptr[node]), int(self.indptr[node + 1])
        j = lo + int(np.searchsorted(self.codes[lo:hi], code))
        return int(self.children[j]) if j < hi and self.codes[j] == code else -1

    def node(self, prefix: Sequence[int]) -> int:
        """Node reached by ``prefix`` (root for ``()``), or -1 if no item starts with it."""
        v = 0
        for c in prefix:
            v = self.step(v, int(c))
            if v < 0:
                return -1
        return v

    def allowed(self, prefix: Sequence[int]) -> np.ndarray:
        """Codes that may follow ``prefix`` (empty if the prefix is invalid or complete)."""
        v = self.node(prefix)
        return self.codes[self.indptr[v]:self.indptr[v + 1]] if v >= 0 else self.codes[:0]

    def allowed_mask(self, nodes: Sequence[int], width: int) -> np.ndarray:
        """(len(nodes), width) bool mask of the codes allowed at each node (a decoding batch)."""
        mask = np.zeros((len(nodes), width), dtype=bool)
        for row, v in enumerate(nodes):
            if v >= 0:
                mask[row, self.codes[self.indptr[v]:self.indptr[v + 1]]] = True
        return mask

    def to_nested(self) -> dict[int, Any]:
        """Nested dicts ``{code: {code: ... {code: item}}}``."""
        def build(v: int) -> Any:
            if self.item[v] >= 0:
                return int(self.item[v])
            return {int(c): build(int(ch)) for c, ch in
                    zip(self.codes[self.indptr[v]:self.indptr[v + 1]],
                        self.children[self.indptr[v]:self.indptr[v + 1]])}
        return build(0)


@dataclass(frozen=True, eq=False)
class SemanticIds:
    """Unique code tuples per item: ``codes[i]`` is item ``i``'s tuple, level ``l`` in
    ``0 .. codebook_sizes[l]-1``; with the method, config and input hash that made them."""

    codes: np.ndarray
    codebook_sizes: tuple[int, ...]
    method: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    collisions: str = ""
    input_hash: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    _strides: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray = field(init=False, repr=False)
    _sorted_keys: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        sizes = tuple(int(s) for s in self.codebook_sizes)
        if codes.ndim != 2 or codes.shape[1] != len(sizes) or not len(sizes):
            raise DataError(f"codes of shape {codes.shape} do not match codebook sizes {sizes}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise DataError(f"codes must be integers, got {codes.dtype}")
        if min(sizes) < 1 or math.prod(sizes) >= 2 ** 62:
            raise ConfigError(f"codebook sizes {sizes}: each must be >= 1 and their product "
                              "below 2**62")
        codes = codes.astype(np.int64)
        if codes.size and ((codes < 0).any() or (codes >= np.array(sizes)).any()):
            raise DataError(f"codes outside their codebooks {sizes}")
        strides = np.array([math.prod(sizes[i + 1:]) for i in range(len(sizes))], np.int64)
        keys = codes @ strides
        order = np.argsort(keys, kind="stable")
        if len(keys) > 1 and (np.diff(keys[order]) == 0).any():
            raise DataError("code tuples are not unique per item")
        codes.setflags(write=False)
        for name, value in (("codes", codes), ("codebook_sizes", sizes), ("_strides", strides),
                            ("_order", order), ("_sorted_keys", keys[order])):
            object.__setattr__(self, name, value)

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def n_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def token_offsets(self) -> np.ndarray:
        """Start of each level in one shared token vocabulary: ``codes + offsets`` are tokens."""
        return np.concatenate([[0], np.cumsum(self.codebook_sizes)[:-1]]).astype(np.int64)

    @property
    def key(self) -> str:
        """Content hash of what determined these IDs (method, config, strategy, input)."""
        return content_hash({"method": self.method, "config": self.config,
                             "collisions": self.collisions, "input_hash": self.input_hash})

    def codes_of(self, item: int) -> tuple[int, ...]:
        if not 0 <= int(item) < self.n_items:
            raise KeyError(f"item {item} is not in 0..{self.n_items - 1}")
        return tuple(int(c) for c in self.codes[int(item)])

    def _range(self, prefix: Sequence[int]) -> tuple[int, int]:
        p = [int(c) for c in prefix]
        if len(p) > self.n_levels:
            return 0, 0
        if any(not 0 <= c < s for c, s in zip(p, self.codebook_sizes)):
            return 0, 0
        lo = int(np.dot(p, self._strides[:len(p)])) if p else 0
        hi = lo + (int(self._strides[len(p) - 1]) if p else math.prod(self.codebook_sizes))
        return (int(np.searchsorted(self._sorted_keys, lo)),
                int(np.searchsorted(self._sorted_keys, hi)))

    def item_of(self, code_tuple: Sequence[int]) -> int:
        """The item with exactly this tuple; ``KeyError`` if none."""
        start, stop = self._range(code_tuple)
        if len(code_tuple) != self.n_levels or stop - start != 1:
            raise KeyError(f"no item has the code tuple {tuple(code_tuple)}")
        return int(self._order[start])

    def prefix_items(self, prefix: Sequence[int]) -> np.ndarray:
        """Items whose tuple starts with ``prefix``, in code order (``()`` gives all)."""
        start, stop = self._range(prefix)
        return self._order[start:stop].copy()

    def trie(self) -> Trie:
        """The prefix tree of all item tuples (see :class:`Trie`)."""
        s = self.codes[self._order]                              # (n, L) lexicographic
        n, depth = s.shape
        node_of = np.zeros((depth + 1, n), dtype=np.int64)       # node of each row per depth
        parents, codes, kids, count = [], [], [], 1
        for d in range(1, depth + 1):
            new = np.ones(n, dtype=bool)
            new[1:] = (s[1:, :d] != s[:-1, :d]).any(1)
            node_of[d] = count + np.cumsum(new) - 1
            parents.append(node_of[d - 1][new])
            codes.append(s[new, d - 1])
            kids.append(node_of[d][new])
            count += int(new.sum())
        parent = np.concatenate(parents)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=count))])
        item = np.full(count, -1, dtype=np.int64)
        item[node_of[depth]] = self._order
        return Trie(indptr.astype(np.int64), np.concatenate(codes), np.concatenate(kids),
                    item, depth)

    def equals(self, other: SemanticIds) -> bool:
        return (np.array_equal(self.codes, other.codes)
                and self.codebook_sizes == other.codebook_sizes
                and self._meta() == other._meta())

    def _meta(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "method": self.method, "config": self.config,
                "collisions": self.collisions, "codebook_sizes": list(self.codebook_sizes),
                "input_hash": self.input_hash, "n_items": self.n_items,
                "diagnostics": self.diagnostics}

    def save(self, folder: str | Path) -> Path:
        """Write ``codes.npy`` and ``meta.json`` into ``folder`` (replaced atomically)."""
        folder = Path(folder)
        with atomic_directory(folder) as tmp:
            np.save(tmp / "codes.npy", np.ascontiguousarray(self.codes), allow_pickle=False)
            write_json(tmp / "meta.json", self._meta())
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SemanticIds:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            codes = np.load(folder / "codes.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read semantic IDs from {folder}: {exc}; delete the folder "
                            "and run `llmrec tokenize` again") from None
        fields = ("codebook_sizes", "method", "config", "collisions", "input_hash",
                  "diagnostics")
        if (meta.get("format_version") != FORMAT_VERSION or len(codes) != meta.get("n_items")
                or any(f not in meta for f in fields)):
            raise DataError(f"{folder}: unknown format or codes/meta mismatch")
        return cls(codes=codes, codebook_sizes=tuple(meta["codebook_sizes"]),
                   method=meta["method"], config=meta["config"],
                   collisions=meta["collisions"], input_hash=meta["input_hash"],
                   diagnostics=meta["diagnostics"])

"""Raw identifiers <-> dense indices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np


def _natural_order(ids: np.ndarray) -> np.ndarray:
    """Sort numerically when every id is an integer string, else lexicographically."""
    if len(ids) and np.char.isdigit(ids).all():
        return ids[np.argsort(ids.astype(np.int64), kind="stable")]
    return np.sort(ids, kind="stable")


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """An ordered set of raw ids (strings); index ``i`` is the dense id of ``ids[i]``.

    Dense indices run ``0 .. len-1``. Raw ids are always strings, so ``"196"`` and ``196``
    name the same user. Built with :meth:`from_values`, the order is natural (numeric when
    all ids are integers), which keeps index ``i`` next to raw id ``i+1`` for MovieLens.
    """

    ids: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids).astype(str)
        object.__setattr__(self, "ids", ids)
        index = {raw: i for i, raw in enumerate(ids.tolist())}
        if len(index) != len(ids):
            raise ValueError("vocabulary ids must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_values(cls, values: Iterable[object]) -> Vocabulary:
        arr = values if isinstance(values, np.ndarray) else np.asarray(list(values))
        return cls(_natural_order(np.unique(arr.astype(str))))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, raw: object) -> bool:
        return str(raw) in self._index

    def index(self, raw: object) -> int:
        """Dense index of one raw id; ``KeyError`` if unknown."""
        return self._index[str(raw)]

    def lookup(self, raws: Iterable[object], missing: int = -1) -> np.ndarray:
        """Dense indices of many raw ids, ``missing`` where unknown."""
        get = self._index.get
        return np.fromiter((get(str(r), missing) for r in raws), dtype=np.int64)

    def id(self, index: int) -> str:
        return str(self.ids[index])

    def to_raw(self, indices: np.ndarray) -> np.ndarray:
        return self.ids[np.asarray(indices)]

"""General (collaborative) memory: "people who liked X also liked Y" (MemoCRS, Xi et al. 2024).

Mined from the *training split only*: two items co-occur when one user's training history holds
both. A pair is kept when at least ``min_support`` users share it and its lift

    lift(X, Y) = n(X, Y) * n_users / (n(X) * n(Y))

(how much more often they co-occur than if independent) is at least ``min_lift``; each item keeps
its ``per_item`` partners of highest lift. :meth:`GeneralMemory.lines` turns the entries of the
items a conversation is about into at most ``limit`` prompt lines::

    People who liked Star Wars (1977) also liked Return of the Jedi (1983) (212 users, lift 2.4).

Deviation: MemoCRS lets the LLM decide when to retrieve from a general memory of LLM-written
insights; here the memory is statistics, retrieved for the user's liked and latest known items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data import Interactions
from ._catalog import Catalog


@dataclass(frozen=True)
class GeneralMemory:
    """``partners[x]``: ``(y, users, lift)`` of item index ``x``, best lift first."""

    partners: dict[int, tuple[tuple[int, int, float], ...]]
    n_users: int
    min_support: int
    min_lift: float
    per_item: int

    @classmethod
    def from_train(cls, train: Interactions, *, min_support: int = 10, min_lift: float = 1.5,
                   per_item: int = 5) -> GeneralMemory:
        """Mine co-occurrence pairs from ``train`` (pass ``split.train``, nothing else)."""
        from scipy import sparse

        if min_support < 1 or min_lift <= 0 or per_item < 1:
            raise ValueError(f"need min_support >= 1, min_lift > 0, per_item >= 1; got "
                             f"{min_support}, {min_lift}, {per_item}")
        x = sparse.csr_matrix((np.ones(len(train), dtype=np.float32), (train.user, train.item)),
                              shape=(train.n_users, train.n_items))
        x.data[:] = 1.0                                   # duplicates count once per user
        x.sum_duplicates()
        x.data[:] = 1.0
        users = int((np.diff(x.indptr) > 0).sum())
        count = np.asarray(x.sum(axis=0)).ravel()        # (n_items,) users per item
        co = (x.T @ x).tocoo()                            # (n_items, n_items) users per pair
        keep = (co.row != co.col) & (co.data >= min_support)
        r, c, n = co.row[keep], co.col[keep], co.data[keep]
        lift = n * users / (count[r] * count[c])
        good = lift >= min_lift
        r, c, n, lift = r[good], c[good], n[good], lift[good]
        order = np.lexsort((c, -lift, r))                 # by item, then lift desc, then id
        partners: dict[int, list[tuple[int, int, float]]] = {}
        for i in order:
            lst = partners.setdefault(int(r[i]), [])
            if len(lst) < per_item:
                lst.append((int(c[i]), int(n[i]), round(float(lift[i]), 3)))
        return cls({k: tuple(v) for k, v in partners.items()}, users, min_support, min_lift,
                   per_item)

    def settings(self) -> dict[str, float | int]:
        return {"min_support": self.min_support, "min_lift": self.min_lift,
                "per_item": self.per_item, "items": len(self.partners),
                "pairs": sum(len(v) for v in self.partners.values())}

    def pairs(self) -> set[tuple[int, int]]:
        return {(x, y) for x, lst in self.partners.items() for y, _, _ in lst}

    def retrieve(self, items: Sequence[int], limit: int = 5) -> list[tuple[int, int, int, float]]:
        """``(x, y, users, lift)`` for the first seed items that have partners (one line per
        seed, its best partner not itself a seed), at most ``limit``."""
        seeds = list(dict.fromkeys(int(i) for i in items))
        seen = set(seeds)
        out = []
        for x in seeds:
            for y, n, lift in self.partners.get(x, ()):
                if y not in seen:
                    out.append((x, y, n, lift))
                    seen.add(y)
                    break
            if len(out) >= limit:
                break
        return out

    def lines(self, items: Sequence[int], catalog: Catalog, limit: int = 5) -> list[str]:
        """Prompt lines for :meth:`retrieve` (titles, no ids)."""
        return [f"People who liked {catalog.display(x)} also liked {catalog.display(y)} "
                f"({n} users, lift {lift:.1f})." for x, y, n, lift in
                self.retrieve(items, limit)]

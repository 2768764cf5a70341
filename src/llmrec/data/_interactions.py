"""Interactions: who did what when, grouped per user in time order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Interactions:
    """Time-ordered events of every user, stored column-wise in a CSR layout.

    Events are sorted by (user, position in the user's history). ``indptr`` cuts the columns
    into per-user sequences::

        user:      [0, 0, 0, 1, 1, 3]     dense user index (user 2 has no events)
        item:      [5, 2, 9, 2, 7, 1]     dense item index
        timestamp: [10,11,11, 3, 8, 4]
        indptr:    [0, 3, 5, 5, 6]        user u's events are item[indptr[u]:indptr[u+1]]

    ``rating`` is NaN where the source had none. Ties in time are already broken (see
    :mod:`llmrec.data._dataset`), so "the last item" of a user is well defined.
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray
    n_users: int
    n_items: int
    indptr: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        user = np.ascontiguousarray(self.user, dtype=np.int32)
        n = len(user)
        cols = {"item": np.int32, "timestamp": np.int64, "rating": np.float32}
        for name, dtype in cols.items():
            arr = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if len(arr) != n:
                raise ValueError(f"column {name!r} has {len(arr)} rows, user has {n}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if n and (np.any(np.diff(user) < 0) or user[0] < 0 or user[-1] >= self.n_users):
            raise ValueError("interactions must be sorted by user with 0 <= user < n_users")
        if n and (self.item.min() < 0 or self.item.max() >= self.n_items):
            raise ValueError("item index out of range")
        user.setflags(write=False)
        object.__setattr__(self, "user", user)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=self.n_users), out=indptr[1:])
        indptr.setflags(write=False)
        object.__setattr__(self, "indptr", indptr)

    def __len__(self) -> int:
        return len(self.user)

    def sequence(self, user: int) -> np.ndarray:
        """Items of one user in time order."""
        return self.item[self.indptr[user]:self.indptr[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    def select(self, mask: np.ndarray) -> Interactions:
        """The events where ``mask`` is true, order kept."""
        mask = np.asarray(mask, dtype=bool)
        return Interactions(self.user[mask], self.item[mask], self.timestamp[mask],
                            self.rating[mask], self.n_users, self.n_items)

    def positions(self) -> np.ndarray:
        """Position of each event inside its user's sequence (0 = first)."""
        return np.arange(len(self)) - self.indptr[self.user]

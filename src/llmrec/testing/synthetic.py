"""Small synthetic interaction sets with a known answer, for model tests."""

from __future__ import annotations

import numpy as np

from ..data import Interactions


def two_groups(n_users: int = 60, per_group: int = 10, events: int = 6,
               seed: int = 0) -> Interactions:
    """Users ``0..n/2-1`` rate ``events`` random items of ``0..per_group-1``, the others of
    ``per_group..2*per_group-1``; item ``2*per_group`` has no interactions (cold). Timestamps
    in order. A collaborative model separates the groups; nothing in the interactions tells
    items of one group apart."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        base = 0 if u < n_users // 2 else per_group
        users += [u] * events
        items += (base + rng.choice(per_group, events, replace=False)).tolist()
    n = len(users)
    return Interactions(np.array(users), np.array(items), np.arange(n), np.full(n, np.nan),
                        n_users, 2 * per_group + 1)

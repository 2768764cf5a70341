"""Making code tuples unique: TIGER's extra level and LC-Rec's balanced last level.

Two items "collide" when their full code tuples are equal. Two strategies remove collisions:

``"level"`` (TIGER, Rajput et al. 2023, section 3.1): append one level numbering the items
that share a tuple 0, 1, 2, ... (in item-index order). Items without a collision get 0. The
new level's codebook size is the largest collision group (at least 1).

``"balanced"`` (LC-Rec, Zheng et al. 2024, "uniform semantic mapping"): within each group of
items sharing all but the last code, give every item a distinct last code, preferring the
codeword nearest to it. Deviation: LC-Rec re-runs a Sinkhorn-Knopp assignment towards a uniform
code distribution for the colliding items and repeats until no collision is left; here a
greedy capacity-one assignment does it in one pass and is guaranteed to finish: in each
colliding set the item nearest to the shared codeword keeps it, the others take the free
codes of their prefix group in order of increasing distance (ties: lower item, then lower
code). Items that did not collide keep their code. A prefix group with more items than the
last codebook has codes cannot be made unique; that is a :class:`ConfigError`.

``"sinkhorn"`` (LC-Rec's own procedure): the colliding items of a prefix group are spread over
the last codebook by an entropic optimal-transport plan (Sinkhorn-Knopp, Cuturi 2013) between
the items (uniform mass) and the codewords (uniform capacity) with the item-codeword distances
as cost; each item takes the codeword its plan row prefers, among the codes no item of the
group keeps. Items still colliding are re-assigned the same way, up to 50 rounds as LC-Rec
repeats it; whatever still collides after that (rare: ties) gets the greedy assignment above,
so the procedure always finishes. ``epsilon`` (the entropy weight) is relative to the median
cost of the group.

``"none"``: the codes must already be unique (random and sequential indexing are).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ConfigError, DataError

Strategy = Literal["level", "balanced", "sinkhorn", "none"]
STRATEGIES: tuple[str, ...] = ("level", "balanced", "sinkhorn", "none")


def _groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group id of each row (equal rows, equal id) and the size of each group."""
    if rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64), np.array([len(rows)], dtype=np.int64)
    _, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1).astype(np.int64), counts.astype(np.int64)


def collision_rate(codes: np.ndarray) -> float:
    """Share of items whose full tuple is shared with at least one other item."""
    if len(codes) == 0:
        return 0.0
    inverse, counts = _groups(codes)
    return float((counts[inverse] > 1).mean())


def add_disambiguation_level(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Append the within-group rank of each item: (n, L) -> (n, L + 1), new level size."""
    n = len(codes)
    inverse, counts = _groups(codes)
    order = np.argsort(inverse, kind="stable")        # items grouped, item order inside
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[inverse[order]]
    size = int(counts.max()) if n else 1
    return np.concatenate([codes, rank[:, None]], axis=1), max(size, 1)


def _reassign_group(last: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Distinct last codes for one prefix group: (m,), (m, K) -> (m,)."""
    m, k = cost.shape
    new = last.copy()
    # keep, for each used code, the item nearest to it; everybody else moves
    own = cost[np.arange(m), last]
    order = np.lexsort((np.arange(m), own, last))     # by code, then distance, then item
    first = np.ones(m, dtype=bool)
    first[1:] = last[order][1:] != last[order][:-1]
    movers = np.sort(order[~first])
    if len(movers) == 0:
        return new
    taken = np.zeros(k, dtype=bool)
    taken[last[order[first]]] = True
    free = np.flatnonzero(~taken)
    sub = cost[np.ix_(movers, free)]                   # (movers, free codes)
    pairs = np.lexsort((np.tile(free, len(movers)), np.repeat(movers, len(free)),
                        sub.reshape(-1)))
    done = np.zeros(len(movers), dtype=bool)
    used = np.zeros(len(free), dtype=bool)
    left = len(movers)
    for p in pairs:
        i, j = divmod(int(p), len(free))
        if done[i] or used[j]:
            continue
        new[movers[i]] = free[j]
        done[i] = used[j] = True
        left -= 1
        if left == 0:
            break
    return new


def sinkhorn(cost: np.ndarray, epsilon: float = 0.05, iterations: int = 200) -> np.ndarray:
    """Entropic transport plan (m, k) between m items of mass 1/m and k codewords of capacity
    1/k for ``cost`` (m, k): rows sum to 1/m, columns to 1/k (Sinkhorn-Knopp in log space)."""
    m, k = cost.shape
    scale = float(np.median(cost)) or 1.0
    logk = -cost.astype(np.float64) / (epsilon * scale)                  # (m, k)
    log_r, log_c = np.full(m, -np.log(m)), np.full(k, -np.log(k))
    u, v = np.zeros(m), np.zeros(k)
    for _ in range(iterations):
        u = log_r - _logsumexp(logk + v[None, :], axis=1)
        v = log_c - _logsumexp(logk + u[:, None], axis=0)
    return np.exp(logk + u[:, None] + v[None, :])


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _sinkhorn_group(last: np.ndarray, cost: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Distinct last codes for one prefix group by repeated Sinkhorn assignment of the
    colliding items: (m,), (m, K) -> (m,)."""
    new = last.copy()
    for _ in range(rounds):
        values, inverse, counts = np.unique(new, return_inverse=True, return_counts=True)
        movers = np.flatnonzero(counts[inverse.reshape(-1)] > 1)
        if len(movers) == 0:
            return new
        taken = np.zeros(cost.shape[1], dtype=bool)
        taken[np.delete(new, movers)] = True
        free = np.flatnonzero(~taken)
        plan = sinkhorn(cost[np.ix_(movers, free)])                       # (movers, free)
        new[movers] = free[plan.argmax(1)]
    return _reassign_group(new, cost)


def balance_last_level(codes: np.ndarray, codebook_size: int,
                       costs: np.ndarray | None = None, method: str = "greedy") -> np.ndarray:
    """Re-assign the last code within each prefix group so that all tuples are distinct.

    ``costs`` (n, codebook_size): how far each item is from each last-level codeword (lower
    is better); ``None`` treats all codes alike (the lowest free code is taken).
    ``method``: ``"greedy"`` (one capacity-one pass) or ``"sinkhorn"`` (LC-Rec's repeated
    optimal-transport assignment); see the module docstring.
    """
    n = len(codes)
    if costs is None:
        costs = np.zeros((n, codebook_size), dtype=np.float32)
    if costs.shape != (n, codebook_size):
        raise DataError(f"costs must have shape ({n}, {codebook_size}), got {costs.shape}")
    prefix, counts = _groups(codes[:, :-1])
    too_big = np.flatnonzero(counts > codebook_size)
    if len(too_big):
        g = int(too_big[np.argmax(counts[too_big])])
        example = tuple(int(c) for c in codes[np.argmax(prefix == g), :-1])
        raise ConfigError(
            f"balanced assignment impossible: {int(counts[g])} items share the prefix "
            f"{example} but the last level has only {codebook_size} codes "
            f"({len(too_big)} such prefix group(s)); use more levels, a larger codebook_size "
            f"or collisions='level'")
    full, _ = _groups(codes)
    colliding = np.bincount(full)[full] > 1
    out = codes.copy()
    by_prefix = np.argsort(prefix, kind="stable")
    ends = np.cumsum(counts)
    for g in np.unique(prefix[colliding]):
        members = by_prefix[ends[g] - counts[g]:ends[g]]
        group = _sinkhorn_group if method == "sinkhorn" else _reassign_group
        out[members, -1] = group(codes[members, -1], costs[members])
    return out


def resolve(codes: np.ndarray, sizes: tuple[int, ...], strategy: str,
            costs: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Apply a strategy: returns unique (n, L') codes and their codebook sizes."""
    codes = np.asarray(codes, dtype=np.int64)
    if strategy == "level":
        out, extra = add_disambiguation_level(codes)
        return out, (*sizes, extra)
    if strategy in ("balanced", "sinkhorn"):
        method = "greedy" if strategy == "balanced" else "sinkhorn"
        return balance_last_level(codes, sizes[-1], costs, method), tuple(sizes)
    if strategy == "none":
        rate = collision_rate(codes)
        if rate > 0:
            raise DataError(f"{rate:.1%} of items share their code tuple with another item; "
                            f"use collisions='level', 'balanced' or 'sinkhorn'")
        return codes.copy(), tuple(sizes)
    raise ConfigError(f"unknown collision strategy {strategy!r}; choose one of {STRATEGIES}")

"""Descriptive statistics of a data set (``llmrec data info``)."""

from __future__ import annotations

import numpy as np

from ._dataset import Dataset
from ._interactions import Interactions

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


def describe(ds: Dataset) -> dict:
    inter = ds.interactions
    lengths = inter.lengths()
    item_counts = inter.item_counts()
    out: dict = {
        "name": ds.name,
        "source": ds.meta.get("source", ""),
        "interactions": len(inter),
        "users": ds.n_users,
        "items": ds.n_items,
        "density": len(inter) / max(1, ds.n_users * ds.n_items),
        "sequence_length": {f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES},
        "mean_sequence_length": float(lengths.mean()) if len(lengths) else 0.0,
        "item_popularity": {f"p{p}": float(np.percentile(item_counts, p)) for p in PERCENTILES},
        "timestamps": bool(ds.meta.get("timestamps", True)),
        "time_order": ds.meta.get("time_order", "timestamp"),
        "time_range": [int(inter.timestamp.min()), int(inter.timestamp.max())] if len(inter) else [],
    }
    if out["time_order"] == "file":      # "timestamps" are row numbers: no range, no ties
        out["time_range"] = []
    same = _tied_with_next(inter)
    out["same_user_same_timestamp_pairs"] = int(same.sum())
    last = inter.indptr[1:] - 1
    has_two = np.diff(inter.indptr) >= 2
    out["users_with_last_two_tied"] = (
        float((inter.timestamp[last[has_two]] == inter.timestamp[last[has_two] - 1]).mean())
        if has_two.any() else None)
    out["tie_order"] = tie_order_agreement(inter)
    ratings = inter.rating[~np.isnan(inter.rating)]
    if len(ratings):
        values, counts = np.unique(ratings, return_counts=True)
        out["ratings"] = {f"{v:g}": int(c) for v, c in zip(values, counts)}
    out["item_columns"] = ds.item_features.columns
    out["user_columns"] = ds.user_features.columns
    return out


MIN_TIE_USERS = 10


def _tied_with_next(inter: Interactions) -> np.ndarray:
    """For each event but the last: is the next one the same user's at the same timestamp?"""
    return (inter.user[1:] == inter.user[:-1]) & (inter.timestamp[1:] == inter.timestamp[:-1])


def _chance_agreement(n: int) -> float:
    """E[max(K, n - K) / n] for K ~ Binomial(n, 1/2): the agreement of a random order."""
    k = np.arange(n + 1)
    log_pmf = np.concatenate([[0.0], np.cumsum(np.log(n - k[1:] + 1) - np.log(k[1:]))])
    log_pmf -= n * np.log(2)
    return float((np.exp(log_pmf) * np.maximum(k, n - k)).sum() / n)


def tie_order_agreement(inter: Interactions, min_users: int = MIN_TIE_USERS) -> dict:
    """Is the order of a user's same-timestamp events one global item order?

    Over the item pairs that follow each other at one timestamp in at least ``min_users``
    histories: ``agreement`` is the mean share of those users whose order agrees with the
    pair's majority order, ``chance`` what a random order would give for the same pairs (0.62
    for a pair seen in 10 histories, 0.51 in 1,000), ``item_pairs`` their number. Near 1 when
    the source lists every user's items in one fixed order (ML-1M's ``ratings.dat``: 0.95
    against 0.60 by chance), an order a sequential model can learn and that decides which of
    several items rated at the same time is the test one. ``None``s when no pair qualifies.
    """
    same = _tied_with_next(inter)
    a = inter.item[:-1][same].astype(np.int64)
    b = inter.item[1:][same].astype(np.int64)
    a, b = a[a != b], b[a != b]                   # a repeated item carries no order
    pair = np.minimum(a, b) * inter.n_items + np.maximum(a, b)
    _, index, count = np.unique(pair, return_inverse=True, return_counts=True)
    low_first = np.bincount(index, weights=a < b, minlength=len(count))
    sel = count >= min_users
    if not sel.any():
        return {"item_pairs": 0, "agreement": None, "chance": None}
    count, low_first = count[sel], low_first[sel]
    sizes, per_size = np.unique(count, return_counts=True)
    chance = sum(_chance_agreement(int(n)) * m for n, m in zip(sizes, per_size)) / len(count)
    return {"item_pairs": int(len(count)),
            "agreement": float((np.maximum(low_first, count - low_first) / count).mean()),
            "chance": float(chance)}

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
        "time_range": [int(inter.timestamp.min()), int(inter.timestamp.max())] if len(inter) else [],
    }
    same = (inter.user[1:] == inter.user[:-1]) & (inter.timestamp[1:] == inter.timestamp[:-1])
    out["same_user_same_timestamp_pairs"] = int(same.sum())
    last = inter.indptr[1:] - 1
    has_two = np.diff(inter.indptr) >= 2
    out["users_with_last_two_tied"] = float(
        (inter.timestamp[last[has_two]] == inter.timestamp[last[has_two] - 1]).mean()
        if has_two.any() else 0.0)
    pairs, agreement = tie_order_agreement(inter)
    out["tie_order"] = {"item_pairs": pairs, "agreement": agreement}
    ratings = inter.rating[~np.isnan(inter.rating)]
    if len(ratings):
        values, counts = np.unique(ratings, return_counts=True)
        out["ratings"] = {f"{v:g}": int(c) for v, c in zip(values, counts)}
    out["item_columns"] = ds.item_features.columns
    out["user_columns"] = ds.user_features.columns
    return out


def tie_order_agreement(inter: Interactions, min_users: int = 10) -> tuple[int, float | None]:
    """Is the order of same-second events one global item order?

    Over item pairs that follow each other within one second in at least ``min_users``
    histories: the mean share of those users whose order agrees with the pair's majority
    order, with the number of such pairs. About 0.6 when ties are ordered at random; near 1
    when the source lists every user's items in one fixed order (ML-1M's ``ratings.dat``:
    0.95), an order a sequential model can learn and that decides which of several items
    rated in the same second is the test one. ``None`` when no pair qualifies.
    """
    same = (inter.user[1:] == inter.user[:-1]) & (inter.timestamp[1:] == inter.timestamp[:-1])
    a = inter.item[:-1][same].astype(np.int64)
    b = inter.item[1:][same].astype(np.int64)
    a, b = a[a != b], b[a != b]                   # a repeated item carries no order
    pair = np.minimum(a, b) * inter.n_items + np.maximum(a, b)
    _, index, count = np.unique(pair, return_inverse=True, return_counts=True)
    low_first = np.bincount(index, weights=a < b, minlength=len(count))
    sel = count >= min_users
    if not sel.any():
        return 0, None
    return int(sel.sum()), float((np.maximum(low_first, count - low_first)[sel] / count[sel]).mean())

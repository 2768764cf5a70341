"""Descriptive statistics of a data set (``llmrec data info``)."""

from __future__ import annotations

import numpy as np

from ._dataset import Dataset

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
    ratings = inter.rating[~np.isnan(inter.rating)]
    if len(ratings):
        values, counts = np.unique(ratings, return_counts=True)
        out["ratings"] = {f"{v:g}": int(c) for v, c in zip(values, counts)}
    out["item_columns"] = ds.item_features.columns
    out["user_columns"] = ds.user_features.columns
    return out

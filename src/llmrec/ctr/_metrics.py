"""Click-through metrics: AUC, logloss, GAUC -- vectorised, ties handled exactly.

- ``auc``: the probability that a random positive scores above a random negative, ties
  counting one half (Mann-Whitney U from mid-ranks). NaN when one class is absent.
- ``logloss``: mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7].
- ``gauc``: per-user AUC averaged with weights = the user's number of samples, over users that
  have both classes (DIN, Zhou et al. 2018, weighting by impressions); users with one class are
  skipped. NaN when no user has both classes.

All three work on whole arrays; per-user AUCs come from one lexicographic sort, never a loop.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def _midranks(order_keys: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort by ``order_keys`` (np.lexsort order: last key primary) and return (order, rank of
    each sorted position within runs of equal keys, 1-based mid-ranks counted from the start
    of the array)."""
    order = np.lexsort(order_keys)
    sorted_keys = [k[order] for k in order_keys]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in sorted_keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    run = np.cumsum(change) - 1
    ends = np.append(starts[1:], n)
    mid = (starts + ends - 1) / 2.0 + 1.0                       # 1-based mid-rank of each run
    return order, mid[run]


def grouped_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group AUC: (group ids, AUC per group (NaN without both classes), samples per group)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    g = np.asarray(groups).ravel()
    if not (len(y) == len(s) == len(g)):
        raise ValueError("labels, scores and groups need equal lengths")
    ids, gi = np.unique(g, return_inverse=True)
    n = len(y)
    if n == 0:
        return ids, np.zeros(0), np.zeros(0, dtype=np.int64)
    order, mid = _midranks((s, gi), n)                          # sort by group, then score
    gs, ys = gi[order], y[order]
    size = np.bincount(gi, minlength=len(ids))
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = mid - first[gs]                                      # rank within the group
    n_pos = np.bincount(gs, weights=ys, minlength=len(ids))
    n_neg = size - n_pos
    rank_sum = np.bincount(gs, weights=ys * rank, minlength=len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return ids, auc, size


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count 1/2); NaN when a class is missing."""
    y = np.asarray(labels)
    return float(grouped_auc(y, scores, np.zeros(len(y), dtype=np.int8))[1][0]) if len(y) \
        else float("nan")


def gauc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> float:
    """Sample-weighted mean of per-user AUC over users with both classes."""
    _, per_user, size = grouped_auc(labels, scores, users)
    ok = ~np.isnan(per_user)
    if not ok.any():
        return float("nan")
    return float(np.sum(per_user[ok] * size[ok]) / np.sum(size[ok]))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def ctr_metrics(labels: np.ndarray, probs: np.ndarray, users: np.ndarray) -> dict[str, float]:
    """``{"auc", "logloss", "gauc"}`` of predicted click probabilities."""
    return {"auc": auc(labels, probs), "logloss": logloss(labels, probs),
            "gauc": gauc(labels, probs, users)}

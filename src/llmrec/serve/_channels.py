"""Retrieval channels and their fusion (multi-channel retrieval).

Each channel returns up to ``k`` candidate items (dense indices) with its own scores, drawn only
from the items a request allows (not seen, not excluded, passing the filters):

- ``sequential``: the run's model scores every item from the history (for SASRec: the causal
  transformer's last state against the item table); exact top-k. For known users served from
  their stored history the scores were computed once at load (``prestore_users``), as a
  deployed system refreshes user states when histories change; explicit histories run the
  model on the request.
- ``ann``: FAISS search over L2-normalised item vectors with the recency-weighted mean of the
  last ``ann_history`` history items as the query (content similarity; cosine scores).
- ``popularity``: training interaction counts, log-scaled; the cold-start channel.

Fusion: each channel's scores are min-max normalised over its own candidates to [0, 1] (a
channel's best candidate gets 1, its worst 0; a single candidate gets 1), then

    fused(i) = sum_c  w_c * norm_c(i)          (0 for channels that did not retrieve i)

and an item's channel of origin is the channel with the largest term ``w_c * norm_c(i)``.
An empty history leaves only the popularity channel (cold start).

The ANN search is exact for small catalogues (``index = "auto"``, up to 10,000 items: one
product with every item vector is faster there than FAISS HNSW with an id selector) and FAISS
HNSW above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ._artifacts import Artifacts
from ._config import CHANNELS


@dataclass(frozen=True)
class Query:
    history: np.ndarray          # (h,) item indices, oldest first
    allowed: np.ndarray          # (n_items,) bool: items that may be returned
    user: int | None = None      # dense user index when the user is known
    stored: bool = False         # ``history`` is the user's stored history
    scores: np.ndarray | None = None   # (n_items,) the sequential model's scores, if computed


@dataclass(frozen=True)
class Candidates:
    items: np.ndarray            # (m,) item indices, best fused score first
    fused: np.ndarray            # (m,) fused scores
    terms: np.ndarray            # (m, len(CHANNELS)) weighted normalised score per channel
    origin: np.ndarray           # (m,) channel of origin (position in CHANNELS)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (ties: lower index first)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > k:
        part = np.argpartition(-scores[finite], k - 1)[:k]
        finite = finite[part]
    order = np.lexsort((finite, -scores[finite]))
    return finite[order]


def needs_forward(art: Artifacts, q: Query) -> bool:
    """Whether the sequential channel must run the model for ``q`` (not prestored)."""
    return bool(len(q.history)) and not (q.stored and q.user is not None
                                         and art.user_scores is not None)


def sequential_scores(art: Artifacts, requests: list[tuple[np.ndarray, int | None]]
                      ) -> list[np.ndarray]:
    """The model's scores (n_items,) float32 of each ``(history, user)``: one forward for all
    (a batch of right-padded histories gives each history's own scores)."""
    users = [u for _, u in requests]
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(requests)
    known = [k for k, u in enumerate(users) if u is not None]
    for group, ids in ((known, np.array([users[k] for k in known])),
                       ([k for k, u in enumerate(users) if u is None], None)):
        if group:
            with torch.inference_mode():
                scores = art.model.score([requests[k][0] for k in group], ids).numpy()
            for row, k in enumerate(group):
                out[k] = scores[row].copy()                              # (n_items,)
    return out


def sequential(art: Artifacts, q: Query, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not len(q.history):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if q.scores is not None:
        scores = q.scores.copy()
    elif not needs_forward(art, q):
        scores = art.user_scores[q.user].astype(np.float32)              # prestored, a copy
    else:
        scores = sequential_scores(art, [(q.history, q.user)])[0]         # (n_items,)
    scores[~q.allowed] = -np.inf
    top = _top(scores, k)
    return top, scores[top]


def ann_query(art: Artifacts, history: np.ndarray) -> np.ndarray:
    """(1, d) float32: recency-weighted mean of the last ``ann_history`` item vectors."""
    recent = history[-art.config.ann_history:]
    weights = np.arange(1, len(recent) + 1, dtype=np.float32)            # newest weighs most
    q = (weights[:, None] * art.vectors[recent]).sum(0, keepdims=True)   # (1, d)
    norm = np.linalg.norm(q)
    return q / norm if norm > 0 else q


def search(art: Artifacts, query: np.ndarray, k: int, allowed: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items by inner product with ``query`` (1, d) among ``allowed`` items (None =
    all): exact (``art.index`` None: one product with every item vector) or FAISS HNSW."""
    k = min(k, art.n_items)
    if art.index is None:
        scores = art.vectors @ query[0]                                  # (n_items,)
        if allowed is not None:
            scores[~allowed] = -np.inf
        top = _top(scores, k)
        return top, scores[top]
    import faiss

    params = None
    if allowed is not None and not allowed.all():
        if not allowed.any():
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(art.n_items, faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(
            art.config.hnsw_ef_search, k))
    else:
        params = faiss.SearchParametersHNSW(efSearch=max(art.config.hnsw_ef_search, k))
    scores, items = art.index.search(np.ascontiguousarray(query, dtype=np.float32), k,
                                     params=params)
    keep = items[0] >= 0
    return items[0][keep].astype(np.int64), scores[0][keep]


def ann(art: Artifacts, q: Query, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not len(q.history):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return search(art, ann_query(art, q.history), k, q.allowed)


def popularity(art: Artifacts, q: Query, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = art.popularity_order                          # most popular first, ties by index
    top = order[q.allowed[order]][:k]
    return top, art.log_popularity[top]


CHANNEL_FUNCS = {"sequential": sequential, "ann": ann, "popularity": popularity}


def _normalise(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if hi <= lo else (scores - lo) / (hi - lo)


Part = tuple[int, np.ndarray, np.ndarray]      # (channel position, items (k,), raw scores (k,))


def channel_outputs(art: Artifacts, q: Query, weights: dict[str, float], k: int) -> list[Part]:
    """Run every channel with a positive weight: its top-``k`` items and raw scores."""
    parts: list[Part] = []
    for c, name in enumerate(CHANNELS):
        if weights.get(name, 0.0) > 0:
            items, scores = CHANNEL_FUNCS[name](art, q, k)
            if len(items):
                parts.append((c, items, scores))
    return parts


def fuse(parts: list[Part], weights: dict[str, float]) -> Candidates:
    """Weighted sum of min-max normalised channel scores (module docstring)."""
    if not parts:
        return Candidates(np.zeros(0, np.int64), np.zeros(0, np.float32),
                          np.zeros((0, len(CHANNELS)), np.float32), np.zeros(0, np.int64))
    items, where = np.unique(np.concatenate([p[1] for p in parts]), return_inverse=True)
    raw = np.full((len(items), len(CHANNELS)), -1.0, np.float32)   # (m, C), -1 = missed
    offset = 0
    for c, its, scores in parts:
        raw[where[offset:offset + len(its)], c] = weights[CHANNELS[c]] * _normalise(scores)
        offset += len(its)
    origin = raw.argmax(1)                     # a retrieved term >= 0 beats a miss (-1)
    terms = np.maximum(raw, 0.0)
    fused = terms.sum(1)
    order = np.lexsort((items, -fused))
    return Candidates(items[order], fused[order], terms[order], origin[order])


def retrieve(art: Artifacts, q: Query, weights: dict[str, float], k: int,
             seq_scores: np.ndarray | None = None) -> Candidates:
    """Run every channel with a positive weight and fuse (module docstring); ``seq_scores``
    (n_items,): the sequential model's scores of ``q``, if already computed."""
    if seq_scores is not None:
        q = replace(q, scores=seq_scores)
    return fuse(channel_outputs(art, q, weights, k), weights)

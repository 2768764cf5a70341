"""Beyond-accuracy metrics of top-K lists: coverage, Gini, novelty, intra-list diversity, ARP.

All are computed from the same top-K lists (``(U, K)`` item indices, ``-1`` where a list is
shorter than K because fewer items were left unmasked) as the accuracy metrics of the same
evaluation. With ``c_i`` = how many lists recommend item ``i`` among the ``N`` catalogue items,
``pop_i`` = training interactions of item ``i``, ``users_i`` = distinct training users of item
``i`` and ``n_users`` = users with training events:

- ``coverage@K`` = #{i : c_i > 0} / N  -- catalogue coverage (Ge et al., RecSys 2010).
- ``gini@K`` = sum_j (2j - N - 1) c_(j) / (N sum_j c_j), ``c_(j)`` sorted ascending over *all*
  N items (zeros included): 0 = every item recommended equally often, -> 1 = all
  recommendations on one item (Fleder & Hosanagar 2009; Adomavicius & Kwon 2012).
- ``novelty@K`` = mean over lists of the mean self-information ``-log2(users_i / n_users)`` of
  their items (Zhou et al., PNAS 2010); an item without training users counts as one user.
- ``arp@K`` = mean over lists of the mean ``pop_i`` of their items (average recommendation
  popularity, Abdollahpouri et al. 2019).
- ``ild@K`` = mean over lists of the mean pairwise Jaccard distance ``1 - |G_a & G_b| /
  |G_a | G_b|`` of the items' genre sets (Ziegler et al. 2005, intra-list diversity); pairs with
  an item of unknown genres are left out (unknown is not "different"). Needs genres.
- ``ild_vec@K`` = the same with the cosine distance ``1 - cos(v_a, v_b)`` of item vectors (the
  model's item embeddings, where it has them).

Per-list values (novelty, arp, ild, ild_vec) are also returned per case so they can be tested
over users; a list with no item (or no scorable pair) is NaN and left out of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

PER_CASE = ("novelty", "arp", "ild", "ild_vec")
BEYOND = ("coverage", "gini", "novelty", "arp", "ild", "ild_vec")


@dataclass(frozen=True)
class Catalogue:
    """What beyond-accuracy metrics know about items; row ``i`` describes item index ``i``."""

    popularity: np.ndarray                  # (N,) training interactions per item
    user_popularity: np.ndarray             # (N,) distinct training users per item
    n_users: int                            # users with training events
    genres: np.ndarray | None = None        # (N, G) bool: item i has genre g
    vectors: np.ndarray | None = None       # (N, D) float item vectors

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    @classmethod
    def from_training(cls, user: np.ndarray, item: np.ndarray, n_items: int,
                      genres: Sequence[Sequence[str] | None] | None = None,
                      vectors: np.ndarray | None = None) -> Catalogue:
        """From training events (``user``/``item`` index arrays), optional genre lists (one per
        item, ``None`` or empty = unknown) and optional item vectors."""
        user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
        pairs = np.unique(user * n_items + item)
        return cls(np.bincount(item, minlength=n_items),
                   np.bincount(pairs % n_items, minlength=n_items),
                   int(len(np.unique(user))),
                   None if genres is None else genre_matrix(genres),
                   None if vectors is None else np.asarray(vectors, np.float32))


def genre_matrix(genres: Sequence[Sequence[str] | None]) -> np.ndarray | None:
    """One genre list per item -> (N, G) bool; ``None`` when no item has a genre."""
    names = sorted({g for gs in genres if gs for g in gs})
    if not names:
        return None
    col = {g: j for j, g in enumerate(names)}
    rows = np.repeat(np.arange(len(genres)), [len(gs or ()) for gs in genres])
    cols = np.fromiter((col[g] for gs in genres if gs for g in gs), dtype=np.int64,
                       count=len(rows))
    out = np.zeros((len(genres), len(names)), dtype=bool)
    out[rows, cols] = True
    return out


def top_k_lists(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N) scores -> (B, k) item indices, best first; ties go to the lower index (as
    ``Recommender.recommend``); masked (``-inf``) items become ``-1``."""
    k = min(k, scores.shape[1])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    finite = torch.isfinite(scores.gather(1, order))
    return torch.where(finite, order, torch.full_like(order, -1))


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = equal; all zeros -> 0)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * x).sum() / (n * total))


def _pairwise_mean(dist: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Mean of dist[u, a, b] over pairs a < b with ok[u, a, b]; NaN where there is none."""
    k = dist.shape[1]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    ok = ok & upper
    n = ok.sum((1, 2))
    total = np.where(ok, dist, 0.0).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _chunks(n_rows: int, per_row: int, budget: int = 1 << 23):
    step = max(1, budget // max(1, per_row))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _ild_genres(lists: np.ndarray, genres: np.ndarray) -> np.ndarray:
    out = np.empty(len(lists))
    k = lists.shape[1]
    g = genres.astype(np.float32)
    for s in _chunks(len(lists), k * k * max(1, g.shape[1])):
        idx = lists[s]
        valid = idx >= 0
        gl = g[np.where(valid, idx, 0)] * valid[..., None]          # (U, k, G)
        inter = np.einsum("ukg,ulg->ukl", gl, gl)                   # (U, k, k)
        size = gl.sum(-1)                                           # (U, k)
        union = size[:, :, None] + size[:, None, :] - inter
        known = size > 0
        ok = known[:, :, None] & known[:, None, :]
        dist = 1.0 - inter / np.where(union > 0, union, 1.0)
        out[s] = _pairwise_mean(dist, ok)
    return out


def _ild_vectors(lists: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    out = np.empty(len(lists))
    k = lists.shape[1]
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norm > 0, norm, 1.0)
    for s in _chunks(len(lists), k * max(k, unit.shape[1])):
        idx = lists[s]
        valid = idx >= 0
        vl = unit[np.where(valid, idx, 0)]                          # (U, k, D)
        cos = np.einsum("ukd,uld->ukl", vl, vl)                     # (U, k, k)
        ok = valid[:, :, None] & valid[:, None, :]
        out[s] = _pairwise_mean(1.0 - cos, ok)
    return out


def beyond_accuracy(lists: np.ndarray, catalogue: Catalogue, ks: Sequence[int]
                    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Aggregate and per-case beyond-accuracy metrics of ``(U, >= max(ks))`` top lists."""
    lists = np.asarray(lists, dtype=np.int64)
    n = catalogue.n_items
    info = -np.log2(np.maximum(catalogue.user_popularity, 1) / max(catalogue.n_users, 1))
    pop = catalogue.popularity.astype(np.float64)
    agg: dict[str, float] = {}
    per: dict[str, np.ndarray] = {}
    for k in ks:
        top = lists[:, :k]
        valid = top >= 0
        safe = np.where(valid, top, 0)
        n_valid = valid.sum(1)
        counts = np.bincount(top[valid], minlength=n)
        agg[f"coverage@{k}"] = float((counts > 0).sum() / n) if n else 0.0
        agg[f"gini@{k}"] = gini(counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            per[f"novelty@{k}"] = np.where(valid, info[safe], 0).sum(1) / n_valid
            per[f"arp@{k}"] = np.where(valid, pop[safe], 0).sum(1) / n_valid
        if catalogue.genres is not None:
            per[f"ild@{k}"] = _ild_genres(top, catalogue.genres)
        if catalogue.vectors is not None:
            per[f"ild_vec@{k}"] = _ild_vectors(top, catalogue.vectors)
        for name in PER_CASE:
            key = f"{name}@{k}"
            if key in per:
                values = per[key][~np.isnan(per[key])]
                agg[key] = float(values.mean()) if len(values) else float("nan")
    return agg, per

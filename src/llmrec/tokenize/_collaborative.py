"""Collaborative indexing (CID) of "How to Index Item IDs": hierarchical spectral clustering.

Hua et al. 2023, "How to Index Item IDs for Recommendation Foundation Models" (SIGIR-AP):
build the item co-occurrence graph (two items are linked as often as some user interacted with
both), split it into ``N`` clusters by spectral clustering, and split each cluster again,
recursively, until a cluster has at most ``N`` items; an item's ID is the path of cluster
numbers, ending with its number inside the last cluster. Items often consumed together share
leading codes.

Spectral clustering per node (Ng, Jordan and Weiss 2001): ``S = D^-1/2 A D^-1/2`` of the
node's sub-graph, its top ``min(codebook_size, spectral_dim)`` eigenvectors (rows
L2-normalised), then k-means (k-means++ seeding, as in scikit-learn's ``SpectralClustering``
that the authors used) into ``codebook_size`` clusters. A node with at most ``codebook_size``
items numbers them 0, 1, ... (in index order) at this level and pads deeper levels with 0.

Deviations: the depth is fixed at ``levels`` (the paper's IDs vary in length); items still
sharing a tuple at the last level are separated by the collision strategy, and the balanced
one uses distances to the last level's k-means centroids. Eigenvectors come from seeded
subspace iteration on ``(I + S) / 2`` (``power_iters`` steps, then Rayleigh-Ritz) instead of
ARPACK, and NJW's one eigenvector per cluster is capped at ``spectral_dim`` (default 32): a
dense eigendecomposition of ML-1M's 3,706 items takes ~10 s on two cores, this well under
one. The co-occurrence matrix is dense (n_items^2 floats): fine up to ~20k items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from ..errors import DataError
from ._base import Tokenizer, array_hash
from ._config import TokenizerConfig, check_int
from ._kmeans import assign, kmeans, squared_distances


@dataclass(frozen=True)
class CollaborativeConfig(TokenizerConfig):
    """``spectral_dim`` eigenvectors per split, ``power_iters`` subspace iterations, ``niter``
    k-means iterations."""

    spectral_dim: int = 32
    power_iters: int = 30
    niter: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("spectral_dim", self.spectral_dim, 1)
        check_int("power_iters", self.power_iters, 1)
        check_int("niter", self.niter, 1)


def cooccurrence(users: Any, items: Any, n_items: int | None = None,
                 chunk: int = 2048) -> np.ndarray:
    """Item-item co-occurrence counts from (user, item) index arrays: (n_items, n_items),
    diagonal 0. Repeated (user, item) pairs count once."""
    u, i = np.asarray(users), np.asarray(items)
    if u.shape != i.shape or u.ndim != 1 or not len(u):
        raise DataError("users and items must be non-empty 1-D arrays of equal length")
    if not (np.issubdtype(u.dtype, np.integer) and np.issubdtype(i.dtype, np.integer)):
        raise DataError("users and items must be integer indices")
    if u.min() < 0 or i.min() < 0:
        raise DataError("user and item indices must be non-negative")
    n = int(i.max()) + 1 if n_items is None else int(n_items)
    if i.max() >= n:
        raise DataError(f"item index {int(i.max())} >= n_items {n}")
    pairs = np.unique(np.stack([u, i], 1).astype(np.int64), axis=0)
    users_sorted, bounds = np.unique(pairs[:, 0], return_index=True)
    bounds = np.append(bounds, len(pairs))
    out = np.zeros((n, n), dtype=np.float32)
    for start in range(0, len(users_sorted), chunk):   # (chunk users, n items) blocks
        stop = min(start + chunk, len(users_sorted))
        rows = np.repeat(np.arange(stop - start), np.diff(bounds[start:stop + 1]))
        block = np.zeros((stop - start, n), dtype=np.float32)
        block[rows, pairs[bounds[start]:bounds[stop], 1]] = 1.0
        out += block.T @ block
    np.fill_diagonal(out, 0.0)
    return out


def _orthonormal(b: np.ndarray) -> np.ndarray:
    """Orthonormal basis of b's columns through its Gram matrix (b^T b = V W V^T, q = b V
    W^-1/2): only matmuls and a small eigh, which stay fast on a busy two-core machine where
    multi-threaded LAPACK QR of a tall matrix can stall for tenths of a second."""
    w, v = np.linalg.eigh(b.T.astype(np.float64) @ b)
    w = np.maximum(w, 1e-12 * max(float(w.max()), 1e-30))
    return (b @ (v / np.sqrt(w)).astype(np.float32)).astype(np.float32)


def spectral_embedding(adj: np.ndarray, dim: int, iters: int, seed: int) -> np.ndarray:
    """Rows of the top-``dim`` eigenvectors of the normalised adjacency, L2-normalised."""
    m = len(adj)
    deg = adj.sum(1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    s = (adj * inv[:, None] * inv[None, :] + np.eye(m, dtype=np.float32)) / 2  # eigs in [0, 1]
    k = min(dim, m)
    q = _orthonormal(np.random.default_rng(seed).standard_normal((m, min(k + 8, m)))
                     .astype(np.float32))
    for _ in range(iters):
        q = _orthonormal(s @ q)
    w, v = np.linalg.eigh(q.T @ s @ q)                   # Rayleigh-Ritz
    emb = (q @ v[:, np.argsort(w)[::-1][:k]]).astype(np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norm > 0, norm, 1.0)


class CollaborativeIndexing(Tokenizer):
    """Hierarchical spectral clustering of the co-occurrence graph.

    ``fit(matrix)`` with a square (n_items, n_items) co-occurrence or adjacency matrix (NumPy
    or anything with ``.toarray()``, e.g. scipy.sparse), or ``fit((users, items))`` /
    ``fit((users, items, n_items))`` with interaction index arrays.
    """

    name = "collaborative"
    config_class = CollaborativeConfig
    config: CollaborativeConfig

    def fit(self, data: Any) -> Self:
        if isinstance(data, tuple):
            adj = cooccurrence(*data)
        else:
            adj = np.asarray(data.toarray() if hasattr(data, "toarray") else data)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or not len(adj):
            raise DataError(f"the co-occurrence matrix must be square, got shape {adj.shape}")
        adj = adj.astype(np.float32)
        if not np.isfinite(adj).all() or (adj < 0).any():
            raise DataError("co-occurrence weights must be finite and non-negative")
        adj = (adj + adj.T) / 2
        cfg = self.config
        n, k = len(adj), cfg.codebook_size
        codes = np.zeros((n, cfg.levels), dtype=np.int64)
        costs = np.zeros((n, k), dtype=np.float32)
        nodes = [np.arange(n)]
        for level in range(cfg.levels):
            children = []
            for members in nodes:
                if len(members) <= k:                   # small node: number the items
                    codes[members, level] = np.arange(len(members))
                    continue
                seed = cfg.seed + level * 1_000_003 + int(members[0])
                emb = spectral_embedding(adj[np.ix_(members, members)],
                                         min(k, cfg.spectral_dim),
                                         cfg.power_iters, seed)
                centroids = kmeans(emb, k, seed=seed, niter=cfg.niter, init="k-means++")
                labels = assign(emb, centroids)
                codes[members, level] = labels
                if level == cfg.levels - 1:
                    costs[members] = squared_distances(emb, centroids)
                order = np.argsort(labels, kind="stable")
                bounds = np.flatnonzero(np.diff(labels[order])) + 1
                children.extend(np.split(members[order], bounds))
            nodes = children
        self.codes_, self.costs_ = codes, costs
        self.input_hash_ = array_hash(adj)
        return self

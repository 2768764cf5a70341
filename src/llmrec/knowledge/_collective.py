"""Collective extraction (REKI): cluster users by training behaviour, one LLM call per cluster.

A user's behaviour vector is built from their training events only (a
:class:`~llmrec.knowledge._history.TrainHistory`), three blocks, each L2-normalised:

- genre shares: the fraction of the user's training items in each genre;
- decade shares (weight 0.5): the same over release decades;
- a rank-``dims`` embedding of the binary user x item training matrix (randomized SVD),
  which separates users who watch the same items beyond what genres say.

k-means in NumPy (k-means++ seeding, Lloyd iterations, one seed): for a few thousand users
and a few dozen dimensions this takes well under a second, so no FAISS is needed here.
Empty clusters are dropped; users without training events belong to no cluster.
"""

from __future__ import annotations

import logging

import numpy as np

from ._history import TrainHistory

log = logging.getLogger(__name__)

MAX_DENSE_CELLS = 50_000_000   # above this the SVD block is left out (dense user x item)


def _shares(history: TrainHistory, users: np.ndarray, labels: list[list[str]]) -> np.ndarray:
    vocab = sorted({v for row in labels for v in row})
    if not vocab:
        return np.zeros((len(users), 0), np.float32)
    col = {v: j for j, v in enumerate(vocab)}
    out = np.zeros((len(users), len(vocab)), np.float32)
    for r, u in enumerate(users.tolist()):
        for i in history.items(u).tolist():
            for v in labels[i]:
                out[r, col[v]] += 1.0
    return out / np.maximum(out.sum(1, keepdims=True), 1.0)


def _svd_block(history: TrainHistory, users: np.ndarray, dims: int, seed: int) -> np.ndarray:
    n_items = history.train.n_items
    if len(users) * n_items > MAX_DENSE_CELLS or dims <= 0:
        log.info("collective: %d x %d matrix too large for the SVD block; genres only",
                 len(users), n_items)
        return np.zeros((len(users), 0), np.float32)
    x = np.zeros((len(users), n_items), np.float32)   # (U, I) binary training matrix
    for r, u in enumerate(users.tolist()):
        x[r, history.items(u)] = 1.0
    rng = np.random.default_rng(seed)
    k = min(dims, min(x.shape) - 1)
    if k < 1:
        return np.zeros((len(users), 0), np.float32)
    q, _ = np.linalg.qr(x @ rng.standard_normal((n_items, k + 8)).astype(np.float32))
    for _ in range(2):                                 # power iterations
        q, _ = np.linalg.qr(x @ (x.T @ q))
    u_small, s, _ = np.linalg.svd(q.T @ x, full_matrices=False)
    return (q @ u_small[:, :k]) * s[:k]               # (U, k)


def _l2(block: np.ndarray) -> np.ndarray:
    return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)


def behaviour_vectors(history: TrainHistory, users: np.ndarray, dims: int = 16,
                      seed: int = 0) -> np.ndarray:
    """(len(users), D) float32 behaviour vectors (see the module docstring)."""
    decades = [[d] if d else [] for d in history.decades]
    blocks = [_l2(_shares(history, users, history.genres)),
              0.5 * _l2(_shares(history, users, decades)),
              _l2(_svd_block(history, users, dims, seed))]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Cluster label per row of ``x`` (n, d): k-means++ seeding, then Lloyd iterations."""
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        j = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres.append(x[j])
        d2 = np.minimum(d2, ((x - x[j]) ** 2).sum(1))
    c = np.stack(centres)
    labels = np.full(n, -1)
    for _ in range(iters):
        dist = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]   # (n, k)
        new = dist.argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
    return labels


def cluster_users(history: TrainHistory, n_clusters: int, seed: int = 0, dims: int = 16,
                  users: np.ndarray | None = None) -> list[np.ndarray]:
    """Member user indices of each non-empty cluster of ``users`` (default: every user with
    training events; users without any are left out)."""
    users = history.users_with_history() if users is None else np.intersect1d(
        users, history.users_with_history())
    if len(users) == 0:
        return []
    labels = kmeans(behaviour_vectors(history, users, dims, seed), n_clusters, seed)
    groups = [users[labels == j] for j in range(labels.max() + 1)]
    return [g for g in groups if len(g)]

"""k-means through FAISS (the ``[faiss]`` extra) and exact nearest-codeword assignment in NumPy.

``faiss.Kmeans`` runs the Lloyd iterations (the field-standard implementation); it is seeded
and, on a fixed thread count, deterministic. Two initialisations:

- ``"random"`` (FAISS's own): a uniform random pick of rows. The default for the quantizers:
  on residuals it spreads items over codes far better (1,682 random 384-d vectors, 3 x 256:
  5.6% collisions against 63% with k-means++, whose D^2 sampling picks the outlying
  residuals and leaves one code holding most items);
- ``"k-means++"`` (Arthur and Vassilvitskii 2007, scikit-learn's default): seeded D^2
  sampling, computed here. On well-separated clusters it puts one seed in each cluster where
  a random pick often puts two in one and none in another, for good. Spectral clustering uses
  it.

Assignment after training is done in NumPy so that ``encode`` needs no FAISS and is exactly
the argmin of the squared distance (ties go to the lowest code).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ..errors import ConfigError


def require_faiss() -> ModuleType:
    """Import FAISS or explain how to get it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("this tokenizer needs FAISS for k-means: "
                          "pip install 'llmrec[faiss]' (or pip install faiss-cpu)") from exc
    return faiss


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``||x_i - c_k||^2`` for every row and centroid: (n, d), (K, d) -> (n, K), float32."""
    x = np.asarray(x, dtype=np.float32)
    c = np.asarray(centroids, dtype=np.float32)
    d2 = (x * x).sum(1, keepdims=True) - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]
    return np.maximum(d2, 0.0, out=d2)


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest centroid for each row: (n, d) -> (n,) int64."""
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        out[start:start + chunk] = squared_distances(x[start:start + chunk], centroids).argmin(1)
    return out


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k initial centroids (k, d): each next one a row drawn with probability proportional
    to its squared distance to the nearest centroid so far."""
    n = len(x)
    picks = [int(rng.integers(n))]
    d2 = squared_distances(x, x[picks[0]][None])[:, 0].astype(np.float64)
    for _ in range(1, k):
        total = d2.sum()
        j = int(np.searchsorted(np.cumsum(d2), rng.random() * total)) if total > 0 else \
            int(rng.integers(n))
        j = min(j, n - 1)
        picks.append(j)
        d2 = np.minimum(d2, squared_distances(x, x[j][None])[:, 0])
    return x[picks].copy()


INITS = ("random", "k-means++")


def kmeans(x: np.ndarray, k: int, *, seed: int, niter: int = 20,
           init: str = "random") -> np.ndarray:
    """Train ``k`` centroids on ``x`` (n, d) with FAISS; returns (k, d) float32.

    With fewer rows than ``k`` the rows themselves (shuffled, then repeated) are the
    centroids: every row is its own cluster and the spare centroids stay unused.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if n == 0:
        raise ConfigError("k-means needs at least one vector")
    if init not in INITS:
        raise ConfigError(f"k-means init must be one of {INITS}, not {init!r}")
    if n < k:
        order = np.random.default_rng(seed).permutation(n)
        return x[np.resize(order, k)].copy()
    faiss = require_faiss()
    # min_points_per_centroid=1 silences FAISS's "please provide more points" warning: with
    # 1,682 items and 256 codes there are 6.6 points per centroid, which is the use case.
    km = faiss.Kmeans(d, k, niter=niter, seed=seed, verbose=False, min_points_per_centroid=1,
                      max_points_per_centroid=max(256, -(-n // k)))
    start = kmeans_plus_plus(x, k, np.random.default_rng(seed)) if init == "k-means++" else None
    km.train(x, init_centroids=start)
    return np.asarray(km.centroids, dtype=np.float32).reshape(k, d).copy()

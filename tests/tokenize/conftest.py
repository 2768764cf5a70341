"""Shared helpers for the tokenizer tests.

Torch and FAISS run on one thread here: on a two-core machine shared with other jobs, two
threads can be several times slower (each op waits for its slowest thread), and a fixed thread
count is also what makes FAISS k-means and torch training repeatable.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        import faiss
    except ImportError:
        faiss = None
    faiss_before = faiss.omp_get_max_threads() if faiss else 0
    if faiss:
        faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before)
    if faiss:
        faiss.omp_set_num_threads(faiss_before)


def gaussian_clusters(n_clusters: int, per_cluster: int, dim: int, spread: float = 0.05,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated clusters: centres ~ N(0, I), points = centre + spread * N(0, I)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    x = centres[labels] + spread * rng.standard_normal((len(labels), dim))
    return x.astype(np.float32), labels


@pytest.fixture
def clusters():  # type: ignore[no-untyped-def]
    """The :func:`gaussian_clusters` maker (conftest modules cannot be imported by name)."""
    return gaussian_clusters

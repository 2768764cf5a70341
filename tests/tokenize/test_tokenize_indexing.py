"""Indexing baselines of "How to Index Item IDs": random, sequential, collaborative."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.errors import ConfigError, DataError
from llmrec.tokenize import (
    TOKENIZERS,
    CollaborativeIndexing,
    RandomIndexing,
    SequentialIndexing,
    cooccurrence,
    semantic_ids,
)
from llmrec.tokenize._indexing import to_digits


def test_registry_names():
    assert set(TOKENIZERS) == {"rq-kmeans", "rq-vae", "pq", "das", "random", "sequential",
                               "collaborative"}
    assert all(cls.name == name for name, cls in TOKENIZERS.items())


def test_random_unique_in_range_and_seeded():
    a = RandomIndexing(levels=2, codebook_size=8, seed=1).fit(60)
    assert len({tuple(r) for r in a.codes_.tolist()}) == 60
    assert a.codes_.min() >= 0 and a.codes_.max() < 8
    np.testing.assert_array_equal(a.codes_, RandomIndexing(levels=2, codebook_size=8,
                                                           seed=1).fit(60).codes_)
    assert not np.array_equal(a.codes_, RandomIndexing(levels=2, codebook_size=8,
                                                       seed=2).fit(60).codes_)
    full = RandomIndexing(levels=2, codebook_size=8).fit(64)     # every tuple used once
    assert len({tuple(r) for r in full.codes_.tolist()}) == 64
    with pytest.raises(ConfigError, match="65 items do not fit"):
        RandomIndexing(levels=2, codebook_size=8).fit(65)
    ids = semantic_ids(np.zeros((10, 3)), "random", levels=3, codebook_size=4,
                       collisions="none")                         # one row per item
    assert ids.n_items == 10 and ids.diagnostics["collision_rate"] == 0.0


def test_sequential_hand_case():
    # first appearances 5, 2, 0; unseen 1, 3, 4 follow in index order
    tok = SequentialIndexing(levels=3, codebook_size=2).fit((np.array([5, 2, 5, 0, 2]), 6))
    rank = {5: 0, 2: 1, 0: 2, 1: 3, 3: 4, 4: 5}
    for item, r in rank.items():
        assert tuple(tok.codes_[item]) == tuple(to_digits(np.array([r]), 2, 3)[0])
    assert tuple(tok.codes_[4]) == (1, 0, 1)                      # 5 in base 2
    with pytest.raises(DataError, match="n_items is 3"):
        SequentialIndexing().fit((np.array([5]), 3))
    with pytest.raises(ConfigError, match="do not fit"):
        SequentialIndexing(levels=1, codebook_size=4).fit(np.arange(5))
    with pytest.raises(DataError, match="1-D"):
        SequentialIndexing().fit(np.ones((2, 2), dtype=int))


def test_cooccurrence_hand_case():
    users = np.array([0, 0, 0, 1, 1, 2, 0])               # user 0 repeats item 1
    items = np.array([0, 1, 2, 1, 2, 3, 1])
    c = cooccurrence(users, items, n_items=5, chunk=1)
    expected = np.zeros((5, 5))
    for a, b, w in [(0, 1, 1), (0, 2, 1), (1, 2, 2)]:
        expected[a, b] = expected[b, a] = w
    np.testing.assert_array_equal(c, expected)
    with pytest.raises(DataError, match="n_items"):
        cooccurrence(users, items, n_items=3)


def communities(n_comm: int, size: int, n_users: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Each user interacts with 5 items of one community: a block co-occurrence graph."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        comm = u % n_comm
        chosen = rng.choice(size, 5, replace=False) + comm * size
        users += [u] * 5
        items += chosen.tolist()
    labels = np.repeat(np.arange(n_comm), size)
    return np.array(users), np.array(items), labels


def test_collaborative_known_answer_communities():
    pytest.importorskip("faiss")
    users, items, labels = communities(n_comm=4, size=15, n_users=200)
    tok = CollaborativeIndexing(levels=2, codebook_size=4).fit((users, items, 60))
    for c in range(4):
        assert len(np.unique(tok.codes_[labels == c, 0])) == 1, f"community {c} split"
    assert len(np.unique(tok.codes_[:, 0])) == 4
    # the same graph given as a matrix gives the same codes
    again = CollaborativeIndexing(levels=2, codebook_size=4).fit(cooccurrence(users, items, 60))
    np.testing.assert_array_equal(tok.codes_, again.codes_)
    ids = tok.semantic_ids("level")
    assert len({tuple(r) for r in ids.codes.tolist()}) == 60
    with pytest.raises(ConfigError, match="15 items share the prefix"):
        tok.semantic_ids("balanced")                  # 15 items per community, 4 codes
    ids = semantic_ids((users, items, 60), "collaborative", levels=2, codebook_size=16,
                       collisions="balanced")
    assert len({tuple(r) for r in ids.codes.tolist()}) == 60


def test_collaborative_small_nodes_numbered_and_errors():
    pytest.importorskip("faiss")
    adj = np.ones((5, 5)) - np.eye(5)
    tok = CollaborativeIndexing(levels=2, codebook_size=8).fit(adj)
    np.testing.assert_array_equal(tok.codes_, [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]])
    with pytest.raises(DataError, match="square"):
        CollaborativeIndexing().fit(np.ones((3, 4)))
    with pytest.raises(DataError, match="non-negative"):
        CollaborativeIndexing().fit(-adj)

"""Beyond-accuracy metrics on hand-computed cases, and the vectorised code against plain Python."""

import itertools
import math

import numpy as np
import pytest
import torch

from llmrec.data import EvalCases
from llmrec.eval import Catalogue, beyond_accuracy, evaluate, genre_matrix, gini, top_k_lists

GENRES = [["A", "B"], ["B"], ["C"], [], ["A"]]            # item 3: genres unknown
VECTORS = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [2, 0]], dtype=np.float32)


def hand_catalogue(genres=GENRES, vectors=VECTORS) -> Catalogue:
    # popularity (interactions) [4, 2, 1, 0, 3]; distinct users [4, 2, 1, 0, 2]; 4 users
    return Catalogue(np.array([4, 2, 1, 0, 3]), np.array([4, 2, 1, 0, 2]), 4,
                     genre_matrix(genres), vectors)


def test_hand_computed_lists():
    lists = np.array([[0, 1], [0, 2], [0, -1]])        # third list: one item (rest masked)
    agg, per = beyond_accuracy(lists, hand_catalogue(), ks=(2,))
    # counts (3, 1, 1, 0, 0): 3 of 5 items recommended
    assert agg["coverage@2"] == pytest.approx(3 / 5)
    # Gini of sorted counts (0, 0, 1, 1, 3): sum (2j - 6) c_j = 2*1 + 4*3 = 14, / (5 * 5)
    assert agg["gini@2"] == pytest.approx(14 / 25)
    # self-information -log2(users / 4) = (0, 1, 2, [2: 0 users count as 1], 1)
    assert per["novelty@2"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert agg["novelty@2"] == pytest.approx(0.5)
    assert per["arp@2"].tolist() == pytest.approx([3.0, 2.5, 4.0])
    assert agg["arp@2"] == pytest.approx(9.5 / 3)
    # Jaccard distances: {A,B} vs {B} = 1 - 1/2; {A,B} vs {C} = 1; one item: no pair (NaN)
    assert per["ild@2"][:2].tolist() == pytest.approx([0.5, 1.0]) and np.isnan(per["ild@2"][2])
    assert agg["ild@2"] == pytest.approx(0.75)
    # cosine distances: (1,0) vs (0,1) = 1; (1,0) vs (1,1) = 1 - 1/sqrt(2)
    assert per["ild_vec@2"][:2].tolist() == pytest.approx([1.0, 1 - 1 / math.sqrt(2)])
    assert agg["ild_vec@2"] == pytest.approx((2 - 1 / math.sqrt(2)) / 2)


def test_unknown_genres_are_left_out_not_counted_as_different():
    agg, per = beyond_accuracy(np.array([[0, 3, 4]]), hand_catalogue(), ks=(3,))
    # pairs (0,3) and (3,4) involve item 3 (no genres): only (0,4) counts, {A,B} vs {A} = 0.5
    assert per["ild@3"].tolist() == pytest.approx([0.5])
    # a zero vector has cosine 0 with everything: (0,3) 1, (0,4) 0, (3,4) 1
    assert per["ild_vec@3"].tolist() == pytest.approx([2 / 3])


def test_without_genres_or_vectors_those_metrics_are_skipped():
    agg, per = beyond_accuracy(np.array([[0, 1]]), hand_catalogue(genres=[[]] * 5, vectors=None),
                               ks=(1, 2))
    assert not any(k.startswith("ild") for k in agg) and set(per) == {
        "novelty@1", "arp@1", "novelty@2", "arp@2"}
    assert agg["coverage@1"] == pytest.approx(1 / 5) and agg["coverage@2"] == pytest.approx(2 / 5)


def test_gini_extremes():
    assert gini(np.array([3, 3, 3, 3])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(3 / 4)        # (n - 1) / n
    assert gini(np.zeros(3)) == 0.0


def test_catalogue_from_training_events():
    user = np.array([0, 0, 0, 1, 2, 2])
    item = np.array([1, 1, 2, 1, 0, 2])                  # user 0 consumed item 1 twice
    cat = Catalogue.from_training(user, item, 4, [["x"], None, ["x", "y"], []])
    assert cat.popularity.tolist() == [1, 3, 2, 0] and cat.user_popularity.tolist() == [1, 2, 2, 0]
    assert cat.n_users == 3
    assert cat.genres.tolist() == [[True, False], [False, False], [True, True], [False, False]]
    assert genre_matrix([None, []]) is None


def test_top_k_lists_break_ties_by_index_and_drop_masked_items():
    scores = torch.tensor([[0.5, 0.9, 0.5, float("-inf")], [float("-inf")] * 3 + [1.0]])
    assert top_k_lists(scores, 3).tolist() == [[1, 0, 2], [3, -1, -1]]


def reference(lists, cat: Catalogue, k):
    """Plain Python, one list at a time."""
    n_items = len(cat.popularity)
    counts = [0] * n_items
    nov, arp, ild, ildv = [], [], [], []
    for row in lists:
        items = [int(i) for i in row[:k] if i >= 0]
        for i in items:
            counts[i] += 1
        if items:
            nov.append(sum(-math.log2(max(cat.user_popularity[i], 1) / cat.n_users)
                           for i in items) / len(items))
            arp.append(sum(cat.popularity[i] for i in items) / len(items))
        gsets = [set(np.flatnonzero(cat.genres[i])) for i in items]
        d = [1 - len(a & b) / len(a | b) for a, b in itertools.combinations(gsets, 2) if a and b]
        if d:
            ild.append(sum(d) / len(d))
        v = [cat.vectors[i] / (np.linalg.norm(cat.vectors[i]) or 1) for i in items]
        dv = [1 - float(a @ b) for a, b in itertools.combinations(v, 2)]
        if dv:
            ildv.append(sum(dv) / len(dv))
    xs = sorted(counts)
    g = sum((2 * j - n_items - 1) * x for j, x in enumerate(xs, 1)) / (n_items * sum(xs))
    return {f"coverage@{k}": sum(c > 0 for c in counts) / n_items, f"gini@{k}": g,
            f"novelty@{k}": np.mean(nov), f"arp@{k}": np.mean(arp), f"ild@{k}": np.mean(ild),
            f"ild_vec@{k}": np.mean(ildv)}


def test_vectorised_equals_plain_python_on_random_lists():
    rng = np.random.default_rng(0)
    n_items, n_users = 40, 300
    genres = [list(rng.choice(list("ABCDEFG"), rng.integers(0, 4), replace=False))
              for _ in range(n_items)]
    cat = Catalogue.from_training(rng.integers(0, 50, 2000), rng.integers(0, n_items, 2000),
                                  n_items, genres, rng.normal(size=(n_items, 8)))
    lists = np.stack([rng.permutation(n_items)[:10] for _ in range(n_users)])
    lists[rng.random(lists.shape) < 0.1] = -1             # some shorter lists
    lists = -np.sort(-lists, axis=1)                       # -1 only at the end of a list
    agg, _ = beyond_accuracy(lists, cat, ks=(5, 10))
    for k in (5, 10):
        for key, value in reference(lists, cat, k).items():
            assert agg[key] == pytest.approx(value, rel=1e-6), key


class Fixed:
    def __init__(self, rows):
        self.rows = torch.tensor(rows, dtype=torch.float32)

    def score(self, histories, users=None):
        return self.rows[np.asarray(users)]


def test_evaluator_lists_are_the_accuracy_metrics_lists():
    """With no ties, a target is a hit@K exactly when it is in the top-K list the
    beyond-accuracy metrics are computed from (masked items excluded from both)."""
    rng = np.random.default_rng(5)
    n_users, n_items = 60, 30
    rows = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(float)
    hist = [rng.choice(n_items, 3, replace=False) for _ in range(n_users)]
    tgt = [rng.integers(0, n_items, 1) for _ in range(n_users)]
    indptr = np.arange(0, 3 * n_users + 1, 3)
    cases = EvalCases(np.arange(n_users), indptr, np.concatenate(hist), np.arange(n_users + 1),
                      np.concatenate(tgt), n_items)
    cat = Catalogue.from_training(np.zeros(5, int), np.arange(5), n_items, vectors=np.eye(n_items))
    out = evaluate(Fixed(rows), cases, ks=(5, 10), per_case=True, batch_size=16, catalogue=cat)
    masked = np.array(rows)
    for u, h in enumerate(hist):
        masked[u, h] = -np.inf
    lists = np.argsort(-masked, axis=1, kind="stable")[:, :10]
    for k in (5, 10):
        in_list = np.array([tgt[u][0] in lists[u, :k] for u in range(n_users)])
        assert out["per_case"][f"hit@{k}"].tolist() == in_list.astype(float).tolist()
        agg, per = beyond_accuracy(lists, cat, (k,))
        assert out[f"coverage@{k}"] == agg[f"coverage@{k}"]
        assert out[f"novelty@{k}"] == pytest.approx(agg[f"novelty@{k}"])
        assert out["per_case"][f"arp@{k}"] == pytest.approx(per[f"arp@{k}"])
        assert out[f"ild_vec@{k}"] == pytest.approx(1.0)        # orthogonal item vectors
    assert "ild@5" not in out                                    # no genres
    assert "coverage@10" not in evaluate(Fixed(rows), cases, ks=(10,))

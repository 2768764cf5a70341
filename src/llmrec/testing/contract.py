"""The contract suite every recommender inherits (pytest).

Subclass :class:`RecommenderContract` in a test module and implement ``make_model``; every test
below then runs against that model::

    class TestSASRec(RecommenderContract):
        def make_model(self, **overrides):
            return SASRec(epochs=30, **overrides)

``learns_chains = False`` opts a non-sequential model (e.g. popularity) out of the known-answer
test; it still has to pass the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ..data import Interactions, leave_one_out
from ..models import Recommender, load_model


def chain_interactions(n_chains: int = 3, chain_len: int = 10, n_users: int = 240,
                       steps: int = 8, seed: int = 0) -> Interactions:
    """Users walk a cyclic chain of items: item ``c*L + j`` is always followed by ``c*L + j+1``.

    A sequential model that learns the data predicts the next item of every history exactly;
    popularity cannot (all items are about equally popular). With ``steps <= chain_len`` no
    user meets an item twice, so masking seen items never hides a target.
    """
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        c, start = rng.integers(n_chains), rng.integers(chain_len)
        walk = c * chain_len + (start + np.arange(steps)) % chain_len
        users += [u] * steps
        items += walk.tolist()
    n = len(users)
    return Interactions(np.array(users), np.array(items), np.arange(n), np.full(n, np.nan),
                        n_users, n_chains * chain_len)


class RecommenderContract:
    """Shared tests; see the module docstring."""

    learns_chains = True

    def make_model(self, **overrides) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def chains(cls):
        return leave_one_out(chain_interactions())

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, chains):
        # no validation: early stopping on NDCG@10 would stop as soon as targets reach the top 10
        return cls().make_model().fit(chains.train, progress=False)

    def test_learns_deterministic_chains(self, fitted, chains):
        if not self.learns_chains:
            pytest.skip("model does not use sequences")
        cases = chains.test_cases()
        top1 = [fitted.recommend(cases.history(k), 1).items[0] for k in range(len(cases))]
        accuracy = np.mean(np.array(top1) == cases.target_items)
        assert accuracy >= 0.9, f"next item of a chain predicted for only {accuracy:.0%}"

    def test_scores_shape_and_finite(self, fitted, chains):
        scores = fitted.score(chains.test_cases().histories(0, 7))
        assert scores.shape == (7, chains.interactions.n_items)
        assert torch.isfinite(scores).all()

    def test_save_load_gives_identical_scores(self, fitted, chains, tmp_path: Path):
        histories = chains.test_cases().histories(0, 20)
        fitted.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(fitted)
        torch.testing.assert_close(loaded.score(histories), fitted.score(histories),
                                   rtol=0, atol=0)

    def test_batch_equals_one_by_one(self, fitted, chains):
        histories = chains.test_cases().histories(0, 16)
        histories[3] = histories[3][:2]                      # ragged lengths in one batch
        batch = fitted.score(histories)
        single = torch.cat([fitted.score([h]) for h in histories])
        torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-5)

    def test_unknown_user_gets_popularity(self, fitted, chains):
        counts = chains.train.item_counts()
        recs = fitted.recommend([], 5)
        expected = np.argsort(-counts, kind="stable")[:5]
        assert recs.items.tolist() == expected.tolist()

    def test_seen_items_filtered_when_asked(self, fitted, chains):
        history = chains.test_cases().history(0)
        recs = fitted.recommend(history, 10)
        assert not set(recs.items.tolist()) & set(history.tolist())
        everything = fitted.recommend(history, chains.interactions.n_items, exclude_seen=False)
        assert len(everything) == chains.interactions.n_items

    def test_recommendations_sorted_and_distinct(self, fitted, chains):
        recs = fitted.recommend(chains.test_cases().history(1), 8)
        assert len(recs) == 8 == len(set(recs.items.tolist()))
        assert np.all(np.diff(recs.scores) <= 0)

    def test_same_seed_same_model(self, fitted, chains):
        again = self.make_model().fit(chains.train, progress=False)
        histories = chains.test_cases().histories(0, 10)
        torch.testing.assert_close(again.score(histories), fitted.score(histories))

    def test_out_of_range_history_rejected(self, fitted, chains):
        with pytest.raises(IndexError):
            fitted.score([[chains.interactions.n_items]])

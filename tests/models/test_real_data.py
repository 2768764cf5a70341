"""Accuracy floors on the real ML-100K (5-core, leave-one-out, full ranking, masked).

Short training budgets keep CI fast; the full-budget numbers are in the README and come from
benchmarks/seqrec.py. Each model must clearly beat popularity.
"""

from __future__ import annotations

import pytest

from llmrec.data import Preprocessing, leave_one_out, load_dataset
from llmrec.eval import evaluate
from llmrec.models import GRU4Rec, Pop, SASRec


@pytest.fixture(scope="module")
def split(ml100k):
    ds = load_dataset("ml-100k", preprocessing=Preprocessing(user_core=5, item_core=5))
    assert (ds.n_users, ds.n_items) == (943, 1349)
    return leave_one_out(ds.interactions)


@pytest.fixture(scope="module")
def pop_ndcg(split):
    return evaluate(Pop().fit(split.train), split.test_cases())["ndcg@10"]


def test_pop_floor(pop_ndcg):
    assert 0.03 < pop_ndcg < 0.06            # 0.0432 on this split


@pytest.mark.parametrize("model,floor", [
    (SASRec(epochs=8, max_seq_len=100), 0.065),
    (GRU4Rec(epochs=8, max_seq_len=100), 0.055),
])
def test_short_training_beats_popularity(model, floor, split, pop_ndcg):
    model.fit(split.train, split.valid_cases(), progress=False)
    metrics = evaluate(model, split.test_cases())
    assert metrics["ndcg@10"] > max(floor, 1.3 * pop_ndcg), metrics

"""Metrics on hand-computed cases, and the batched ranks against a plain reference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.data import EvalCases
from llmrec.eval import evaluate, metrics_from_ranks, target_ranks


def reference_ranks(scores: list[float], targets: list[int]) -> list[int]:
    """Plain Python: sort items by (score desc, non-targets first, index asc)."""
    tset = set(targets)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i in tset, i))
    position = {item: r + 1 for r, item in enumerate(order)}
    return [position[t] for t in targets]


def test_single_target_hand_computed():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3]])       # order: 1, 2, 3, 0
    ranks = target_ranks(scores, torch.tensor([[2]]))
    assert ranks.tolist() == [[2]]
    m = metrics_from_ranks(ranks, (1, 2, 3))
    assert m["hit@1"].item() == 0 and m["hit@2"].item() == 1
    assert m["ndcg@2"].item() == pytest.approx(1 / math.log2(3))
    assert m["mrr@3"].item() == pytest.approx(0.5)
    assert m["recall@1"].item() == 0 and m["recall@3"].item() == 1


def test_multiple_targets_hand_computed():
    # items 0..5 with scores; targets {4, 0}: item 4 ranked 1st, item 0 ranked 4th
    scores = torch.tensor([[0.2, 0.5, 0.4, 0.3, 0.9, 0.1]])
    ranks = target_ranks(scores, torch.tensor([[4, 0, -1]]))
    assert ranks.tolist() == [[1, 5, 0]]
    m = metrics_from_ranks(ranks, (3, 5))
    assert m["recall@3"].item() == pytest.approx(0.5)
    assert m["recall@5"].item() == pytest.approx(1.0)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@3"].item() == pytest.approx(1 / ideal)
    assert m["ndcg@5"].item() == pytest.approx((1 + 1 / math.log2(6)) / ideal)
    assert m["mrr@3"].item() == pytest.approx(1.0)


def test_ties_count_against_the_model():
    scores = torch.zeros(1, 50)                          # a constant model
    ranks = target_ranks(scores, torch.tensor([[0]]))
    assert ranks.item() == 50                            # last, not first
    assert metrics_from_ranks(ranks, (10,))["ndcg@10"].item() == 0


def test_masked_target_is_a_miss():
    scores = torch.tensor([[float("-inf"), 1.0, 2.0]])
    assert target_ranks(scores, torch.tensor([[0]])).item() == 3


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, float("-inf")]), min_size=n, max_size=n),
    st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))))
def test_batched_ranks_equal_reference(case):
    scores, targets = case
    got = target_ranks(torch.tensor([scores]), torch.tensor([targets]))[0].tolist()
    assert got == reference_ranks(scores, targets)


class Fixed:
    """A scorer returning preset rows (the evaluator sees only ``score``)."""

    def __init__(self, rows):
        self.rows = torch.tensor(rows, dtype=torch.float32)
        self.calls = 0

    def score(self, histories, users=None):
        out = self.rows[self.calls:self.calls + len(histories)]
        self.calls += len(histories)
        return out


def cases(histories, targets, n_items):
    def csr(parts):
        return np.cumsum([0] + [len(p) for p in parts]), np.concatenate(
            [np.asarray(p, dtype=np.int32) for p in parts])
    hp, hi = csr(histories)
    tp, ti = csr(targets)
    return EvalCases(np.arange(len(histories), dtype=np.int32), hp, hi, tp, ti, n_items)


def test_history_masking_policy():
    # user's history holds item 0, the best-scored item; target item 1 is second
    c = cases([[0]], [[1]], 3)
    masked = evaluate(Fixed([[3.0, 2.0, 1.0]]), c, ks=(1,), mask="history")
    unmasked = evaluate(Fixed([[3.0, 2.0, 1.0]]), c, ks=(1,), mask="none")
    assert masked["hit@1"] == 1.0 and unmasked["hit@1"] == 0.0


def test_evaluate_averages_over_cases_and_batches():
    rows = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    c = cases([[], [], [], []], [[0], [0], [2], [1]], 3)
    out = evaluate(Fixed(rows), c, ks=(1,), mask="none", batch_size=3)
    assert out["hit@1"] == pytest.approx(0.5) and out["cases"] == 4


def test_wrong_score_shape_is_reported():
    with pytest.raises(ValueError, match="shape"):
        evaluate(Fixed([[1.0, 2.0]]), cases([[0]], [[1]], 3), ks=(1,))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.lists(st.tuples(
    st.lists(st.sampled_from([0.0, 1.0, 2.0, float("-inf")]), min_size=n, max_size=n),
    st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)),
    min_size=1, max_size=5)))
def test_ragged_batch_equals_reference(rows):
    """Rows with different numbers of targets share one padded batch (-1 = padding)."""
    width = max(len(t) for _, t in rows)
    scores = torch.tensor([s for s, _ in rows])
    targets = torch.tensor([t + [-1] * (width - len(t)) for _, t in rows])
    got = target_ranks(scores, targets).tolist()
    for (s, t), ranks in zip(rows, got):
        assert ranks[:len(t)] == reference_ranks(s, t)
        assert ranks[len(t):] == [0] * (width - len(t))

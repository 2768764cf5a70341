"""Collision handling: TIGER's extra level and LC-Rec's balanced last level."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec.errors import ConfigError, DataError
from llmrec.tokenize import RQKMeans, add_disambiguation_level, balance_last_level, collision_rate
from llmrec.tokenize._collisions import resolve, sinkhorn


def unique_rows(codes: np.ndarray) -> bool:
    return len({tuple(r) for r in codes.tolist()}) == len(codes)


def test_disambiguation_level_hand_case():
    codes = np.array([[0, 0], [0, 0], [1, 0], [0, 0], [1, 0], [2, 2]])
    out, size = add_disambiguation_level(codes)
    np.testing.assert_array_equal(out[:, :2], codes)
    np.testing.assert_array_equal(out[:, 2], [0, 1, 0, 2, 1, 0])
    assert size == 3
    assert collision_rate(codes) == pytest.approx(5 / 6)


def test_balanced_hand_case():
    # prefix (0,): items 0, 1, 2 all on last code 1; item 1 is nearest to code 1 and keeps
    # it; item 2 prefers code 3, item 0 code 0. Prefix (1,): item 3 alone keeps code 1.
    codes = np.array([[0, 1], [0, 1], [0, 1], [1, 1]])
    costs = np.array([[0.5, 0.4, 9.0, 9.0],
                      [9.0, 0.1, 9.0, 9.0],
                      [9.0, 0.3, 9.0, 0.2],
                      [9.0, 0.0, 9.0, 9.0]])
    out = balance_last_level(codes, 4, costs)
    np.testing.assert_array_equal(out, [[0, 0], [0, 1], [0, 3], [1, 1]])


def test_balanced_keeps_items_without_collision():
    codes = np.array([[0, 2], [0, 1], [0, 1], [0, 0]])
    costs = np.zeros((4, 4))
    costs[2, 1] = -1.0                     # item 2 is nearer to code 1 than item 1
    out = balance_last_level(codes, 4, costs)
    np.testing.assert_array_equal(out[:, 1], [2, 3, 1, 0])


def test_balanced_refuses_impossible_capacity():
    codes = np.array([[3, 0]] * 5 + [[1, 0]])
    with pytest.raises(ConfigError, match=r"5 items share the prefix \(3,\).*only 4 codes"):
        balance_last_level(codes, 4)


def test_sinkhorn_plan_has_uniform_marginals_and_follows_the_cost():
    rng = np.random.default_rng(0)
    cost = rng.random((6, 9))
    plan = sinkhorn(cost)
    np.testing.assert_allclose(plan.sum(1), np.full(6, 1 / 6), rtol=1e-6)
    np.testing.assert_allclose(plan.sum(0), np.full(9, 1 / 9), rtol=1e-4)
    # items with one clearly cheapest codeword each get that codeword's mass
    cost = np.ones((3, 3)) - 0.9 * np.eye(3)
    assert (sinkhorn(cost).argmax(1) == [0, 1, 2]).all()


def test_sinkhorn_assigns_by_transport_where_greedy_is_myopic():
    # three items collide on code 0 of prefix (0,); item 0 is nearest and keeps it. Greedy
    # hands the cheapest free pair (item 1, code 1: 0.1) out first and leaves item 2 with
    # code 2 (0.9): total 1.0. The transport plan sees both: item 1 -> 2, item 2 -> 1 (0.35).
    codes = np.array([[0, 0]] * 3)
    costs = np.array([[0.0, 5.0, 5.0],
                      [5.0, 0.10, 0.20],
                      [5.0, 0.15, 0.90]])
    greedy = balance_last_level(codes, 3, costs)[:, 1]
    spread = balance_last_level(codes, 3, costs, "sinkhorn")[:, 1]
    assert greedy.tolist() == [0, 1, 2]
    assert spread.tolist() == [0, 2, 1]
    assert costs[np.arange(3), spread].sum() == pytest.approx(0.35)


def test_none_refuses_collisions_and_unknown_strategy():
    codes = np.array([[0, 1], [0, 1]])
    with pytest.raises(DataError, match=r"100\.0% of items"):
        resolve(codes, (2, 2), "none")
    with pytest.raises(ConfigError, match="unknown collision strategy"):
        resolve(codes, (2, 2), "dedup")


@st.composite
def code_matrices(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 60))
    levels = draw(st.integers(1, 3))
    size = draw(st.integers(2, 8))
    spread = draw(st.integers(1, size))       # small spread: heavy collisions
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, spread, size=(n, levels))
    costs = rng.random((n, size)) if draw(st.booleans()) else None
    return codes, size, costs


@settings(max_examples=150, deadline=None)
@given(code_matrices())
def test_every_strategy_gives_unique_ids(case):
    codes, size, costs = case
    sizes = (size,) * codes.shape[1]
    out, out_sizes = resolve(codes, sizes, "level", costs)
    assert unique_rows(out) and out.shape == (len(codes), codes.shape[1] + 1)
    np.testing.assert_array_equal(out[:, :-1], codes)
    assert (out[:, -1] < out_sizes[-1]).all()

    groups = {}
    for row in codes[:, :-1].tolist():
        groups[tuple(row)] = groups.get(tuple(row), 0) + 1
    if max(groups.values()) > size:
        with pytest.raises(ConfigError, match="balanced assignment impossible"):
            resolve(codes, sizes, "balanced", costs)
        return
    counts = {}
    for row in codes.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    alone = np.array([counts[tuple(r)] == 1 for r in codes.tolist()])
    for strategy in ("balanced", "sinkhorn"):
        out, _ = resolve(codes, sizes, strategy, costs)
        assert unique_rows(out)
        np.testing.assert_array_equal(out[:, :-1], codes[:, :-1])      # prefixes untouched
        assert ((out >= 0) & (out < size)).all()
        np.testing.assert_array_equal(out[alone], codes[alone])        # no collision, no move


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 40), dup=st.integers(1, 6), size=st.integers(2, 8),
       levels=st.integers(1, 2), seed=st.integers(0, 1000))
def test_quantizer_on_duplicated_vectors_gives_unique_ids(n, dup, size, levels, seed):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 6)).astype(np.float32)
    x = np.repeat(base, dup, axis=0)                      # every vector `dup` times
    tok = RQKMeans(levels=levels, codebook_size=size, seed=seed).fit(x)
    if dup > 1:
        assert tok.semantic_ids("level").diagnostics["collision_rate"] == 1.0
    ids = tok.semantic_ids("level")
    assert unique_rows(ids.codes)
    try:
        ids = tok.semantic_ids("balanced")
    except ConfigError as exc:                            # only when a prefix group is too big
        prefixes = tok.codes_[:, :-1]
        _, counts = np.unique(prefixes, axis=0, return_counts=True)
        assert counts.max() > size, exc
    else:
        assert unique_rows(ids.codes)
        assert ids.codebook_sizes == (size,) * levels

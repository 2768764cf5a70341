"""Splits: no leakage (property tests), leave-one-out and temporal semantics."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.data import Interactions, build_dataset, leave_one_out, make_split, temporal_split
from llmrec.errors import ConfigError


@st.composite
def interactions(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 12))
    rows = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1),
                                   st.integers(0, 20)), min_size=1, max_size=80))
    frame = pl.DataFrame({"user_id": [str(u) for u, _, _ in rows],
                          "item_id": [str(i) for _, i, _ in rows],
                          "timestamp": [t for _, _, t in rows]})
    from llmrec.data import Preprocessing
    return build_dataset("h", frame, preprocessing=Preprocessing(dedup="none")).interactions


def assert_no_leakage(split):
    """Every history is a strict prefix of the user's sequence that ends before its targets."""
    inter = split.interactions
    for part in (1, 2):
        cases = split.cases(part)
        for k, u in enumerate(cases.users):
            seq = inter.sequence(u)
            parts = split.part[inter.indptr[u]:inter.indptr[u + 1]]
            history = cases.history(k)
            first_target = np.flatnonzero(parts == part)[0]
            # the history is exactly the events before the first target event
            assert history.tolist() == seq[:first_target][parts[:first_target] < part].tolist()
            assert len(history) <= first_target
            times = inter.timestamp[inter.indptr[u]:inter.indptr[u + 1]]
            assert times[:len(history)].max(initial=-1) <= times[first_target]
            assert set(cases.targets(k).tolist()) == set(seq[parts == part].tolist())


@settings(max_examples=150, deadline=None)
@given(interactions())
def test_leave_one_out_never_leaks(inter):
    split = leave_one_out(inter)
    assert_no_leakage(split)
    lengths = inter.lengths()
    assert len(split.test_cases()) == int((lengths >= 3).sum())
    for k, u in enumerate(split.test_cases().users):
        assert split.test_cases().targets(k).tolist() == [inter.sequence(u)[-1]]
        assert split.test_cases().history(k).tolist() == inter.sequence(u)[:-1].tolist()


@settings(max_examples=150, deadline=None)
@given(interactions(), st.floats(0.05, 0.4), st.floats(0.05, 0.4))
def test_temporal_split_never_leaks(inter, valid_fraction, test_fraction):
    try:
        split = temporal_split(inter, valid_fraction, test_fraction)
    except Exception as e:                      # degenerate time ranges are refused clearly
        assert "validation period is empty" in str(e)
        return
    assert_no_leakage(split)
    t_valid, t_test = split.params["valid_from"], split.params["test_from"]
    assert np.all(inter.timestamp[split.part == 2] >= t_test)
    assert np.all(inter.timestamp[split.part == 0] < t_valid)


def test_leave_one_out_uses_row_order_for_ties():
    # user 1 rated three items at the same second; the file order decides which is last
    frame = pl.DataFrame({"user_id": ["1"] * 4, "item_id": ["30", "10", "20", "5"],
                          "timestamp": [100, 200, 200, 200]})
    inter = build_dataset("t", frame).interactions
    split = leave_one_out(inter)
    items = build_dataset("t", frame).items
    assert items.to_raw(split.test_cases().targets(0)).tolist() == ["5"]
    assert items.to_raw(split.valid_cases().targets(0)).tolist() == ["20"]


def test_split_refuses_a_leaking_labelling():
    inter = Interactions(np.zeros(3), np.arange(3), np.arange(3), np.full(3, np.nan), 1, 3)
    from llmrec.data import Split
    with pytest.raises(AssertionError, match="leaks"):
        Split(inter, np.array([0, 2, 1]), "bad")


def test_unknown_split_is_a_config_error():
    inter = Interactions(np.zeros(3), np.arange(3), np.arange(3), np.full(3, np.nan), 1, 3)
    with pytest.raises(ConfigError, match="unknown split"):
        make_split(inter, "random")

"""Holm step-down and Benjamini-Hochberg step-up on hand-made families and a plain reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.stats import benjamini_hochberg, holm, rejected


def holm_reference(p, alpha):
    """Textbook step-down: walk the sorted p-values, stop at the first non-rejection."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out = [False] * len(p)
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        out[i] = True
    return out


def bh_reference(p, alpha):
    """Textbook step-up: the largest j with p_(j) <= j alpha / m; reject the j smallest."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    m, last = len(p), 0
    for j, i in enumerate(order, start=1):
        if p[i] <= j * alpha / m:
            last = j
    out = [False] * len(p)
    for i in order[:last]:
        out[i] = True
    return out


def test_holm_rejects_neither_of_003_004_and_bh_rejects_both():
    assert holm([0.03, 0.04]) == pytest.approx([0.06, 0.06])
    assert rejected(holm([0.03, 0.04])) == [False, False]
    assert benjamini_hochberg([0.03, 0.04]) == pytest.approx([0.04, 0.04])
    assert rejected(benjamini_hochberg([0.03, 0.04])) == [True, True]


def test_holm_stops_at_the_first_non_rejection():
    # 0.045 < 0.05 would pass its own threshold, but 0.04 > 0.05/2 stopped the procedure
    p = [0.045, 0.01, 0.04]
    assert holm(p) == pytest.approx([0.08, 0.03, 0.08])
    assert rejected(holm(p)) == [False, True, False]


def test_bh_steps_up():
    # 0.04 alone fails (0.04 > 2 * 0.05/3) but the larger 0.045 passes (0.045 <= 3 * 0.05/3),
    # so every smaller one is rejected too
    p = [0.01, 0.04, 0.045]
    assert benjamini_hochberg(p) == pytest.approx([0.03, 0.045, 0.045])
    assert rejected(benjamini_hochberg(p)) == [True, True, True]


def test_untested_comparisons_are_left_out_of_the_family():
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert benjamini_hochberg([None, 0.02]) == [None, pytest.approx(0.02)]
    assert holm([None, None]) == [None, None] and benjamini_hochberg([]) == []
    assert holm([0.9, 0.8]) == [1.0, 1.0]                         # capped at 1
    with pytest.raises(ValueError):
        holm([1.5])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_equal_to_the_textbook_procedures(p, alpha):
    adj_h, adj_b = np.array(holm(p)), np.array(benjamini_hochberg(p))
    assert (adj_h >= np.array(p) - 1e-12).all() and (adj_b >= np.array(p) - 1e-12).all()
    # away from exact boundaries (floating point), the adjusted values reject the same set
    margin = np.abs(adj_h - alpha).min(), np.abs(adj_b - alpha).min()
    if margin[0] > 1e-9:
        assert rejected(list(adj_h), alpha) == holm_reference(p, alpha)
    if margin[1] > 1e-9:
        assert rejected(list(adj_b), alpha) == bh_reference(p, alpha)

"""AUC, logloss and GAUC: hand-computed cases, and equality with plain reference versions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.ctr import auc, ctr_metrics, gauc, logloss


def reference_auc(y, s) -> float:
    """Count every (positive, negative) pair: 1 if the positive scores higher, 1/2 on a tie."""
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    if not pos or not neg:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def reference_gauc(y, s, users) -> float:
    num = den = 0.0
    for u in set(users):
        rows = [k for k, v in enumerate(users) if v == u]
        a = reference_auc([y[k] for k in rows], [s[k] for k in rows])
        if not math.isnan(a):
            num += a * len(rows)
            den += len(rows)
    return num / den if den else float("nan")


def test_auc_hand_computed():
    # pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, *) two wins -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5                       # a tie is half a win
    assert auc([0, 1, 1, 0], [1, 1, 2, 0]) == 0.875             # 0.5 + 1 + 1 + 1 over 4
    assert auc([1, 0], [0.9, 0.1]) == 1.0 and auc([1, 0], [0.1, 0.9]) == 0.0
    assert math.isnan(auc([1, 1], [0.2, 0.3])) and math.isnan(auc([], []))


def test_gauc_weights_users_by_samples_and_skips_one_class_users():
    y = [1, 0, 1, 0, 0, 1, 1]
    s = [0.9, 0.1, 0.2, 0.8, 0.5, 0.1, 0.7]
    users = [0, 0, 1, 1, 1, 2, 2]
    # user 0: AUC 1 (2 samples); user 1: one positive (0.2) under both negatives -> 0 (3
    # samples); user 2: only positives -> skipped. (1*2 + 0*3) / 5
    assert gauc(y, s, users) == pytest.approx(0.4)
    assert math.isnan(gauc([1, 1, 0], [0.1, 0.2, 0.3], [0, 0, 1]))


def test_logloss_hand_computed():
    assert logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert logloss([1, 0], [0.8, 0.3]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    assert np.isfinite(logloss([1, 0], [0.0, 1.0]))             # clipped, never inf


def test_ctr_metrics_keys():
    m = ctr_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.6, 0.4]),
                    np.array([0, 0, 1, 1]))
    assert set(m) == {"auc", "logloss", "gauc"} and m["auc"] == 1.0 and m["gauc"] == 1.0


samples = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 4)),
                   min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(samples)
def test_auc_equals_pairwise_counting(rows):
    y = [r[0] for r in rows]
    s = [r[1] / 3 for r in rows]            # few distinct scores: many ties
    ref = reference_auc(y, s)
    got = auc(np.array(y), np.array(s))
    assert (math.isnan(ref) and math.isnan(got)) or got == pytest.approx(ref, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(samples)
def test_gauc_equals_per_user_reference(rows):
    y, s, users = [r[0] for r in rows], [float(r[1]) for r in rows], [r[2] for r in rows]
    ref = reference_gauc(y, s, users)
    got = gauc(np.array(y), np.array(s), np.array(users))
    assert (math.isnan(ref) and math.isnan(got)) or got == pytest.approx(ref, abs=1e-12)

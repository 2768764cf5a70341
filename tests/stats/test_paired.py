"""Paired tests, bootstrap interval and effect size on hand-computed cases and against scipy."""

import math

import numpy as np
import pytest
import scipy.stats

from llmrec.stats import bootstrap_ci, paired_arrays, paired_test, significance_rows


def test_wilcoxon_exact_hand_computed():
    a = np.zeros(5)
    # all five differences positive: W- = 0, exact two-sided p = 2 * 1/32
    assert paired_test(a, [1, 2, 3, 4, 5]).p_wilcoxon == pytest.approx(2 / 32)
    # d = (1, 2, -3, 4, 5): W- = 3; subsets of ranks {1..5} with sum <= 3: {}, {1}, {2}, {3},
    # {1,2} -> p = 2 * 5/32
    assert paired_test(a, [1, 2, -3, 4, 5]).p_wilcoxon == pytest.approx(10 / 32)
    # zero differences are dropped before ranking: the same exact p as without them
    assert paired_test(np.zeros(8), [0, 1, 2, 0, 3, 4, 5, 0]).p_wilcoxon == pytest.approx(2 / 32)


def test_paired_t_hand_computed():
    # d = (1, 2, 3): mean 2, sd 1, t = 2 * sqrt(3), 2 degrees of freedom, whose two-sided tail
    # has the closed form p = 1 - t / sqrt(2 + t^2)
    r = paired_test([0, 0, 0], [1, 2, 3])
    t = 2 * math.sqrt(3)
    assert r.p_ttest == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert r.effect == pytest.approx(2.0)           # Cohen's d_z = mean / sd = 2 / 1
    assert (r.mean_a, r.mean_b, r.diff, r.n) == (0.0, 2.0, 2.0, 3)


def test_agrees_with_scipy_on_real_sized_data():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    b = np.clip(a + rng.normal(0.03, 0.2, 300), 0, 1)
    r = paired_test(a, b)
    assert r.p_ttest == pytest.approx(scipy.stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert r.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon(b - a).pvalue, rel=1e-12)
    assert r.diff == pytest.approx((b - a).mean())
    assert r.effect == pytest.approx((b - a).mean() / (b - a).std(ddof=1))


def test_nan_pairs_are_dropped_together():
    a = [1.0, np.nan, 3.0, 4.0, 5.0]
    b = [2.0, 5.0, np.nan, 6.0, 9.0]
    x, y = paired_arrays(a, b)
    assert x.tolist() == [1.0, 4.0, 5.0] and y.tolist() == [2.0, 6.0, 9.0]
    r = paired_test(a, b)
    assert r.n == 3 and r.mean_a == pytest.approx(10 / 3) and r.mean_b == pytest.approx(17 / 3)
    with pytest.raises(ValueError):
        paired_arrays([1, 2], [1, 2, 3])


@pytest.mark.parametrize("a,b,n", [([1.0, np.nan], [2.0, 3.0], 1), ([], [], 0),
                                   ([np.nan, 1.0], [1.0, np.nan], 0)])
def test_fewer_than_two_pairs_is_not_applicable(a, b, n):
    r = paired_test(a, b)
    assert r.n == n and not r.tested
    assert r.p_wilcoxon is r.p_ttest is r.ci_low is r.ci_high is r.effect is None


def test_identical_runs_give_no_evidence():
    r = paired_test([0.0, 1.0, 0.5], [0.0, 1.0, 0.5])
    assert (r.p_wilcoxon, r.p_ttest, r.ci_low, r.ci_high, r.diff) == (1.0, 1.0, 0.0, 0.0, 0.0)


def test_bootstrap_interval():
    assert bootstrap_ci(np.full(10, 0.25)) == (0.25, 0.25)
    rng = np.random.default_rng(7)
    d = rng.normal(0.1, 1.0, 2000)
    lo, hi = bootstrap_ci(d, n_boot=4000, seed=3)
    assert (lo, hi) == bootstrap_ci(d, n_boot=4000, seed=3)       # seeded: reproducible
    assert (lo, hi) != bootstrap_ci(d, n_boot=4000, seed=4)
    # a plain numpy percentile bootstrap of the same data
    means = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(4000)])
    ref = np.percentile(means, [2.5, 97.5])
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert lo == pytest.approx(ref[0], abs=0.1 * se) and hi == pytest.approx(ref[1], abs=0.1 * se)
    # and the normal-theory interval mean +- 1.96 se (the mean of 2000 values is ~normal)
    assert lo == pytest.approx(d.mean() - 1.96 * se, abs=0.1 * se)
    assert hi == pytest.approx(d.mean() + 1.96 * se, abs=0.1 * se)
    assert paired_test(np.zeros(2000), d, n_boot=4000, seed=3).ci_low == lo


def test_significance_rows_correct_the_tested_comparisons_only():
    base = np.zeros(5)
    rows = significance_rows([("m1", "ndcg@10", base, [1, 2, 3, 4, 5]),
                              ("m2", "ndcg@10", [1.0], [2.0]),
                              ("m3", "ndcg@10", base, [1, 2, -3, 4, 5])])
    assert [r["model"] for r in rows] == ["m1", "m2", "m3"]
    assert rows[1]["p_holm"] is None                              # n/a: not in the family
    assert rows[0]["p_holm"] == pytest.approx(2 * 2 / 32)         # m = 2: 2 * 0.0625
    assert rows[2]["p_holm"] == pytest.approx(10 / 32)            # max(0.125, 1 * 0.3125)

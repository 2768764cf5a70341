"""Paired tests of two models' per-user metrics: is the mean difference real?

For users ``u = 1..n`` with metric values ``a_u`` (baseline) and ``b_u`` (the other model) on the
same evaluation cases, the differences are ``d_u = b_u - a_u`` (positive = better than the
baseline, for metrics where higher is better). Reported:

- ``p_wilcoxon``: Wilcoxon signed-rank test of ``d`` (two-sided) -- ``scipy.stats.wilcoxon`` on
  the non-zero differences (zeros are dropped first, Wilcoxon's own rule; scipy then uses the
  exact distribution for up to 50 differences without ties, the normal approximation with tie
  correction otherwise). The primary test: per-user ranking metrics are far
  from normal (most users score 0 at K = 10 under leave-one-out).
- ``p_ttest``: paired t-test (``scipy.stats.ttest_rel``), two-sided.
- ``ci_low``/``ci_high``: percentile bootstrap confidence interval of the mean difference
  (Efron & Tibshirani 1993): users are resampled with replacement, pairs kept together, from a
  seeded generator (``scipy.stats.bootstrap``), so the interval is reproducible.
- ``effect``: Cohen's d_z = mean(d) / sd(d) (Lakens 2013), the standardized paired effect.

Pairs where either value is NaN are dropped together (so the pairs stay aligned). With fewer
than 2 pairs nothing is tested: the p-values, interval and effect are ``None`` ("n/a"). When all
differences are zero, both p-values are 1 and the interval is (0, 0).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import LlmrecError


def _scipy_stats():
    try:
        import scipy.stats
    except ImportError:                                     # pragma: no cover - extra missing
        raise LlmrecError("significance tests need scipy: pip install 'llmrec[stats]'") from None
    return scipy.stats


@dataclass
class PairedResult:
    n: int                              # pairs tested (both values present)
    mean_a: float | None                # baseline mean over those pairs
    mean_b: float | None
    diff: float | None                  # mean(b - a)
    ci_low: float | None
    ci_high: float | None
    p_wilcoxon: float | None
    p_ttest: float | None
    effect: float | None                # Cohen's d_z
    confidence: float = 0.95

    @property
    def tested(self) -> bool:
        return self.p_wilcoxon is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of equal length with every pair holding a NaN removed (from both)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values need two 1-d arrays of one length, got {a.shape} "
                         f"and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def bootstrap_ci(d: np.ndarray, n_boot: int = 10_000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(d)`` (resampling the entries of ``d``)."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) < 2:
        raise ValueError("a bootstrap interval needs at least 2 values")
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    res = _scipy_stats().bootstrap((d,), np.mean, n_resamples=n_boot, vectorized=True,
                                   batch=max(1, (1 << 22) // len(d)), method="percentile",
                                   confidence_level=confidence,
                                   rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_test(a: Any, b: Any, *, n_boot: int = 10_000, seed: int = 0,
                confidence: float = 0.95) -> PairedResult:
    """Compare ``b`` against the baseline ``a`` user by user (see the module docstring)."""
    a, b = paired_arrays(a, b)
    n = len(a)
    if n == 0:
        return PairedResult(0, None, None, None, None, None, None, None, None, confidence)
    d = b - a
    mean_a, mean_b, diff = float(a.mean()), float(b.mean()), float(d.mean())
    if n < 2:
        return PairedResult(n, mean_a, mean_b, diff, None, None, None, None, None, confidence)
    if not np.any(d):
        return PairedResult(n, mean_a, mean_b, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, confidence)
    stats = _scipy_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # zero variance: t = +-inf, p = 0
        p_w = float(stats.wilcoxon(d[d != 0], alternative="two-sided").pvalue)
        p_t = float(stats.ttest_rel(b, a).pvalue)
    sd = float(d.std(ddof=1))
    lo, hi = bootstrap_ci(d, n_boot, seed, confidence)
    return PairedResult(n, mean_a, mean_b, diff, lo, hi, p_w, p_t,
                        diff / sd if sd > 0 else None, confidence)

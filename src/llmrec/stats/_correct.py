"""Multiple-comparison corrections over a family of p-values.

- :func:`holm`: Holm's step-down procedure (Holm 1979), controls the family-wise error rate.
  Sorted ascending, ``p_(j)`` is compared with ``alpha / (m - j + 1)``; testing *stops at the
  first non-rejection*, so no later (larger) p-value is rejected even if it would pass its own
  threshold. Equivalently the adjusted p-values ``max_{i <= j} min(1, (m - i + 1) p_(i))`` are
  compared with ``alpha``. With p = (0.03, 0.04) at alpha = 0.05 Holm rejects neither.
- :func:`benjamini_hochberg`: the BH step-up procedure (Benjamini & Hochberg 1995), controls the
  false discovery rate: reject every ``p_(i)`` with ``i <= max{j : p_(j) <= j alpha / m}``;
  adjusted ``min_{i >= j} min(1, m p_(i) / i)`` (``scipy.stats.false_discovery_control``).
  With p = (0.03, 0.04) at alpha = 0.05 BH rejects both.

NaN / ``None`` entries (comparisons that could not be tested) are not part of the family: they
stay ``None`` and do not count in ``m``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _family(p: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.array([np.nan if v is None else v for v in p], dtype=np.float64)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return arr, ~np.isnan(arr)


def _out(arr: np.ndarray, ok: np.ndarray, adjusted: np.ndarray) -> list[float | None]:
    out: list[float | None] = [None] * len(arr)
    for i, v in zip(np.flatnonzero(ok), adjusted):
        out[i] = float(v)
    return out


def holm(p: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (reject where ``<= alpha``)."""
    arr, ok = _family(p)
    q = arr[ok]
    m = len(q)
    order = np.argsort(q, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * q[order]).clip(max=1.0)
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return _out(arr, ok, adjusted)


def benjamini_hochberg(p: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg step-up adjusted p-values (reject where ``<= alpha``)."""
    arr, ok = _family(p)
    if not ok.any():
        return [None] * len(arr)
    from ._paired import _scipy_stats

    return _out(arr, ok, _scipy_stats().false_discovery_control(arr[ok], method="bh"))


def rejected(adjusted: Sequence[float | None], alpha: float = 0.05) -> list[bool | None]:
    """Which hypotheses an adjusted family rejects at ``alpha`` (``None`` = not tested)."""
    return [None if v is None else bool(v <= alpha) for v in adjusted]

"""How good is a set of code tuples: collisions, codebook use, entropy, reconstruction.

- ``collision_rate``: share of items whose raw tuple (before de-duplication) equals another
  item's; ``distinct_before``: number of distinct raw tuples.
- per level (of the final, unique codes): ``used`` codes, ``utilisation`` = used / codebook
  size, ``entropy_bits`` of the code distribution and its maximum ``log2(codebook_size)``.
  A collapsed codebook has utilisation near 1/K and entropy near 0.
- ``reconstruction_error``: ``sum ||x - decode(encode(x))||^2 / sum ||x - mean||^2`` where the
  method decodes (RQ-KMeans, RQ-VAE, PQ), else ``None``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._table import format_table


def entropy_bits(codes: np.ndarray, size: int) -> float:
    """Shannon entropy (bits) of the empirical distribution of ``codes`` over ``size`` values."""
    if len(codes) == 0:
        return 0.0
    p = np.bincount(codes, minlength=size) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def code_diagnostics(codes: np.ndarray, sizes: tuple[int, ...]) -> dict[str, Any]:
    """Per-level statistics of (n, L) codes with codebook ``sizes``."""
    levels = []
    for level, size in enumerate(sizes):
        col = codes[:, level]
        used = len(np.unique(col))
        levels.append({"level": level, "codebook_size": int(size), "used": used,
                       "utilisation": used / size, "entropy_bits": entropy_bits(col, size),
                       "max_entropy_bits": math.log2(size) if size > 1 else 0.0})
    return {"n_items": len(codes), "n_levels": len(sizes), "levels": levels}


def format_diagnostics(diagnostics: dict[str, Any]) -> str:
    """A readable summary: one line of totals, then a table with one row per level."""
    rec = diagnostics.get("reconstruction_error")
    head = (f"items {diagnostics.get('n_items')}  "
            f"distinct tuples before de-dup {diagnostics.get('distinct_before')}  "
            f"collision rate {diagnostics.get('collision_rate', 0.0):.2%}  "
            f"reconstruction error {'-' if rec is None else f'{rec:.4f}'}")
    rows = [[d["level"], d["codebook_size"], d["used"], d["utilisation"], d["entropy_bits"],
             d["max_entropy_bits"]] for d in diagnostics.get("levels", [])]
    table = format_table(["level", "codebook", "used", "utilisation", "entropy bits",
                          "max bits"], rows, digits=3)
    return head + "\n" + table

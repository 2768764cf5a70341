"""Statistics that say whether a difference between models is real.

Paired tests over users (Wilcoxon signed-rank, paired t-test), a seeded bootstrap interval of
the mean difference, Cohen's d_z, and Holm / Benjamini-Hochberg corrections over a family of
comparisons; :func:`compare_runs` applies them to run folders' per-user metrics.
"""

from ._compare import DEFAULT_METRICS, compare_runs, significance_rows, significance_table
from ._correct import benjamini_hochberg, holm, rejected
from ._paired import PairedResult, bootstrap_ci, paired_arrays, paired_test

__all__ = ["DEFAULT_METRICS", "PairedResult", "benjamini_hochberg", "bootstrap_ci",
           "compare_runs", "holm", "paired_arrays", "paired_test", "rejected",
           "significance_rows", "significance_table"]

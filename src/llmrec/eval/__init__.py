"""Evaluation: full-ranking top-K metrics and the batched evaluator."""

from ._evaluator import DEFAULT_KS, MASKS, evaluate
from ._metrics import METRICS, metrics_from_ranks, target_ranks

__all__ = ["DEFAULT_KS", "MASKS", "METRICS", "evaluate", "metrics_from_ranks", "target_ranks"]

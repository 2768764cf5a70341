"""Evaluation: full-ranking top-K metrics, beyond-accuracy metrics and the batched evaluator."""

from ._beyond import BEYOND, Catalogue, beyond_accuracy, genre_matrix, gini, top_k_lists
from ._evaluator import DEFAULT_KS, MASKS, evaluate
from ._metrics import METRICS, metrics_from_ranks, target_ranks
from ._per_user import read_per_user, write_per_user

__all__ = ["BEYOND", "DEFAULT_KS", "MASKS", "METRICS", "Catalogue", "beyond_accuracy",
           "evaluate", "genre_matrix", "gini", "metrics_from_ranks", "read_per_user",
           "target_ranks", "top_k_lists", "write_per_user"]

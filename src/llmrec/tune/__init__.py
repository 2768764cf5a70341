"""Hyper-parameter search over any registered model (Optuna; see :mod:`._search`)."""

from ._search import TuneResult, apply_values, study_folder, tune
from ._space import Param, SearchSpace, load_space, parse_space

__all__ = ["Param", "SearchSpace", "TuneResult", "apply_values", "load_space", "parse_space",
           "study_folder", "tune"]

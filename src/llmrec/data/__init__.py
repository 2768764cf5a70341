"""Data: readers, named data sets, typed containers, preprocessing and splits."""

from ._dataset import Dataset, Preprocessing, build_dataset
from ._fetch import REGISTRY, dataset_dir, fetch, is_fetched
from ._interactions import Interactions
from ._load import load_dataset
from ._split import EvalCases, Split, leave_one_out, make_split, temporal_split
from ._stats import describe, tie_order_agreement
from ._vocab import Vocabulary
from .formats import RawData, read_path

__all__ = [
    "REGISTRY", "Dataset", "EvalCases", "Interactions", "Preprocessing", "RawData", "Split",
    "Vocabulary", "build_dataset", "dataset_dir", "describe", "fetch", "is_fetched",
    "leave_one_out", "load_dataset", "make_split", "read_path", "temporal_split",
    "tie_order_agreement",
]

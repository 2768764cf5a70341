"""Data: readers, named data sets, typed containers, preprocessing and splits."""

from ._dataset import Dataset, Preprocessing, build_dataset
from ._fetch import REGISTRY, dataset_dir, fetch, is_fetched
from ._interactions import Interactions
from ._load import load_dataset, read_tsv
from ._split import (TEST, TRAIN, VALID, EvalCases, Split, leave_one_out, make_split,
                     temporal_split)
from ._stats import MIN_TIE_USERS, describe, tie_order_agreement
from ._vocab import Vocabulary
from .formats import RawData, check_encoding, parse_separator, read_path

__all__ = [
    "MIN_TIE_USERS", "REGISTRY", "TEST", "TRAIN", "VALID", "Dataset", "EvalCases",
    "Interactions", "Preprocessing", "RawData", "Split", "Vocabulary", "build_dataset",
    "check_encoding", "dataset_dir", "describe", "fetch", "is_fetched", "leave_one_out",
    "load_dataset", "make_split", "parse_separator", "read_path", "read_tsv", "temporal_split",
    "tie_order_agreement",
]

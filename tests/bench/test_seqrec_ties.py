"""benchmarks/seqrec_ties.py: which users are tied, and their cases with the tie reversed."""

import importlib.util
from pathlib import Path

import numpy as np

from llmrec.data import Interactions
from llmrec.data._split import leave_one_out

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "seqrec_ties.py"


def load_script():
    spec = importlib.util.spec_from_file_location("seqrec_ties", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tied_users_are_found_and_their_last_two_events_swapped():
    ties = load_script()
    # user 0: items 1, 2, 3, 4 with the last two in the same second (tied);
    # user 1: items 5, 6, 7 at distinct times (not tied)
    user = np.array([0, 0, 0, 0, 1, 1, 1])
    item = np.array([1, 2, 3, 4, 5, 6, 7])
    ts = np.array([10, 20, 30, 30, 10, 20, 30])
    split = leave_one_out(Interactions(user, item, ts, np.full(7, np.nan), 2, 8))
    cases = split.test_cases()
    tied = ties.tied_to_validation(split, cases.users)
    assert tied.tolist() == [True, False]

    out = ties.swapped(split, cases, tied)
    assert out.history(0).tolist() == [1, 2, 4] and out.targets(0).tolist() == [3]
    assert out.history(1).tolist() == [5, 6] and out.targets(1).tolist() == [7]
    # the originals are untouched
    assert cases.history(0).tolist() == [1, 2, 3] and cases.targets(0).tolist() == [4]

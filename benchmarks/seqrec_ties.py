"""Test scores of a finished run split by whether a user's test and validation events share a
timestamp, i.e. whether the tie-break (not the clock) decided which of the two is the test one.

    python benchmarks/seqrec_ties.py RUN_DIR [--k 10] [--mask history|none]

Reads the saved model and its data (no training); prints the share of tied users and the mean
NDCG/Recall@K of each group under the run's history-masking policy. The last row breaks the
tied users' ties the other way round: their validation item becomes the target and their test
item the end of the history (neither was trained on), an estimate of how much the test score
depends on the tie-break alone.

Last, whether the tie order is one global item order (:func:`llmrec.data.tie_order_agreement`;
ML-1M's ``ratings.dat`` order: 95% against 60% for a random one, an order a sequential model
can learn).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from llmrec._table import format_table
from llmrec.data import tie_order_agreement
from llmrec.data._stats import MIN_TIE_USERS
from llmrec.data._split import TEST, VALID, EvalCases, _concat, _indptr
from llmrec.errors import LlmrecError
from llmrec.eval import MASKS, evaluate
from llmrec.runs import open_run


def tied_to_validation(split, users: np.ndarray) -> np.ndarray:
    """For each user: does their (first) test event have the timestamp of their last validation event?"""
    inter = split.interactions
    out = np.zeros(len(users), dtype=bool)
    for k, u in enumerate(users):
        lo, hi = inter.indptr[u], inter.indptr[u + 1]
        part, ts = split.part[lo:hi], inter.timestamp[lo:hi]
        valid_ts = ts[part == VALID]
        out[k] = len(valid_ts) > 0 and ts[part == TEST][0] == valid_ts[-1]
    return out


def swapped(split, cases: EvalCases, which: np.ndarray) -> EvalCases:
    """``cases`` (test cases) with the selected users' validation and test events swapped."""
    valid_events = split.valid
    hist, tgt = [], []
    for k, u in enumerate(cases.users):
        h, t = cases.history(k), cases.targets(k)
        if which[k]:
            valid = valid_events.sequence(u)
            h, t = np.concatenate([h[:len(h) - len(valid)], t]), valid
        hist.append(h)
        tgt.append(t)
    return EvalCases(cases.users, _indptr(hist), _concat(hist), _indptr(tgt), _concat(tgt),
                     cases.n_items)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--mask", choices=MASKS, default=None, help="default: the run's own policy")
    args = p.parse_args()
    try:
        run = open_run(args.run_dir)
    except LlmrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if run.split.kind != "leave_one_out":
        print(f"error: {args.run_dir}: split is {run.split.kind!r}; ties to the validation event "
              "are defined for leave_one_out only", file=sys.stderr)
        return 2
    cases = run.split.test_cases()
    mask = args.mask or run.config.eval.mask
    tied = tied_to_validation(run.split, cases.users)
    per, per_swapped = (evaluate(run.model, c, ks=(args.k,), mask=mask, per_case=True)["per_case"]
                        for c in (cases, swapped(run.split, cases, tied)))
    everyone = np.ones_like(tied)
    rows = []
    for name, scores, sel in [("tied to validation", per, tied), ("not tied", per, ~tied),
                              ("all", per, everyone),
                              ("all, tied ones swapped", per_swapped, everyone)]:
        rows.append([name, int(sel.sum()), f"{sel.mean():.1%}",
                     f"{scores[f'ndcg@{args.k}'][sel].mean():.4f}",
                     f"{scores[f'recall@{args.k}'][sel].mean():.4f}"])
    print(f"{args.run_dir} (mask={mask})")
    print(format_table(["test users", "count", "share", f"ndcg@{args.k}", f"recall@{args.k}"], rows))
    t = tie_order_agreement(run.dataset.interactions)
    print(f"tie order (data.ties={run.config.data.ties!r}): " + (
        "n/a, no item pair at one timestamp in enough users" if t["agreement"] is None else
        f"{t['item_pairs']} item pairs follow each other at one timestamp in >= {MIN_TIE_USERS} "
        "users; "
        f"{t['agreement']:.1%} of those users order the pair the majority's way "
        f"(a random order: {t['chance']:.1%}; one global item order: 100%)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

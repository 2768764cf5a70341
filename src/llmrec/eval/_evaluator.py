"""Batched full-ranking evaluation of any recommender on :class:`~llmrec.data.EvalCases`.

History masking policy (``mask``):

- ``"history"`` (default): items in the case's input history are removed from the ranking
  (score ``-inf``) -- the usual choice when users do not re-consume items (MovieLens has no
  repeat ratings). A target that is also in the history is then a miss.
- ``"none"``: every item is ranked, including ones the user already has.

Targets are ranked against all items (never a sampled subset); see :mod:`._metrics` for ties.

With a :class:`~llmrec.eval.Catalogue`, the top ``max(ks)`` items of every case (from the same
masked scores; ties to the lower index) also give the beyond-accuracy metrics of
:mod:`._beyond` (coverage, Gini, novelty, ARP, intra-list diversity).
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import torch

from ..data import EvalCases
from ._beyond import Catalogue, beyond_accuracy, top_k_lists
from ._metrics import metrics_from_ranks, target_ranks

MASKS = ("history", "none")
DEFAULT_KS = (5, 10, 20)


class Scorer(Protocol):
    def score(self, histories: list[np.ndarray], users: np.ndarray | None = None) -> torch.Tensor:
        """(B, n_items) float scores, higher is better."""


def _padded(indptr: np.ndarray, items: np.ndarray, start: int, stop: int) -> torch.Tensor:
    lengths = np.diff(indptr[start:stop + 1])
    out = np.full((stop - start, max(1, int(lengths.max(initial=0)))), -1, dtype=np.int64)
    rows = np.repeat(np.arange(stop - start), lengths)
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = items[indptr[start]:indptr[stop]]
    return torch.from_numpy(out)


def evaluate(model: Scorer, cases: EvalCases, ks: tuple[int, ...] = DEFAULT_KS,
             mask: Literal["history", "none"] = "history", batch_size: int = 256,
             per_case: bool = False, catalogue: Catalogue | None = None) -> dict:
    """Mean ``recall/hit/ndcg/mrr@K`` over the cases (and per-case arrays if ``per_case``).

    With ``catalogue``, also ``coverage/gini/novelty/arp/ild/ild_vec@K`` (see :mod:`._beyond`;
    ``ild`` needs genres, ``ild_vec`` item vectors), per case where they are per list.
    """
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, not {mask!r}")
    sums: dict[str, list[torch.Tensor]] = {}
    lists: list[np.ndarray] = []
    n = len(cases)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        with torch.no_grad():
            scores = model.score(cases.histories(start, stop),
                                 cases.users[start:stop]).to(torch.float32).clone()
        if scores.shape != (stop - start, cases.n_items):
            raise ValueError(f"score() returned shape {tuple(scores.shape)}, expected "
                             f"{(stop - start, cases.n_items)}")
        if mask == "history":
            hist = cases.history_indptr
            lengths = np.diff(hist[start:stop + 1])
            rows = torch.from_numpy(np.repeat(np.arange(stop - start), lengths))
            cols = torch.from_numpy(cases.history_items[hist[start]:hist[stop]].astype(np.int64))
            scores[rows, cols] = float("-inf")
        if catalogue is not None:
            lists.append(top_k_lists(scores, max(ks)).numpy())           # (B, max K)
        targets = _padded(cases.target_indptr, cases.target_items, start, stop)
        # bound the (rows, targets, items) comparison tensor to ~64M booleans
        step = max(1, (1 << 26) // (targets.shape[1] * cases.n_items))
        for r in range(0, stop - start, step):
            ranks = target_ranks(scores[r:r + step], targets[r:r + step])
            for name, values in metrics_from_ranks(ranks, ks).items():
                sums.setdefault(name, []).append(values)
    per = {name: torch.cat(v).numpy() for name, v in sums.items()}
    out: dict = {name: float(v.mean()) if len(v) else 0.0 for name, v in per.items()}
    if catalogue is not None and n:
        agg, per_list = beyond_accuracy(np.concatenate(lists), catalogue, ks)
        out.update(agg)
        per.update(per_list)
    out["cases"] = n
    if per_case:
        out["per_case"] = per
    return out

"""Top-K metrics from target ranks, over the full catalogue.

Ranking rules (documented, deterministic):

- Every item is scored; masked items (see :mod:`llmrec.eval._evaluator`) get ``-inf``.
- **Ties count against the model**: a target's rank is 1 + the number of non-target items whose
  score is greater than *or equal to* its score, + the number of other targets ranked before it
  (higher score, or equal score and lower item index). A model that gives every item the same
  score therefore ranks its targets last, not first; no metric can be earned from ties.
- Padding never enters: histories and targets are ragged (CSR), never padded with a real id.

For a case with target set ``T`` and ranks ``r_t``:

- ``hit@K``    = 1 if any ``r_t <= K``
- ``recall@K`` = #{t : r_t <= K} / |T|                     (= hit@K for one target)
- ``ndcg@K``   = sum_{r_t <= K} 1/log2(r_t + 1)  /  sum_{i=1}^{min(|T|, K)} 1/log2(i + 1)
- ``mrr@K``    = 1 / min_t r_t if that is <= K, else 0

Reported values are means over cases.
"""

from __future__ import annotations

import math

import torch

METRICS = ("recall", "hit", "ndcg", "mrr")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Ranks (1-based) of ``targets`` in each row of ``scores``; padded targets get 0.

    scores: (B, N) float; targets: (B, T) long, -1 = padding. Returns (B, T) long.
    """
    B, N = scores.shape
    valid = targets >= 0                                          # (B, T)
    safe = targets.clamp(min=0)
    st = scores.gather(1, safe)                                   # (B, T)
    is_target = torch.zeros(B, N + 1, dtype=torch.bool, device=scores.device)
    is_target.scatter_(1, torch.where(valid, targets, N), True)   # padding -> spare column N
    is_target = is_target[:, :N]
    # non-targets scoring >= the target: ties count against the model
    ge = (scores.unsqueeze(1) >= st.unsqueeze(2)) & ~is_target.unsqueeze(1)   # (B, T, N)
    above = ge.sum(-1)
    # other targets ranked before this one: higher score, or equal score and lower index
    s_i, s_j = st.unsqueeze(2), st.unsqueeze(1)                   # (B, T, 1), (B, 1, T)
    i_i, i_j = safe.unsqueeze(2), safe.unsqueeze(1)
    before = ((s_j > s_i) | ((s_j == s_i) & (i_j < i_i))) & valid.unsqueeze(1)
    ranks = 1 + above + before.sum(-1)
    return torch.where(valid, ranks, torch.zeros_like(ranks))


def metrics_from_ranks(ranks: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Per-case metrics (each a (B,) tensor) from (B, T) ranks with 0 = padding."""
    valid = ranks > 0
    n_targets = valid.sum(1).clamp(min=1).to(torch.float64)
    big = torch.iinfo(ranks.dtype).max
    best = torch.where(valid, ranks, torch.full_like(ranks, big)).min(1).values
    gain = torch.where(valid, 1.0 / torch.log2(ranks.to(torch.float64) + 1),
                       torch.zeros((), dtype=torch.float64))
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        inside = valid & (ranks <= k)
        hits = inside.sum(1).to(torch.float64)
        ideal_n = torch.minimum(n_targets, torch.tensor(float(k), dtype=torch.float64))
        ideal = _ideal_dcg(k)[ideal_n.long()]
        out[f"recall@{k}"] = hits / n_targets
        out[f"hit@{k}"] = (hits > 0).to(torch.float64)
        out[f"ndcg@{k}"] = (gain * inside).sum(1) / ideal
        out[f"mrr@{k}"] = torch.where(best <= k, 1.0 / best.to(torch.float64),
                                      torch.zeros((), dtype=torch.float64))
    return out


def _ideal_dcg(k: int) -> torch.Tensor:
    """ideal[n] = sum_{i=1..n} 1/log2(i+1), for n = 0..k."""
    return torch.tensor([0.0] + [sum(1 / math.log2(i + 1) for i in range(1, n + 1))
                                 for n in range(1, k + 1)], dtype=torch.float64)

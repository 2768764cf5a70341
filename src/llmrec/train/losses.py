"""Next-item losses over a shared item embedding table.

All take ``hidden`` (M, D) -- the model's output at M supervised positions -- ``weights``
(N, D) -- the item table -- and ``targets`` (M,) item indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def full_cross_entropy(hidden: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor,
                       exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the whole catalogue (what makes SASRec reach published quality).

    ``exclude`` (M, N) bool leaves items out of row m's softmax (the target never is).
    """
    logits = hidden @ weights.T                                           # (M, N)
    if exclude is not None:
        exclude = exclude.clone()
        exclude[torch.arange(len(targets)), targets] = False
        logits = logits.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(logits, targets)


def binary_cross_entropy(hidden: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Original SASRec loss: the target against one uniformly sampled negative."""
    neg = torch.randint(0, len(weights), targets.shape, generator=generator)
    pos_logit = (hidden * weights[targets]).sum(-1)                       # (M,)
    neg_logit = (hidden * weights[neg]).sum(-1)
    neg_logit = neg_logit.masked_fill(neg == targets, float("-inf"))      # accidental hits
    return (F.softplus(-pos_logit) + F.softplus(neg_logit)).mean()


def sampled_softmax(hidden: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor,
                    num_negatives: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Softmax over the target and ``num_negatives`` uniform negatives shared by the batch."""
    neg = torch.randint(0, len(weights), (num_negatives,), generator=generator)
    pos_logit = (hidden * weights[targets]).sum(-1, keepdim=True)         # (M, 1)
    neg_logit = hidden @ weights[neg].T                                   # (M, K)
    neg_logit = neg_logit.masked_fill(neg.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))

"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking (Rendle et al.,
UAI 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback").

A user vector and an item vector per row of one table; the score of (u, i) is their dot
product. Each training step pushes an item the user has above one the user has not, with the
loss -log sigmoid(x_ui - x_uj). Training, sampling, scoring and persistence are shared with
LightGCN (:mod:`._pairwise`); BPR-MF is LightGCN with zero propagation layers.

Deviations from the paper:

- Adam on mini-batches of 2,048 pairs (the paper: SGD with bootstrap sampling of single
  triples); an epoch visits every distinct training pair once with fresh negatives.
- L2 on the batch's vectors, ``reg_weight`` * 0.5 * sum of squares / batch size, one weight
  for users and items (the paper has three: users, positive items, negative items); no item
  biases.
- Histories of users without a learned vector are folded in (mean of the history's item
  vectors), see :mod:`._pairwise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._pairwise import PairwiseConfig, PairwiseRecommender


@dataclass
class BPRConfig(PairwiseConfig):
    pass


class MFModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, d: int):
        super().__init__()
        self.n_users = n_users
        self.embedding = nn.Embedding(n_users + n_items, d)              # users, then items

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """-> users (U, D), items (N, D)."""
        weight = self.embedding.weight
        return weight[:self.n_users], weight[self.n_users:]


class BPR(PairwiseRecommender):
    name = "bpr"
    config_class = BPRConfig
    config: BPRConfig

    def _build(self) -> nn.Module:
        return MFModule(self.n_users, self.n_items, self.config.embedding_size)

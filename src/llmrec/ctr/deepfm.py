"""DeepFM: A Factorization-Machine based Neural Network for CTR Prediction (Guo et al., IJCAI 2017).

One set of field embeddings feeds two parts whose logits are summed: a factorization machine
(bias + first-order weights + pairwise inner products of all fields, computed in O(F D) as
``0.5 * ((sum v)^2 - sum v^2)``) and an MLP over the concatenated fields.

Fields: user id, item id, user attributes, item year, genres (mean of genre embeddings), the
mean of the history (item + rating embeddings) and, with ``knowledge = true``, KAR's two
augmented vectors.

Deviations from the paper: multi-valued fields (genres, history) enter as mean-pooled
embeddings; augmented knowledge vectors are dense fields whose first-order term is a learned
linear map; dropout on hidden layers only, no batch norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._base import CTRConfig, CTRModel, CTRModule
from ._data import CTRSchema
from ._layers import FeatureEmbedding, mlp


@dataclass
class DeepFMConfig(CTRConfig):
    pass


class DeepFMModule(CTRModule):
    def __init__(self, schema: CTRSchema, cfg: DeepFMConfig):
        super().__init__(schema, cfg)
        d = cfg.embedding_size
        self.first_order = FeatureEmbedding(schema, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.knowledge_linear = nn.Linear(d, 1, bias=False) if self.adapter else None
        n_fields = self.features.num_fields + 1 + self.num_knowledge_fields
        self.deep = mlp(n_fields * d, cfg.mlp_sizes, cfg.dropout, out_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        know = self.knowledge_fields(batch)                                   # (B, 2|0, D)
        emb = torch.cat([self.features.fields(batch),                         # (B, F0, D)
                         self.features.pooled_history(batch).unsqueeze(1),    # (B, 1, D)
                         know], dim=1)                                        # (B, F, D)
        first = (self.first_order.fields(batch).sum((1, 2))
                 + self.first_order.pooled_history(batch).sum(-1))            # (B,)
        if self.knowledge_linear is not None:
            first = first + self.knowledge_linear(know).sum((1, 2))
        second = 0.5 * (emb.sum(1).pow(2) - emb.pow(2).sum(1)).sum(-1)       # (B,)
        deep = self.deep(emb.flatten(1)).squeeze(-1)                          # (B,)
        return self.bias + first + second + deep


class DeepFM(CTRModel):
    name = "deepfm"
    config_class = DeepFMConfig

    def _build(self, schema: CTRSchema) -> CTRModule:
        return DeepFMModule(schema, self.config)

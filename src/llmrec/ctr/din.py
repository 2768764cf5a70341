"""DIN: Deep Interest Network for Click-Through Rate Prediction (Zhou et al., KDD 2018).

The user's history is pooled with weights that depend on the candidate: a small "local
activation unit" MLP scores each history item against the target item from
``[h, t, h - t, h * t]``, and the history vector is the weighted sum (weights are *not*
softmax-normalised, as in the paper, so the pooled vector keeps the intensity of interest). The
interest vector, the other field embeddings and, with ``knowledge = true``, KAR's two augmented
vectors go through an MLP with Dice activations.

Deviations from the paper: history items carry a rating embedding (added to the item
embedding; the paper's histories are clicks only); no mini-batch aware regularisation (dropout
instead); the target query is the item-id embedding (the paper concatenates goods and category
ids -- genres enter as a separate field here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._base import CTRConfig, CTRModel, CTRModule
from ._data import CTRSchema
from ._layers import mlp


@dataclass
class DINConfig(CTRConfig):
    attention_sizes: tuple[int, ...] = (64, 32)


class DINModule(CTRModule):
    def __init__(self, schema: CTRSchema, cfg: DINConfig):
        super().__init__(schema, cfg)
        d = cfg.embedding_size
        self.attention = mlp(4 * d, cfg.attention_sizes, 0.0, activation="dice", out_dim=1)
        n_fields = self.features.num_fields + 1 + self.num_knowledge_fields
        self.head = mlp(n_fields * d, cfg.mlp_sizes, cfg.dropout, activation="dice", out_dim=1)

    def interest(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Target-aware pooled history (B, D)."""
        hist, mask = self.features.history(batch)                             # (B, H, D), (B, H)
        target = self.features.item(batch["item"]).unsqueeze(1).expand_as(hist)  # (B, H, D)
        unit_in = torch.cat([hist, target, hist - target, hist * target], dim=-1)  # (B, H, 4D)
        weight = self.attention(unit_in).squeeze(-1) * mask                   # (B, H)
        return (weight.unsqueeze(-1) * hist).sum(1)                           # (B, D)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([self.features.fields(batch), self.interest(batch).unsqueeze(1),
                       self.knowledge_fields(batch)], dim=1).flatten(1)       # (B, F*D)
        return self.head(x).squeeze(-1)                                       # (B,)


class DIN(CTRModel):
    name = "din"
    config_class = DINConfig

    def _build(self, schema: CTRSchema) -> CTRModule:
        return DINModule(schema, self.config)

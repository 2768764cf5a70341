"""DCN-V2: Improved Deep & Cross Network (Wang et al., WWW 2021).

The concatenated field embeddings ``x0`` (B, F*D) go through ``num_cross_layers`` cross layers
``x_{l+1} = x0 * (W_l x_l + b_l) + x_l`` (full-rank ``W_l``, explicit bounded-degree feature
crosses) and an MLP; ``structure = "parallel"`` concatenates the two outputs before the final
linear layer, ``"stacked"`` feeds the cross output into the MLP.

Fields are those of DeepFM (user, item, attributes, genres mean, history mean) plus, with
``knowledge = true``, KAR's two augmented vectors.

Deviations from the paper: no low-rank mixture-of-experts cross layer (DCN-Mix), the full-rank
form only; multi-valued fields mean-pooled; no batch norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ._base import CTRConfig, CTRModel, CTRModule
from ._data import CTRSchema
from ._layers import mlp


@dataclass
class DCNv2Config(CTRConfig):
    num_cross_layers: int = 3
    structure: Literal["parallel", "stacked"] = "parallel"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_cross_layers < 1:
            raise ValueError(f"num_cross_layers must be >= 1, not {self.num_cross_layers}")


class CrossNetwork(nn.Module):
    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_layers))
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0                                                                # (B, P)
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class DCNv2Module(CTRModule):
    def __init__(self, schema: CTRSchema, cfg: DCNv2Config):
        super().__init__(schema, cfg)
        n_fields = self.features.num_fields + 1 + self.num_knowledge_fields
        width = n_fields * cfg.embedding_size
        self.structure = cfg.structure
        self.cross = CrossNetwork(width, cfg.num_cross_layers)
        self.deep = mlp(width, cfg.mlp_sizes, cfg.dropout)
        head_in = cfg.mlp_sizes[-1] + (width if cfg.structure == "parallel" else 0)
        self.head = nn.Linear(head_in, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = torch.cat([self.features.fields(batch),
                        self.features.pooled_history(batch).unsqueeze(1),
                        self.knowledge_fields(batch)], dim=1).flatten(1)      # (B, F*D)
        if self.structure == "parallel":
            h = torch.cat([self.cross(x0), self.deep(x0)], dim=-1)           # (B, F*D + M)
        else:
            h = self.deep(self.cross(x0))                                     # (B, M)
        return self.head(h).squeeze(-1)                                       # (B,)


class DCNv2(CTRModel):
    name = "dcnv2"
    config_class = DCNv2Config

    def _build(self, schema: CTRSchema) -> CTRModule:
        return DCNv2Module(schema, self.config)

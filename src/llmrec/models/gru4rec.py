"""GRU4Rec: session-based recommendations with recurrent neural networks (Hidasi et al., ICLR 2016).

A GRU reads the item sequence; its state at each position predicts the next item by a dot
product with the item embedding table.

Deviations from the paper:

- Whole user histories as sequences (padded mini-batches) rather than session-parallel
  mini-batches; the hidden state starts at zero for every training window.
- Loss: full-catalogue softmax cross-entropy on every position by default (``loss="ce"``), which
  "The Effect of Third Party Implementations on Reproducibility" (Hidasi & Czapp, RecSys 2023)
  finds competitive with the paper's BPR-max / TOP1-max; ``"bce"`` and ``"sampled_softmax"``
  are options.
- Output scores use the input embedding table (tied weights) after a linear projection of the
  GRU state, as in the authors' later versions with ``constrained_embedding``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._items import ItemEmbedding
from ._sequence import NextItemRecommender, SequentialConfig


@dataclass
class GRU4RecConfig(SequentialConfig):
    num_layers: int = 1
    hidden_size: int = 0            # 0 = embedding_size
    loss: Literal["ce", "bce", "sampled_softmax"] = "ce"
    num_negatives: int = 256        # sampled_softmax only


class GRU4RecModule(nn.Module):
    def __init__(self, items: ItemEmbedding, cfg: GRU4RecConfig):
        super().__init__()
        d, h = cfg.embedding_size, cfg.hidden_size or cfg.embedding_size
        self.items = items                                  # index n_items = padding
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(d, h, cfg.num_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.proj = nn.Linear(h, d)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """items (B, T), lengths (B,) -> states (B, T, D); padding positions are zeros."""
        x = self.drop(self.items(items))                                 # (B, T, D)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=items.shape[1])
        return self.proj(self.drop(out))                                 # (B, T, D)


class GRU4Rec(NextItemRecommender):
    name = "gru4rec"
    config_class = GRU4RecConfig
    config: GRU4RecConfig

    def _build(self) -> nn.Module:
        return GRU4RecModule(self._item_embedding(), self.config)

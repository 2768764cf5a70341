"""HSTU: Hierarchical Sequential Transduction Units (Zhai et al., "Actions Speak Louder than
Words: Trillion-Parameter Sequential Transducers for Generative Recommendations", ICML 2024).

Each layer (the paper's equations 1-3)::

    U, V, Q, K = split(SiLU(W1 LN(x)))        U, V: (B, T, H*dv); Q, K: (B, T, H*dqk)
    A          = SiLU(Q K^T + rab) / n         (B, H, T, T), causal, no softmax
    y          = W2 Drop(LN(A V) * U)          (B, T, D)
    x          = x + y

"Pointwise aggregated attention": the attention weights are SiLU(q.k + rab) divided by the
sequence length ``n`` instead of a softmax, so the weights of a history do not have to sum to
one and the intensity of a user's engagement is kept. ``rab`` is a relative attention bias:
one learned scalar per head and relative position j - i.

Deviations from the paper and its reference code (facebookresearch/generative-recommenders),
each stated:

- Time bias: the reference adds a learned bias for the bucketed log time gap between two
  events. llmrec's recommender contract passes histories as item sequences without
  timestamps (``score(histories)``), so only the relative *position* bias is used; the
  position bias is what remains on data without timestamps in the reference code too.
- Loss: the full-catalogue softmax cross-entropy shared by llmrec's sequential models
  (``loss="ce"``, optionally ``softmax_over="unseen"`` as in SASRec) instead of the
  reference's sampled softmax over 128 negatives; like the reference, states and item
  embeddings are L2-normalised and divided by a temperature (``temperature``, 0.05) when
  ``l2_norm=True`` (the default).
- The attention normaliser ``n`` is ``max_seq_len`` (the reference divides by the padded
  length of the batch, which makes a history's encoding depend on its batch); a fixed ``n``
  keeps batch and one-by-one scores equal.
- Input: item embeddings times sqrt(d) plus learned absolute positions counted from the start
  of the window, dropout, as the reference's input preprocessor; the output is layer-normed
  and L2-normalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import added_option
from ._items import ItemEmbedding
from ._sequence import NextItemRecommender, SequentialConfig
from ._transformer import attention_mask


@dataclass
class HSTUConfig(SequentialConfig):
    num_layers: int = 2
    num_heads: int = 1
    attention_dim: int = 0          # dqk per head; 0 = embedding_size / num_heads
    linear_dim: int = 0             # dv per head; 0 = embedding_size / num_heads
    attention_dropout: float = 0.0
    learning_rate: float = 1e-3
    loss: Literal["ce", "bce", "sampled_softmax"] = "ce"
    num_negatives: int = 128        # sampled_softmax only
    l2_norm: bool = True            # cosine scores / temperature (the reference's setting)
    temperature: float = 0.05
    softmax_over: Literal["all", "unseen"] = added_option("all")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embedding_size % self.num_heads:
            raise ValueError(f"embedding_size {self.embedding_size} is not divisible by "
                             f"num_heads {self.num_heads}")
        if self.attention_dim < 0 or self.linear_dim < 0:
            raise ValueError("attention_dim and linear_dim must be >= 0 (0 = automatic)")
        if not 0 <= self.attention_dropout < 1:
            raise ValueError(f"attention_dropout must be in [0, 1), not {self.attention_dropout}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {self.temperature}")
        if self.softmax_over != "all" and self.loss != "ce":
            raise ValueError(f'softmax_over="{self.softmax_over}" needs loss="ce", '
                             f'not "{self.loss}"')


class RelativePositionBias(nn.Module):
    """A learned scalar per head for every relative position j - i in [-(L-1), L-1]."""

    def __init__(self, max_len: int, num_heads: int):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(num_heads, 2 * max_len - 1).normal_(std=0.02))

    def forward(self, T: int) -> torch.Tensor:
        """(H, T, T): bias[h, i, j] = weight[h, (j - i) + max_len - 1]."""
        idx = torch.arange(T)
        rel = (idx.unsqueeze(0) - idx.unsqueeze(1)).clamp(-(self.max_len - 1), self.max_len - 1)
        return self.weight[:, rel + self.max_len - 1]


class HSTULayer(nn.Module):
    def __init__(self, d: int, num_heads: int, dqk: int, dv: int, dropout: float,
                 attention_dropout: float, max_len: int):
        super().__init__()
        self.h, self.dqk, self.dv, self.n = num_heads, dqk, dv, max_len
        self.norm_in = nn.LayerNorm(d)
        self.uvqk = nn.Linear(d, num_heads * (2 * dv + 2 * dqk))
        self.rab = RelativePositionBias(max_len, num_heads)
        self.norm_av = nn.LayerNorm(num_heads * dv)
        self.out = nn.Linear(num_heads * dv, d)
        self.drop = nn.Dropout(dropout)
        self.attention_dropout = attention_dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); attn_mask: (B, 1, T, T) bool, True = may attend."""
        B, T, _ = x.shape
        H, dqk, dv = self.h, self.dqk, self.dv
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split(
            [H * dv, H * dv, H * dqk, H * dqk], dim=2)
        q = q.view(B, T, H, dqk).transpose(1, 2)                         # (B, H, T, dqk)
        k = k.view(B, T, H, dqk).transpose(1, 2)                         # (B, H, T, dqk)
        v = v.view(B, T, H, dv).transpose(1, 2)                          # (B, H, T, dv)
        scores = q @ k.transpose(2, 3) + self.rab(T)                     # (B, H, T, T)
        weights = F.silu(scores) / self.n * attn_mask                    # pointwise, causal
        if self.training and self.attention_dropout:
            weights = F.dropout(weights, self.attention_dropout)
        av = (weights @ v).transpose(1, 2).reshape(B, T, H * dv)         # (B, T, H*dv)
        return x + self.out(self.drop(self.norm_av(av) * u))


class HSTUModule(nn.Module):
    def __init__(self, items: ItemEmbedding, cfg: HSTUConfig):
        super().__init__()
        d, H = cfg.embedding_size, cfg.num_heads
        self.scale = math.sqrt(d)
        self.items = items                                               # index n_items = pad
        self.pos_emb = nn.Embedding(cfg.max_seq_len, d)
        nn.init.normal_(self.pos_emb.weight, std=1 / math.sqrt(d))
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            HSTULayer(d, H, cfg.attention_dim or d // H, cfg.linear_dim or d // H, cfg.dropout,
                      cfg.attention_dropout, cfg.max_seq_len) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """items (B, T), lengths (B,) -> states (B, T, D)."""
        T = items.shape[1]
        pos = torch.arange(T).expand_as(items)
        x = self.drop(self.items(items) * self.scale + self.pos_emb(pos))  # (B, T, D)
        mask = attention_mask(lengths, T, causal=True)                   # (B, 1, T, T)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class HSTU(NextItemRecommender):
    name = "hstu"
    config_class = HSTUConfig
    config: HSTUConfig

    def _build(self) -> nn.Module:
        return HSTUModule(self._item_embedding(), self.config)

    def _states(self, states: torch.Tensor) -> torch.Tensor:
        if not self.config.l2_norm:
            return states
        return F.normalize(states, dim=-1) / self.config.temperature

    def item_weights(self) -> torch.Tensor:
        table = self.module.items.table()                                # (N, D)
        return F.normalize(table, dim=-1) if self.config.l2_norm else table

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        self.module.eval()
        return self._states(self._encode_histories(histories)) @ self.item_weights().T

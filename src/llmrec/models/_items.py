"""Item representations for sequential models: an ID table, frozen content vectors, or both.

``item_input`` selects what an item index becomes (``D`` = embedding size)::

    "id"       E[i]                        a learned row per item (the classic setting)
    "text"     P(v_i)                      a learned projection of a frozen vector v_i (text,
                                           LLM knowledge, ...): no per-item parameters, so
                                           items never seen in training can be recommended
    "id+text"  E[i] + P(v_i)               fusion by sum

Indices ``n_items ..`` are special tokens (padding first, then e.g. BERT4Rec's ``[MASK]``);
they always have learned rows, and padding's row is zero.

Scores use the same representations (tied weights) unless ``tied=False``, which adds a separate
output table of item rows (``id`` and ``id+text`` only).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ITEM_INPUTS = ("id", "text", "id+text")


class ItemEmbedding(nn.Module):
    def __init__(self, n_items: int, d: int, special_tokens: int = 1, item_input: str = "id",
                 vectors: torch.Tensor | None = None, tied: bool = True):
        super().__init__()
        if item_input not in ITEM_INPUTS:
            raise ValueError(f"item_input must be one of {ITEM_INPUTS}, not {item_input!r}")
        if not tied and item_input == "text":
            raise ValueError("tied=False adds per-item output rows; it needs item_input "
                             "'id' or 'id+text'")
        uses_text = item_input != "id"
        if uses_text and (vectors is None or vectors.shape[0] != n_items):
            raise ValueError(f"item_input={item_input!r} needs one vector per item "
                             f"({n_items}); got {None if vectors is None else tuple(vectors.shape)}")
        self.n_items = n_items
        self.pad = n_items
        rows = n_items + special_tokens if item_input != "text" else special_tokens
        pad_row = self.pad if item_input != "text" else 0
        self.table_emb = nn.Embedding(rows, d, padding_idx=pad_row)
        nn.init.normal_(self.table_emb.weight, std=1 / math.sqrt(d))
        with torch.no_grad():
            self.table_emb.weight[pad_row].zero_()
        self.item_input = item_input
        self.out_emb = None if tied else nn.Embedding(n_items, d)
        if self.out_emb is not None:
            nn.init.normal_(self.out_emb.weight, std=1 / math.sqrt(d))
        if uses_text:
            self.register_buffer("vectors", vectors.float(), persistent=True)   # (N, Dv)
            self.proj = nn.Sequential(nn.Linear(vectors.shape[1], d), nn.GELU(),
                                      nn.Linear(d, d))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """items (...) long -> (..., D)."""
        if self.item_input == "id":
            return self.table_emb(items)
        special = items >= self.n_items
        text = self.proj(self.vectors[items.clamp(max=self.n_items - 1)])     # (..., D)
        text = text.masked_fill(special.unsqueeze(-1), 0.0)
        if self.item_input == "text":
            extra = self.table_emb((items - self.n_items).clamp(min=0))
            return text + extra.masked_fill(~special.unsqueeze(-1), 0.0)
        return self.table_emb(items) + text

    def table(self) -> torch.Tensor:
        """Representations of all real items, (N, D): the output layer."""
        if self.out_emb is not None:
            return self.out_emb.weight
        if self.item_input == "id":
            return self.table_emb.weight[:self.n_items]
        return self.forward(torch.arange(self.n_items))

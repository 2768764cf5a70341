"""SASRec: Self-Attentive Sequential Recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the user's item sequence; the state at each position predicts the next
item by a dot product with the (shared) item embedding table.

Deviations from the paper, each a known improvement:

- Loss: full-catalogue softmax cross-entropy by default (``loss="ce"``), as in "Turning Dross
  Into Gold Loss: is BERT4Rec really better than SASRec?" (Klenitskiy & Vasilev, RecSys 2023)
  and gSASRec (Petrov & Macdonald, RecSys 2023); the paper's binary cross-entropy with one
  negative (``"bce"``) and a sampled softmax (``"sampled_softmax"``) are options.
  ``softmax_over="unseen"`` leaves the other items of the training window out of the
  softmax, so that a user's own items are never negatives (the reference's "SASRec+ 3000"
  samples its negatives from the items the user has not interacted with).
- Pre-LayerNorm blocks with a GELU feed-forward layer of ``ffn_size`` (default: the embedding
  size, as in the paper; the paper normalises queries only and uses ReLU); no dropout on
  attention probabilities.
- Item embeddings enter unscaled (``scale_embeddings=False``; the paper multiplies them by
  sqrt(d)): on ML-100K this lifted test NDCG@10 and above all the unmasked figures, see the
  README's results.
- ``block="paper"`` swaps in the block of the authors' code instead (residuals around the
  normalised inputs, ReLU, dropout on attention probabilities; see
  :class:`._transformer.SASRecPaperBlock`), usually with ``scale_embeddings=True``.
- Positions are counted from the most recent item by default (so the result never depends on
  padding); ``positions="from_start"`` counts them from the first item of the window, as the
  authors' code does (with right padding and causal attention this does not depend on padding
  either, and it tells the last state how long the history is).
- Long histories are cut into several training windows instead of keeping only the last one
  (``train_windows="last"`` keeps only the last, as the reference implementations do).
- Item tables start with std 1/sqrt(d) and the other layers at PyTorch's defaults; ``init_std=0.02``
  draws every Linear and Embedding weight from N(0, 0.02) instead, as the reference
  implementations do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import added_option
from ._sequence import NextItemRecommender, SequentialConfig
from ._items import ItemEmbedding
from ._transformer import SASRecPaperBlock, TransformerBlock, attention_mask, reverse_positions


@dataclass
class SASRecConfig(SequentialConfig):
    num_layers: int = 2
    num_heads: int = 1
    ffn_size: int = 0               # 0 = embedding_size
    loss: Literal["ce", "bce", "sampled_softmax"] = "ce"
    num_negatives: int = 256        # sampled_softmax only
    # Multiply item embeddings by sqrt(embedding_size) at the input (the paper, and the
    # original transformer). Off by default: the scaled item then dominates the residual
    # stream, and with tied output embeddings the model scores the items it was just shown
    # highest (on ML-100K half of the unmasked top 10 were already-rated items).
    scale_embeddings: bool = False
    # "pre_ln": x + Drop(f(LN(x))) blocks with GELU; "paper": the authors' block (above).
    block: Literal["pre_ln", "paper"] = added_option("pre_ln")
    # Position ids: "from_end" (the last item is 0) or "from_start" (the first item is 0).
    positions: Literal["from_end", "from_start"] = added_option("from_end")
    # Which items the "ce" softmax ranks each target against: "all" (the catalogue) or
    # "unseen" (leaves out the other items of the training window, so a user's own items are
    # never negatives -- as the reference's "SASRec+ 3000" draws its negatives).
    softmax_over: Literal["all", "unseen"] = added_option("all")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.softmax_over != "all" and self.loss != "ce":
            raise ValueError(f'softmax_over="{self.softmax_over}" needs loss="ce", '
                             f'not "{self.loss}"')


class SASRecModule(nn.Module):
    def __init__(self, items: ItemEmbedding, cfg: SASRecConfig):
        super().__init__()
        d = cfg.embedding_size
        self.scale = math.sqrt(d) if cfg.scale_embeddings else 1.0
        self.from_start = cfg.positions == "from_start"
        self.items = items                                  # index n_items = padding
        self.pos_emb = nn.Embedding(cfg.max_seq_len, d)
        nn.init.normal_(self.pos_emb.weight, std=1 / math.sqrt(d))
        self.drop = nn.Dropout(cfg.dropout)
        block = SASRecPaperBlock if cfg.block == "paper" else TransformerBlock
        self.blocks = nn.ModuleList(block(d, cfg.num_heads, cfg.dropout, cfg.ffn_size or d)
                                    for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(d, eps=1e-8 if cfg.block == "paper" else 1e-5)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """items (B, T), lengths (B,) -> states (B, T, D)."""
        T = items.shape[1]
        pos = (torch.arange(T).expand_as(items) if self.from_start
               else reverse_positions(lengths, T))
        x = self.items(items) * self.scale + self.pos_emb(pos)
        x = self.drop(x)
        mask = attention_mask(lengths, T, causal=True)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


class SASRec(NextItemRecommender):
    name = "sasrec"
    config_class = SASRecConfig
    config: SASRecConfig

    def _build(self) -> nn.Module:
        return SASRecModule(self._item_embedding(), self.config)

"""Building blocks the CTR models share: feature embeddings, MLPs, Dice.

:class:`FeatureEmbedding` turns a batch (see :meth:`llmrec.ctr.CTRData.batch`) into field
vectors. The item table is shared by the target item and the history items, so a history of
items the model has learned about means something. Ratings in the history are embedded and
added to their item (a rated history, as in KAR's ML-1M setup).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._data import CTRSchema


class Dice(nn.Module):
    """Data-adaptive activation of DIN: ``p * x + (1 - p) * alpha * x``, ``p = sigmoid(BN(x))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-8)
        self.alpha = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])                                      # (N, D)
        p = torch.sigmoid(self.bn(flat))
        return (p * flat + (1 - p) * self.alpha * flat).reshape(shape)


def mlp(in_dim: int, sizes: Sequence[int], dropout: float, activation: str = "relu",
        out_dim: int | None = None) -> nn.Sequential:
    """Linear -> activation -> dropout per hidden size, then an optional output layer."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_dim, size),
                   Dice(size) if activation == "dice" else nn.ReLU(),
                   nn.Dropout(dropout)]
        in_dim = size
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class FeatureEmbedding(nn.Module):
    """Embeddings of every input field, ``dim`` wide (``dim = 1`` gives FM's linear terms).

    Fields, in order: user id, item id, each user field, each item field, genres (mean of the
    item's genre embeddings) -- ``num_fields`` of them.
    """

    def __init__(self, schema: CTRSchema, dim: int):
        super().__init__()
        self.pad_item = schema.n_items
        self.user = nn.Embedding(schema.n_users, dim)
        self.item = nn.Embedding(schema.n_items + 1, dim, padding_idx=schema.n_items)
        self.user_fields = nn.ModuleList(nn.Embedding(n, dim) for n in schema.user_fields.values())
        self.item_fields = nn.ModuleList(nn.Embedding(n, dim) for n in schema.item_fields.values())
        self.genres = nn.Embedding(schema.n_genres, dim, padding_idx=0)
        self.rating = nn.Embedding(6, dim, padding_idx=0)
        for emb in (self.user, self.item, *self.user_fields, *self.item_fields, self.genres,
                    self.rating):
            nn.init.normal_(emb.weight, std=0.01 if dim > 1 else 1e-4)
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()

    @property
    def num_fields(self) -> int:
        return 3 + len(self.user_fields) + len(self.item_fields)

    def fields(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, num_fields, dim)."""
        genre_mask = (batch["genres"] > 0).unsqueeze(-1).float()             # (B, G, 1)
        genres = (self.genres(batch["genres"]) * genre_mask).sum(1) \
            / genre_mask.sum(1).clamp(min=1)                                  # (B, dim)
        parts = [self.user(batch["user"]), self.item(batch["item"])]
        parts += [e(batch["user_fields"][:, k]) for k, e in enumerate(self.user_fields)]
        parts += [e(batch["item_fields"][:, k]) for k, e in enumerate(self.item_fields)]
        parts.append(genres)
        return torch.stack(parts, dim=1)

    def history(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """History vectors (B, H, dim) = item + rating embedding; mask (B, H) true = real."""
        items = batch["hist_items"]
        mask = items != self.pad_item
        return self.item(items) + self.rating(batch["hist_ratings"]), mask

    def pooled_history(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the history vectors (B, dim); zeros for an empty history."""
        hist, mask = self.history(batch)
        m = mask.unsqueeze(-1).float()                                        # (B, H, 1)
        return (hist * m).sum(1) / m.sum(1).clamp(min=1)

"""What user-item latent-factor models trained with the BPR loss share (BPR-MF, LightGCN).

Training data are the distinct (user, item) pairs of the training split. Every epoch visits
each pair once, in a fresh order, with ``num_negatives`` items drawn uniformly from the items
the user has *not* interacted with in training (vectorised rejection sampling). A batch::

    users  [3, 0, 7]          (B,)    user index
    pos    [5, 2, 9]          (B,)    an item the user has
    neg    [[11], [4], [1]]   (B, K)  items the user does not have (K = num_negatives)

A model's module owns ``embedding`` -- one ``nn.Embedding`` of ``n_users + n_items`` rows,
users first (the layer-0 vectors) -- and ``forward() -> (users (U, D), items (N, D))``, the
vectors it scores with (LightGCN: after propagation). Score of (u, i) = dot product.

Scoring (the :class:`~llmrec.models.Recommender` contract scores *histories*): a row whose
``users`` entry is a user with training interactions is scored with that user's learned vector
(how evaluation and serving of known users call it); any other history -- no ``users`` given,
an unknown user, a user without training interactions -- is *folded in*: its user vector is
the mean of the (final) vectors of the history's items. Fold-in is not in the papers; it is
what lets these models answer explicit histories at all.

The final vectors are computed once per set of weights and cached (keyed by the weight
tensor's version counter, which every optimizer step and every ``load_state_dict`` bumps), so
an evaluation propagates once, not once per batch.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import require_non_negative, require_positive
from ..data import EvalCases, Interactions
from ..errors import ConfigError
from ..train import TrainConfig, Trainer
from .base import Recommender


@dataclass
class PairwiseConfig(TrainConfig):
    """Options shared by BPR-MF and LightGCN (defaults: the LightGCN paper's settings)."""

    embedding_size: int = 64
    batch_size: int = 2048
    learning_rate: float = 1e-3
    epochs: int = 1000
    patience: int = 50
    # L2 on the batch's layer-0 vectors (users, positives, negatives), 0.5 * sum of squares /
    # batch size, times reg_weight: the papers' regulariser (not optimizer weight decay).
    reg_weight: float = 1e-4
    num_negatives: int = 1          # negatives per positive pair; the loss averages over them
    init_std: float = 0.1           # N(0, init_std) initial vectors, as LightGCN's code

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "embedding_size", "num_negatives", "init_std")
        require_non_negative(self, "reg_weight")


def unique_pairs(train: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs of ``train``, sorted by user then item: (E,), (E,) int64."""
    keys = np.unique(train.user.astype(np.int64) * train.n_items + train.item)
    return keys // train.n_items, keys % train.n_items


def sample_negatives(rng: np.random.Generator, users: np.ndarray, n_items: int,
                     seen_keys: np.ndarray, k: int, max_rounds: int = 50) -> np.ndarray:
    """(B, k) items drawn uniformly from those user ``users[b]`` has not seen.

    ``seen_keys``: sorted ``user * n_items + item`` of the training pairs. Draws are redrawn,
    all at once, while any hits a seen item; after ``max_rounds`` rounds (only a user who has
    nearly every item gets there) the remaining draws are kept as they are.
    """
    users = np.asarray(users, dtype=np.int64)[:, None]
    neg = rng.integers(0, n_items, size=(len(users), k))
    for _ in range(max_rounds):
        keys = users * n_items + neg
        pos = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        bad = seen_keys[pos] == keys
        if not bad.any():
            break
        neg[bad] = rng.integers(0, n_items, size=int(bad.sum()))
    return neg


def bpr_loss(users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(pos - neg) = softplus(neg - pos): users (B, D), pos (B, D),
    neg (B, K, D)."""
    pos_score = (users * pos).sum(-1, keepdim=True)                       # (B, 1)
    neg_score = torch.einsum("bd,bkd->bk", users, neg)                    # (B, K)
    return F.softplus(neg_score - pos_score).mean()


class PairwiseRecommender(Recommender):
    """Base of BPR / LightGCN: subclasses build the module (see the module docstring)."""

    config: PairwiseConfig
    module: nn.Module

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.n_users = 0
        self.edge_users = np.zeros(0, np.int64)     # (E,) distinct training pairs
        self.edge_items = np.zeros(0, np.int64)
        self.known_users = np.zeros(0, bool)        # (U,) user has training interactions
        self._cache: tuple[tuple[int, int], torch.Tensor, torch.Tensor] | None = None

    @abstractmethod
    def _build(self) -> nn.Module:
        """The module for ``n_users``, ``n_items`` and the training pairs (seeded by caller)."""

    # -- training -------------------------------------------------------------------------
    def _set_graph(self, users: np.ndarray, items: np.ndarray, n_users: int) -> None:
        self.n_users = n_users
        self.edge_users, self.edge_items = users, items
        self.known_users = np.bincount(users, minlength=n_users) > 0
        self._cache = None

    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        users, items = unique_pairs(train)
        self._set_graph(users, items, train.n_users)
        self._seen_keys = users * self.n_items + items
        torch.manual_seed(self.config.seed)
        self.module = self._build()
        nn.init.normal_(self.module.embedding.weight, std=self.config.init_std)
        result = Trainer(run_dir, progress=progress, mask=valid_mask).fit(self, valid)
        self.fit_info = {**result.summary(), "training_pairs": len(users)}
        del self._seen_keys

    def training_batches(self, epoch: int, rng: np.random.Generator):
        order = rng.permutation(len(self.edge_users))
        users, pos = self.edge_users[order], self.edge_items[order]
        neg = sample_negatives(rng, users, self.n_items, self._seen_keys,
                               self.config.num_negatives)
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            sl = slice(start, start + bs)
            yield {"users": torch.from_numpy(users[sl]), "pos": torch.from_numpy(pos[sl]),
                   "neg": torch.from_numpy(neg[sl])}

    @staticmethod
    def batch_size_of(batch: dict[str, torch.Tensor]) -> int:
        return len(batch["users"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u, p, n = batch["users"], batch["pos"], batch["neg"]                # (B,) (B,) (B, K)
        users, items = self.module()                                      # (U, D), (N, D)
        loss = bpr_loss(users[u], items[p], items[n])
        if self.config.reg_weight:
            e0 = self.module.embedding.weight
            reg = (e0[u].pow(2).sum() + e0[self.n_users + p].pow(2).sum()
                   + e0[self.n_users + n].pow(2).sum() / n.shape[1]) / (2 * len(u))
            loss = loss + self.config.reg_weight * reg
        return loss

    # -- scoring --------------------------------------------------------------------------
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users (U, D), items (N, D)): the vectors scores are dot products of (cached)."""
        weight = self.module.embedding.weight
        key = (id(weight), weight._version)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                users, items = self.module()
            self._cache = (key, users.detach(), items.detach())
        return self._cache[1], self._cache[2]

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        user_emb, item_emb = self.final_embeddings()
        B = len(histories)
        u = np.full(B, -1, np.int64) if users is None else np.asarray(users, dtype=np.int64)
        known = np.zeros(B, bool)                       # rows scored with a learned vector
        inside = (u >= 0) & (u < self.n_users)
        known[inside] = self.known_users[u[inside]]
        queries = torch.empty(B, item_emb.shape[1])                       # (B, D)
        if known.any():
            queries[torch.from_numpy(known)] = user_emb[torch.from_numpy(u[known])]
        fold = np.flatnonzero(~known)
        if len(fold):                     # fold in: mean of the history's item vectors
            lengths = np.array([len(histories[k]) for k in fold])
            rows = torch.from_numpy(np.repeat(np.arange(len(fold)), lengths))
            cols = torch.from_numpy(np.concatenate([histories[k] for k in fold]))
            sums = torch.zeros(len(fold), item_emb.shape[1]).index_add_(0, rows, item_emb[cols])
            queries[torch.from_numpy(fold)] = sums / torch.from_numpy(lengths).unsqueeze(1)
        return queries @ item_emb.T                                       # (B, N)

    def item_weights(self) -> torch.Tensor:
        """(N, D) final item vectors (what serving's ANN channel indexes)."""
        return self.final_embeddings()[1]

    def item_embeddings(self) -> np.ndarray:
        return self.item_weights().float().cpu().numpy()

    # -- persistence ----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = super().state_tensors()
        out["embedding"] = self.module.embedding.weight                   # (U + N, D)
        out["edges.users"] = torch.from_numpy(self.edge_users.astype(np.int32))
        out["edges.items"] = torch.from_numpy(self.edge_items.astype(np.int32))
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        weight = tensors["embedding"]
        n_users = weight.shape[0] - self.n_items
        if n_users < 0 or weight.shape[1] != self.config.embedding_size:
            raise ConfigError(f"saved embedding table {tuple(weight.shape)} does not fit "
                              f"{self.n_items} items and embedding_size "
                              f"{self.config.embedding_size}")
        self._set_graph(tensors["edges.users"].numpy().astype(np.int64),
                        tensors["edges.items"].numpy().astype(np.int64), n_users)
        self.module = self._build()
        self.module.embedding.weight.data.copy_(weight)
        self.module.eval()

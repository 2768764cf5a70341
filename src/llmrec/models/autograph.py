"""AutoGraph: LLM knowledge as quantised latent-factor nodes of the interaction graph (Shan et
al. 2025, "AutoGraph: Enhancing Recommender Systems with LLM-based Graph Construction").

An LLM writes a preference profile per user and a knowledge text per item; a sentence encoder
turns them into vectors. Residual quantisation of the user vectors and, separately, of the item
vectors gives each user and item one code per level; every (level, code) is a *latent-factor
node*. Users link to their user-factor nodes and items to their item-factor nodes, beside the
user-item edges of training. Propagation follows the metapaths: user-item-user and
item-user-item (collaborative), user-factor-user and item-factor-item (semantic: users or
items that share a factor exchange information)::

    x^{k+1} = A_ui x^k + w_uf * A_uf x^k + w_if * A_if x^k        (one layer)
    final   = mean(x^0, ..., x^K) of the user and item rows          (as LightGCN)

where each ``A_r`` is the symmetrically normalised adjacency ``D^-1/2 A D^-1/2`` of one
relation's bipartite graph (user-item, user-userfactor, item-itemfactor) over all nodes, and
``w = softplus(theta)`` are learned per factor relation (initialised to 1; the user-item
relation keeps weight 1, so without factors the model *is* LightGCN). Factor nodes have learned
layer-0 vectors like users and items. Training: BPR loss with L2 on the batch's layer-0 vectors
(:mod:`._pairwise`). Vectors come from :meth:`AutoGraph.set_knowledge` (the run's users and
items, in index order); a user's vector must be built from that user's training history only.

``backbone``: ``"lightgcn"`` propagates all three relations; ``"bpr"`` drops the user-item
relation (matrix factorisation whose users and items are smoothed over their factor nodes:
AutoGraph's model-agnostic use on a non-graph backbone). With ``use_factors = false`` the model
is exactly its backbone (LightGCN or BPR-MF), the ablation without factor nodes.

Deviations from the paper: the paper aggregates each metapath separately and fuses them with
attention before handing the enhanced vectors to any downstream model; here the metapaths are
the relations of one LightGCN-style propagation, weighted by learned scalars, and the backbone
is trained end to end with the factor nodes. The quantiser is our RQ-KMeans (the paper uses
RQ-VAE). Users or items without a vector (not in ``set_knowledge``) get no factor edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ._knowledge import UsesKnowledgeVectors, check_source, mean_vectors  # noqa: F401
from ._pairwise import PairwiseConfig, PairwiseRecommender
from .lightgcn import _SymmetricSpMM, normalized_adjacency

BACKBONES = ("lightgcn", "bpr")


@dataclass
class AutoGraphConfig(PairwiseConfig):
    backbone: str = "lightgcn"
    num_layers: int = 3
    levels: int = 3                  # RQ levels of the user and of the item quantiser
    codebook_size: int = 16          # codes per level (factor nodes per level and side)
    use_factors: bool = True         # false: the backbone alone (ablation)
    # where vectors come from when set_knowledge was not called (llmrec train): "text" =
    # the items' metadata texts through the packaged sentence encoder, "knowledge" = text plus
    # the stored LLM item knowledge; user vectors = mean of the user's training-item vectors
    knowledge: str = "text"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_source(self.knowledge)
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {BACKBONES}, not {self.backbone!r}")
        for name, low, high in (("num_layers", 1, 16), ("levels", 1, 8),
                                ("codebook_size", 2, 4096)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in {low}..{high}, not {value!r}")


def factor_codes(vectors: np.ndarray, levels: int, codebook_size: int, seed: int) -> np.ndarray:
    """(n, levels) raw RQ-KMeans codes of L2-normalised ``vectors`` (collisions kept: shared
    codes are the point)."""
    from ..tokenize import RQKMeans

    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    size = min(codebook_size, len(x))
    return RQKMeans(levels=levels, codebook_size=size, seed=seed).fit(x).codes_


class AutoGraphModule(nn.Module):
    """Layer-0 vectors of users, items, user factors and item factors (in that order) and the
    relation adjacencies over all of them."""

    def __init__(self, adjacencies: dict[str, torch.Tensor], n_users: int, n_items: int,
                 n_factors: int, d: int, num_layers: int, seed: int = 0, std: float = 0.1):
        super().__init__()
        self.n_users, self.n_items, self.num_layers = n_users, n_items, num_layers
        self.adjacencies = adjacencies            # relation -> (T, T) sparse, T = all nodes
        self.embedding = nn.Embedding(n_users + n_items, d)               # layer 0: U, N
        # factor nodes' layer 0 from a generator of their own: the global RNG (and so the
        # user and item vectors) is drawn exactly as in the backbone alone
        gen = torch.Generator().manual_seed(seed + 1)
        self.factors = nn.Parameter(torch.randn(n_factors, d, generator=gen) * std)  # (F, D)
        self.factor_relations = [r for r in adjacencies if r != "user-item"]
        # softplus(0.5413) = 1: every factor relation starts with the user-item weight
        self.relation_logits = nn.Parameter(torch.full((len(self.factor_relations),), 0.5413))

    def relation_weights(self) -> dict[str, float]:
        w = F.softplus(self.relation_logits)
        return {r: float(v) for r, v in zip(self.factor_relations, w.detach())}

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """-> users (U, D), items (N, D): the mean of the K+1 layer outputs."""
        x = torch.cat([self.embedding.weight, self.factors])              # (T, D)
        w = dict(zip(self.factor_relations, F.softplus(self.relation_logits)))
        total = x
        for _ in range(self.num_layers):
            parts = [_SymmetricSpMM.apply(a, x) if r == "user-item"
                     else w[r] * _SymmetricSpMM.apply(a, x)
                     for r, a in self.adjacencies.items()]
            x = torch.stack(parts).sum(0)                                  # (T, D)
            total = total + x
        out = total / (self.num_layers + 1)
        return out[:self.n_users], out[self.n_users:self.n_users + self.n_items]


class AutoGraph(UsesKnowledgeVectors, PairwiseRecommender):
    name = "autograph"
    config_class = AutoGraphConfig
    config: AutoGraphConfig

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.user_vectors: np.ndarray | None = None
        self.item_vectors: np.ndarray | None = None
        self.user_codes = np.zeros((0, 0), np.int64)      # (U, levels), -1: no vector
        self.item_codes = np.zeros((0, 0), np.int64)      # (N, levels)

    def needs_knowledge(self) -> bool:
        return self.config.use_factors

    def _quantise(self) -> None:
        cfg = self.config
        self.user_codes = np.full((self.n_users, cfg.levels), -1, np.int64)
        self.item_codes = np.full((self.n_items, cfg.levels), -1, np.int64)
        if not cfg.use_factors:
            return
        if self.user_vectors is None and self.item_vectors is None:
            raise ConfigError("autograph needs knowledge vectors: call set_knowledge(user_vectors,"
                              " item_vectors) or prepare(dataset, split) before fit (llmrec "
                              "train does), or set use_factors = false")
        for side, vectors, n, out in (("user", self.user_vectors, self.n_users, self.user_codes),
                                      ("item", self.item_vectors, self.n_items, self.item_codes)):
            if vectors is None:
                continue
            self.check_rows(side, vectors, n)
            out[:] = factor_codes(vectors, cfg.levels, cfg.codebook_size, cfg.seed)

    def _fit(self, train, valid, *, run_dir, progress, valid_mask) -> None:
        self.n_users = train.n_users
        self._quantise()
        super()._fit(train, valid, run_dir=run_dir, progress=progress, valid_mask=valid_mask)
        self.fit_info["relation_weights"] = self.module.relation_weights()

    def _factor_edges(self, codes: np.ndarray, node_offset: int, factor_offset: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(entity node, factor node) pairs: one per entity and level with a code."""
        size = self.config.codebook_size
        entity, level = np.nonzero(codes >= 0)
        factor = factor_offset + level * size + codes[entity, level]
        return node_offset + entity, factor

    def _build(self) -> nn.Module:
        cfg = self.config
        U, N = self.n_users, self.n_items
        F_side = cfg.levels * cfg.codebook_size
        total = U + N + 2 * F_side
        relations: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if cfg.backbone == "lightgcn":
            relations["user-item"] = (self.edge_users, U + self.edge_items)
        if cfg.use_factors:
            relations["user-factor"] = self._factor_edges(self.user_codes, 0, U + N)
            relations["item-factor"] = self._factor_edges(self.item_codes, U, U + N + F_side)
        adjacencies = {r: normalized_adjacency(a, b, 0, total) for r, (a, b) in relations.items()
                       if len(a)}
        layers = cfg.num_layers if adjacencies else 0   # bpr without factors: plain MF
        return AutoGraphModule(adjacencies, U, N, 2 * F_side, cfg.embedding_size, layers,
                               cfg.seed, cfg.init_std)

    # -- persistence ----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = super().state_tensors()
        out["factors"] = self.module.factors
        out["relation_logits"] = self.module.relation_logits
        out["codes.users"] = torch.from_numpy(self.user_codes.astype(np.int32))
        out["codes.items"] = torch.from_numpy(self.item_codes.astype(np.int32))
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.user_codes = tensors["codes.users"].numpy().astype(np.int64)
        self.item_codes = tensors["codes.items"].numpy().astype(np.int64)
        factors = tensors["factors"]
        n_factors = 2 * self.config.levels * self.config.codebook_size
        if factors.shape != (n_factors, self.config.embedding_size):
            raise ConfigError(f"saved factor table {tuple(factors.shape)} does not fit "
                              f"{n_factors} factor nodes of size {self.config.embedding_size}")
        super().load_state_tensors(tensors)       # users, items, edges; builds the module
        self.module.factors.data.copy_(factors)
        self.module.relation_logits.data.copy_(tensors["relation_logits"])
        self.module.eval()

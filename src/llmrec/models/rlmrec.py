"""RLMRec: representation learning with large language models for recommendation (Ren et al.,
WWW 2024).

A collaborative backbone (LightGCN or BPR-MF, trained with the BPR loss of :mod:`._pairwise`)
is aligned with frozen semantic vectors of LLM-written user and item profiles, so that the
collaborative vectors keep what the profiles say (the paper: a mutual-information bound). Two
alignments, as in the paper:

- ``contrastive`` (RLMRec-Con): a small MLP maps each profile vector into the collaborative
  space, ``f(s)``; InfoNCE over the batch's users (and, separately, its positive items) pulls a
  node's final collaborative vector ``e`` towards its own ``f(s)`` and away from the others'::

      L_align = mean_i -log( exp(cos(e_i, f(s_i)) / t) / sum_j exp(cos(e_i, f(s_j)) / t) )

- ``generative`` (RLMRec-Gen): a share ``mask_ratio`` of the batch's user and item nodes get a
  learned mask vector instead of their layer-0 vector, the graph is propagated, and an MLP
  maps the masked nodes' final vectors into the profile space, where the same InfoNCE aligns
  them with their own profile vectors (reconstruct the profile from the neighbourhood).

``loss = BPR + reg + kd_weight * L_align``. ``alignment = "none"`` is the backbone alone (the
ablation). Scoring uses only the collaborative vectors: profiles are a training signal, not an
input at serving time.

Profile vectors come from :meth:`set_knowledge` or :meth:`prepare` (:mod:`._knowledge`: the
packaged sentence encoder over item metadata text or text + stored LLM item knowledge; a user's
profile vector is the mean of that user's training items'). Deviations: the paper encodes
LLM-written user profiles; a user vector here is whatever the caller passes (by default the
mean of training-item vectors); the paper's projector is 2 layers with dropout 0.1 -- here 2
layers, no dropout; the paper's LightGCN sums layers, this one averages (as :mod:`.lightgcn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import require_positive
from ..errors import ConfigError
from ._knowledge import UsesKnowledgeVectors, check_source
from ._pairwise import PairwiseConfig, PairwiseRecommender
from .lightgcn import LightGCNModule, normalized_adjacency

ALIGNMENTS = ("contrastive", "generative", "none")


@dataclass
class RLMRecConfig(PairwiseConfig):
    backbone: str = "lightgcn"       # or "bpr"
    num_layers: int = 3              # lightgcn only
    alignment: str = "contrastive"
    kd_weight: float = 0.1           # weight of the alignment loss
    temperature: float = 0.2
    mask_ratio: float = 0.1          # generative: share of the batch's nodes masked
    knowledge: str = "text"          # profile vectors when none are set (see _knowledge)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backbone not in ("lightgcn", "bpr"):
            raise ConfigError(f"backbone must be lightgcn or bpr, not {self.backbone!r}")
        if self.alignment not in ALIGNMENTS:
            raise ConfigError(f"alignment must be one of {ALIGNMENTS}, not {self.alignment!r}")
        check_source(self.knowledge)
        require_positive(self, "temperature")
        if not 0 <= self.kd_weight:
            raise ConfigError(f"kd_weight must be >= 0, not {self.kd_weight!r}")
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"mask_ratio must be in (0, 1), not {self.mask_ratio!r}")
        if isinstance(self.num_layers, bool) or not 1 <= self.num_layers <= 16:
            raise ConfigError(f"num_layers must be in 1..16, not {self.num_layers!r}")


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean InfoNCE of rows of ``a`` (B, D) against their own rows of ``b`` (B, D), the other
    rows as negatives (cosine similarity / temperature)."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature   # (B, B)
    return F.cross_entropy(logits, torch.arange(len(a)))


class RLMRecModule(LightGCNModule):
    """LightGCN propagation (0 layers: matrix factorisation) plus the alignment's MLP and, for
    the generative alignment, a mask vector."""

    def __init__(self, adjacency: torch.Tensor, n_users: int, n_items: int, d: int,
                 num_layers: int, profile_dim: int, alignment: str, seed: int = 0):
        super().__init__(adjacency, n_users, n_items, d, num_layers)
        src, dst = (profile_dim, d) if alignment == "contrastive" else (d, profile_dim)
        hidden = (src + dst) // 2
        with torch.random.fork_rng():      # the backbone's vectors draw as in the backbone
            torch.manual_seed(seed + 2)
            self.project = nn.Sequential(nn.Linear(src, hidden), nn.LeakyReLU(),
                                         nn.Linear(hidden, dst))
        self.mask = nn.Parameter(torch.zeros(1, d))
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def propagate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LightGCN's mean of K+1 layers from layer-0 vectors ``x`` (U+N, D)."""
        from .lightgcn import _SymmetricSpMM

        total = x
        for _ in range(self.num_layers):
            x = _SymmetricSpMM.apply(self.adjacency, x)
            total = total + x
        out = total / (self.num_layers + 1)
        return out[:self.n_users], out[self.n_users:]

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final vectors; the last result is kept so that the alignment loss of a training
        step reuses the propagation the BPR loss just ran."""
        self.last = self.propagate(self.embedding.weight)
        return self.last


class RLMRec(UsesKnowledgeVectors, PairwiseRecommender):
    name = "rlmrec"
    config_class = RLMRecConfig
    config: RLMRecConfig

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.profile_dim = 0
        self._profiles: tuple[torch.Tensor, torch.Tensor] | None = None

    def needs_knowledge(self) -> bool:
        return self.config.alignment != "none"

    def _fit(self, train, valid, *, run_dir, progress, valid_mask) -> None:
        self._profiles = None
        if self.needs_knowledge():
            if self.user_vectors is None or self.item_vectors is None:
                raise ConfigError("rlmrec needs user and item profile vectors: call "
                                  "set_knowledge(user_vectors, item_vectors) or prepare(dataset,"
                                  " split) before fit (llmrec train does), or set alignment = "
                                  "\"none\"")
            self.check_rows("user", self.user_vectors, train.n_users)
            self.check_rows("item", self.item_vectors, train.n_items)
            if self.user_vectors.shape[1] != self.item_vectors.shape[1]:
                raise ConfigError(f"user profile vectors have {self.user_vectors.shape[1]} "
                                  f"dimensions, item vectors {self.item_vectors.shape[1]}: "
                                  "encode both with the same encoder")
            self._profiles = (torch.as_tensor(np.asarray(self.user_vectors, np.float32)),
                              torch.as_tensor(np.asarray(self.item_vectors, np.float32)))
            self.profile_dim = self.user_vectors.shape[1]
        super()._fit(train, valid, run_dir=run_dir, progress=progress, valid_mask=valid_mask)
        self._profiles = None

    def _build(self) -> nn.Module:
        cfg = self.config
        adjacency = normalized_adjacency(self.edge_users, self.edge_items, self.n_users,
                                         self.n_items)
        layers = cfg.num_layers if cfg.backbone == "lightgcn" else 0
        return RLMRecModule(adjacency, self.n_users, self.n_items, cfg.embedding_size, layers,
                            max(self.profile_dim, 1), cfg.alignment, cfg.seed)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = super().loss(batch)
        cfg = self.config
        if self._profiles is None or not cfg.kd_weight:
            return loss
        users = torch.unique(batch["users"])
        items = torch.unique(batch["pos"])
        s_user, s_item = self._profiles
        if cfg.alignment == "contrastive":
            e_user, e_item = self.module.last          # this step's propagation (U, D), (N, D)
            align = (info_nce(e_user[users], self.module.project(s_user[users]),
                              cfg.temperature)
                     + info_nce(e_item[items], self.module.project(s_item[items]),
                                cfg.temperature)) / 2
        else:
            g = torch.Generator().manual_seed(int(batch["users"][0]) * 7919 + len(users))
            mu = users[torch.rand(len(users), generator=g) < cfg.mask_ratio]
            mi = items[torch.rand(len(items), generator=g) < cfg.mask_ratio]
            if len(mu) + len(mi) < 2:
                return loss
            x = self.module.embedding.weight
            masked = torch.zeros(len(x), 1, dtype=torch.bool)
            masked[mu] = True
            masked[self.n_users + mi] = True
            e_user, e_item = self.module.propagate(torch.where(masked, self.module.mask, x))
            parts = []
            if len(mu) > 1:
                parts.append(info_nce(self.module.project(e_user[mu]), s_user[mu],
                                      cfg.temperature))
            if len(mi) > 1:
                parts.append(info_nce(self.module.project(e_item[mi]), s_item[mi],
                                      cfg.temperature))
            if not parts:
                return loss
            align = torch.stack(parts).mean()
        return loss + cfg.kd_weight * align

    # -- persistence: scoring needs the collaborative table only; the projector is kept so
    # that a saved model describes itself
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = super().state_tensors()
        for k, v in self.module.project.state_dict().items():
            out[f"project.{k}"] = v
        out["mask"] = self.module.mask
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        first = tensors.get("project.0.weight")
        self.profile_dim = 0 if first is None else (
            first.shape[1] if self.config.alignment == "contrastive"
            else tensors["project.2.weight"].shape[0])
        super().load_state_tensors(tensors)
        self.module.project.load_state_dict(
            {k[len("project."):]: v for k, v in tensors.items() if k.startswith("project.")})
        self.module.mask.data.copy_(tensors["mask"])
        self.module.eval()

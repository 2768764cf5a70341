"""KAR's hybrid-expert adaptor: knowledge vectors -> augmented feature vectors for a backbone.

Xi et al., "Towards Open-World Recommendation with Knowledge Augmentation from Large Language
Models" (KAR, RecSys 2024; arXiv:2306.10933), Section 3.3. Each knowledge type -- the item's
factual knowledge and the user's reasoning (preference) knowledge, each one text-encoder vector
-- goes through a set of *shared* experts (applied to both types) and its own *dedicated*
experts; a softmax gate computed from the same vector mixes the experts' outputs::

    r (B, K) -> experts e_1..e_S (shared), d_1..d_M (this type)     each (B, D)
             -> gate softmax(W r) (B, S + M)
             -> augmented vector sum_j gate_j * expert_j(r)           (B, D)

The augmented vectors join the backbone's input as extra fields, and the adaptor is trained
jointly with the backbone on the CTR loss.

Deviations: the augmented width is the backbone's ``embedding_size`` so the vectors can sit
beside the ID embeddings as fields (the paper concatenates them to the backbone input, any
width); experts are ReLU MLPs of ``expert_sizes`` then a linear output layer.

Prestoring (the paper's deployment): the adaptor only sees per-item and per-user vectors, so
after training :meth:`HybridExpertAdapter.prestore` computes every item's and user's augmented
vector once; serving is then two table lookups -- no LLM, no encoder, no adaptor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._layers import mlp

KINDS = ("item", "user")


class HybridExpertAdapter(nn.Module):
    """Shared + dedicated experts with softmax gates, one output per knowledge kind."""

    def __init__(self, knowledge_dim: int, out_dim: int, num_shared: int = 2,
                 num_dedicated: int = 2, expert_sizes: Sequence[int] = (128,),
                 dropout: float = 0.0, kinds: Sequence[str] = KINDS):
        super().__init__()
        if num_shared < 0 or num_dedicated < 0 or num_shared + num_dedicated == 0:
            raise ValueError("the adapter needs at least one expert")
        self.kinds = tuple(kinds)

        def expert() -> nn.Module:
            return mlp(knowledge_dim, expert_sizes, dropout, out_dim=out_dim)

        self.shared = nn.ModuleList(expert() for _ in range(num_shared))
        self.dedicated = nn.ModuleDict({k: nn.ModuleList(expert() for _ in range(num_dedicated))
                                        for k in self.kinds})
        self.gates = nn.ModuleDict({k: nn.Linear(knowledge_dim, num_shared + num_dedicated)
                                    for k in self.kinds})

    def augment(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Knowledge vectors of one kind (B, K) -> augmented vectors (B, D)."""
        experts = [e(x) for e in self.shared] + [e(x) for e in self.dedicated[kind]]
        outs = torch.stack(experts, dim=1)                                   # (B, E, D)
        gate = torch.softmax(self.gates[kind](x), dim=-1).unsqueeze(-1)     # (B, E, 1)
        return (gate * outs).sum(1)                                          # (B, D)

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"item": (B, K), "user": (B, K)}`` -> (B, len(kinds), D)."""
        return torch.stack([self.augment(k, vectors[k]) for k in self.kinds], dim=1)

    @torch.no_grad()
    def prestore(self, tables: dict[str, torch.Tensor], batch_size: int = 4096
                 ) -> dict[str, torch.Tensor]:
        """Augmented vector of every row of each table: ``{kind: (N_kind, D)}`` (eval mode)."""
        was_training = self.training
        self.eval()
        out = {k: torch.cat([self.augment(k, t[s:s + batch_size])
                             for s in range(0, len(t), batch_size)])
               for k, t in tables.items()}
        self.train(was_training)
        return out

"""DAS: semantic IDs quantised and aligned with collaborative signal in one stage.

Ye et al. 2025, "DAS: Dual-Aligned Semantic IDs Empowered Industrial Recommender System"
(Kuaishou, arXiv 2508.10584). Two-stage pipelines quantise content embeddings first and align
the codes with collaborative filtering (CF) afterwards, losing information on the way; DAS
trains the RQ-VAE quantiser *together with* contrastive alignment losses, so the codes carry
content and collaborative signal at once. The item side implemented here::

    z = E(x_text);  z_q = RQ(z)                        # the RQ-VAE of TIGER (``_rqvae.py``)
    loss = RQ-VAE loss
         + w_cf   * [ InfoNCE(z, P c) + InfoNCE(z_q, P c) ]       # item semantics <-> its CF vector
         + w_cooc * [ InfoNCE(z, z_j) + InfoNCE(z_q, z_q_j) ]     # co-occurring items together

with ``c`` the item's collaborative embedding, ``P`` a learned linear map into the latent
space, ``j`` a partner of the item drawn from its strongest training co-occurrences, InfoNCE
symmetric over in-batch negatives at ``temperature`` on L2-normalised vectors. Both the
continuous latent ``z`` (which moves the encoder) and the sum of codewords ``z_q`` (which moves
the codebooks) are aligned, so the alignment reaches the codes themselves, not only the input
they are computed from.

``fit`` takes ``(vectors, users, items)`` or ``(vectors, users, items, n_items)`` (text item
vectors and the *training* interactions as index arrays; CF vectors are then the truncated SVD
of the training co-occurrence's positive PMI, a classic item-item CF embedding), or a dict with
``vectors`` and optionally ``collaborative`` (e.g. a trained SASRec's item table) and
``cooccurrence`` (an (n, n) matrix).

Deviations from the paper: the item side only (DAS also quantises users, aligns them with the
items' codes - "dual learning" - and adds user-to-item and user-to-user views; a generative
retriever such as TIGER needs item IDs only); no ID-based CF debias module (ICDM) - the CF
vectors are taken as given; the partner of an item is drawn uniformly from its ``partners``
strongest co-occurrences by cosine-normalised count rather than from the logged co-occurrence
stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ._base import array_hash, as_vectors
from ._collaborative import cooccurrence
from ._config import check_float, check_int
from ._rqvae import RQVAE, RQVAEConfig, RQVAENet


@dataclass(frozen=True)
class DASConfig(RQVAEConfig):
    """RQ-VAE fields plus the alignment: ``cf_weight`` and ``cooc_weight`` scale the two
    contrastive terms (0 turns one off; both 0 is plain RQ-VAE), ``temperature`` is InfoNCE's,
    ``partners`` the strongest co-occurrences an item's partner is drawn from, ``cf_dim`` the
    size of the PMI-SVD CF vectors built when none are given.

    The weights are relative to the RQ-VAE loss, which is about 1 on unit-norm item vectors
    (``llmrec tokenize`` L2-normalises them). On the synthetic test of ``tests/tokenize/
    test_das.py`` (content clusters strong, collaborative groups weak in the vectors) the share
    of items whose first code agrees with their collaborative group rose from 0.22 (RQ-VAE) to
    0.38 at 0.1 (content agreement 0.91 -> 0.61) and to 0.70 at 1.0 (content 0.24); the default
    0.1 keeps content in the codes and adds collaborative structure."""

    cf_weight: float = 0.1
    cooc_weight: float = 0.1
    temperature: float = 0.1
    partners: int = 20
    cf_dim: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("cf_weight", self.cf_weight, 0.0)
        check_float("cooc_weight", self.cooc_weight, 0.0)
        check_float("temperature", self.temperature, 0.0, strict=True)
        check_int("partners", self.partners, 1)
        check_int("cf_dim", self.cf_dim, 1)


def ppmi_svd(cooc: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) L2-normalised item vectors: the top singular directions of the positive PMI of
    a co-occurrence matrix, scaled by the square root of their singular values (Levy and
    Goldberg 2014's SVD of PPMI)."""
    total = float(cooc.sum())
    if total <= 0:
        raise DataError("the training interactions hold no co-occurring item pairs")
    marg = cooc.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(cooc * total / np.outer(marg, marg))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0).astype(np.float64)
    u, s, _ = np.linalg.svd(ppmi, hermitian=True)
    k = min(dim, len(s))
    emb = (u[:, :k] * np.sqrt(s[:k])).astype(np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norm > 0, norm, 1.0)


def strongest_partners(cooc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``k`` strongest co-occurring items by ``count / sqrt(pop_i pop_j)`` (cosine),
    as an (n, k) index table and a count of valid entries per row (0 = no partner)."""
    pop = np.sqrt(np.maximum(cooc.sum(1), 1e-12))
    sim = cooc / pop[:, None] / pop[None, :]
    np.fill_diagonal(sim, 0.0)
    k = min(k, len(sim) - 1) if len(sim) > 1 else 1
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    valid = (np.take_along_axis(sim, top, 1) > 0).sum(1)
    return top.astype(np.int64), valid.astype(np.int64)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of row-aligned pairs (a_i, b_i), other rows as negatives."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = a @ b.T / temperature                                       # (B, B)
    target = torch.arange(len(a))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class DAS(RQVAE):
    """RQ-VAE trained jointly with contrastive alignment to collaborative signal."""

    name = "das"
    config_class = DASConfig
    config: DASConfig

    def _fit_input(self, data: Any) -> np.ndarray:
        cfg = self.config
        if isinstance(data, tuple):
            if len(data) not in (3, 4):
                raise DataError("DAS.fit takes (vectors, users, items[, n_items]) or a dict")
            vectors = as_vectors(data[0])
            cooc = cooccurrence(data[1], data[2], data[3] if len(data) == 4 else len(vectors))
            collab = None
        elif isinstance(data, dict):
            if "vectors" not in data:
                raise DataError("DAS.fit's dict needs 'vectors' (the items' text vectors)")
            vectors = as_vectors(data["vectors"])
            cooc = data.get("cooccurrence")
            collab = data.get("collaborative")
            if cooc is None and collab is None:
                raise DataError("DAS needs collaborative signal: 'collaborative' vectors and/or "
                                "a 'cooccurrence' matrix (or pass (vectors, users, items))")
        else:
            raise DataError("DAS.fit takes (vectors, users, items[, n_items]) or a dict with "
                            "'vectors', 'collaborative' and/or 'cooccurrence'")
        n = len(vectors)
        if cooc is not None:
            cooc = np.asarray(cooc, dtype=np.float32)
            if cooc.shape != (n, n):
                raise DataError(f"the co-occurrence matrix has shape {cooc.shape}, the item "
                                f"vectors {n} rows")
        if collab is None:
            collab = ppmi_svd(cooc, cfg.cf_dim)
        collab = as_vectors(collab, "collaborative vectors")
        if len(collab) != n:
            raise DataError(f"collaborative vectors have {len(collab)} rows, the item vectors {n}")
        self._collab = torch.from_numpy(collab)
        if cooc is not None and cfg.cooc_weight > 0:
            top, valid = strongest_partners(cooc, cfg.partners)
            self._partners, self._n_partners = torch.from_numpy(top), torch.from_numpy(valid)
        else:
            self._partners = None
        self._signal_hash = array_hash(collab, *([] if cooc is None else [cooc]))
        return vectors

    def _extra_module(self, latent_size: int) -> nn.Module | None:
        return nn.Linear(self._collab.shape[1], latent_size, bias=False)

    def _extra_loss(self, extra: nn.Module, net: RQVAENet, x: torch.Tensor,
                    idx: torch.Tensor, latents: tuple[torch.Tensor, torch.Tensor],
                    gen: torch.Generator) -> torch.Tensor:
        cfg = self.config
        z, zq = latents                                                    # (B, D) each
        loss = z.new_zeros(())
        if cfg.cf_weight > 0:
            c = extra(self._collab[idx])                                   # (B, D)
            loss = loss + cfg.cf_weight * (info_nce(z, c, cfg.temperature)
                                           + info_nce(zq, c, cfg.temperature))
        if cfg.cooc_weight > 0 and self._partners is not None:
            have = self._n_partners[idx] > 0
            if int(have.sum()) >= 2:
                rows = idx[have]
                pick = (torch.rand(len(rows), generator=gen)
                        * self._n_partners[rows]).long()                   # uniform in valid
                partner = self._partners[rows, pick]
                zj = net.encoder(x[partner])
                _, _, zqj, _ = net.quantize(zj)
                loss = loss + cfg.cooc_weight * (info_nce(z[have], zj, cfg.temperature)
                                                 + info_nce(zq[have], zqj, cfg.temperature))
        return loss

    def _finish_fit(self, x: np.ndarray):
        out = super()._finish_fit(x)
        self.input_hash_ = array_hash(x, np.frombuffer(self._signal_hash.encode(), np.uint8))
        return out

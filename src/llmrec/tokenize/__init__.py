"""Semantic IDs: item vectors (or interaction structure) -> short unique tuples of codes.

Quantizers of item vectors (``rq-kmeans``, ``rq-vae`` after TIGER, ``pq`` after MOTOR, ``das``:
an RQ-VAE trained jointly with contrastive alignment to collaborative signal) and the
indexing baselines of "How to Index Item IDs" (``random``, ``sequential``, ``collaborative``),
all with the same steps::

    ids = semantic_ids(vectors, "rq-kmeans", levels=3, codebook_size=256)   # one call, or
    tok = RQKMeans(RQKMeansConfig(levels=3)).fit(vectors)
    ids = tok.semantic_ids(collisions="level")     # "level" (TIGER) | "balanced" | "sinkhorn" (LC-Rec)
    ids.item_of((12, 201, 7, 0)); ids.codes_of(5); ids.trie().allowed((12,))
    print(format_diagnostics(ids.diagnostics)); ids.save(folder)

``rq-kmeans``, ``pq`` and ``collaborative`` need FAISS (``pip install 'llmrec[faiss]'``).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._base import Quantizer, Tokenizer, array_hash, fuse, relative_mse
from ._collaborative import CollaborativeConfig, CollaborativeIndexing, cooccurrence
from ._collisions import (
    STRATEGIES,
    Strategy,
    add_disambiguation_level,
    balance_last_level,
    collision_rate,
)
from ._config import TokenizerConfig
from ._das import DAS, DASConfig, ppmi_svd
from ._diagnostics import format_diagnostics
from ._ids import SemanticIds, Trie
from ._indexing import RandomIndexing, SequentialIndexing
from ._pq import PQ, PQConfig
from ._rqkmeans import RQKMeans, RQKMeansConfig
from ._rqvae import RQVAE, RQVAEConfig

TOKENIZERS: dict[str, type[Tokenizer]] = {
    "rq-kmeans": RQKMeans,
    "rq-vae": RQVAE,
    "pq": PQ,
    "random": RandomIndexing,
    "sequential": SequentialIndexing,
    "collaborative": CollaborativeIndexing,
    "das": DAS,
}


def semantic_ids(data: Any, method: str = "rq-kmeans", config: TokenizerConfig | None = None,
                 *, collisions: Strategy = "level", **overrides: Any) -> SemanticIds:
    """Fit ``TOKENIZERS[method]`` on ``data`` and return unique IDs (see each class for the
    form of ``data``); ``overrides`` replace fields of ``config``."""
    if method not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {method!r}; choose one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[method](config, **overrides).fit(data).semantic_ids(collisions)


__all__ = [
    "DAS", "DASConfig", "PQ", "RQVAE", "STRATEGIES", "TOKENIZERS", "CollaborativeConfig", "CollaborativeIndexing",
    "PQConfig", "Quantizer", "RQKMeans", "RQKMeansConfig", "RQVAEConfig", "RandomIndexing",
    "SemanticIds", "SequentialIndexing", "Strategy", "Tokenizer", "TokenizerConfig", "Trie",
    "add_disambiguation_level", "array_hash", "balance_last_level", "collision_rate",
    "cooccurrence", "format_diagnostics", "fuse", "ppmi_svd", "relative_mse", "semantic_ids",
]

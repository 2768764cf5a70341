"""TIGER: generative retrieval over semantic IDs (Rajput et al., NeurIPS 2023).

"Recommender Systems with Generative Retrieval": every item is a short tuple of codes (its
semantic ID, see :mod:`llmrec.tokenize`); an encoder reads the code tokens of the user's last
``max_seq_len`` items, a decoder writes the next item's tuple one code at a time, and beam
search constrained by the trie of valid tuples turns the decoder into a ranked list of real,
distinct items::

    history  [i7, i2, i9]  ->  encoder tokens  [c(i7)_0 c(i7)_1 c(i7)_2 c(i7)_3 c(i2)_0 ...]
    decoder  [BOS] -> c_0 -> c_1 -> c_2 -> c_3   (each step masked to the trie's children)

Tokens of level ``l`` are ``offsets[l] + code`` in one shared vocabulary, so a code means
different things at different levels. Encoder positions add an item-position embedding
(counted from the most recent item) and a level embedding; decoder positions a step embedding.

Scores and full-ranking metrics (``score``): the beam of ``beam_size`` items *is* the model's
ranked list; item ``i`` in it gets the log-probability of its tuple (renormalised over valid
codes at each step, see :mod:`._beam`). Items outside the beam were never decoded: they get
``lowest beam score - 1 - r / n_items`` where ``r`` is their training-popularity rank, so they
rank after every beam item, most popular first. Metrics at cut-offs up to ``beam_size`` are
exactly the beam's; deeper cut-offs measure that popularity tail, not the model. With the
default history mask, beam items the user already has are dropped by the evaluator, which is
why ``beam_size`` (30) is larger than the usual K (10).

Where the IDs come from: :meth:`TIGER.set_semantic_ids` (e.g. RQ-KMeans of item text, from
``llmrec tokenize``), else ``ids``: a folder written by ``llmrec tokenize``, or one of
``"random"``, ``"sequential"``, ``"collaborative"``, computed from the *training*
interactions only (``id_levels`` x ``id_codebook_size``).

Deviations from the paper (4+4 layers, d=128, 6 heads, MLP 1024, dropout 0.1, a user-id
token, RQ-VAE 3x256 IDs of sentence-T5 vectors, Adagrad, 200k steps):

- Defaults sized for CPU: 2 encoder + 2 decoder layers, d=64, 4 heads, FFN 128, AdamW with
  early stopping on validation NDCG@10 (via the beam), not a fixed step budget. On ML-100K
  (one shared CPU thread) an epoch of 16 targets per user takes about 40-50 s.
- No user-id token (TIGER hashes users into 2,000 tokens; its ablation shows little effect).
- Pre-LayerNorm blocks, a separate (untied) output layer over the shared code vocabulary.
- Each epoch trains on ``samples_per_user`` random next-item targets per user (0 = every
  target of every training sequence), each with the ``max_seq_len`` items before it.
- Decoding is incremental: self-attention keys/values of the decoded prefix are cached and
  cross-attention keys/values are computed once per user (beams of a user share them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import EvalCases, Interactions
from ..errors import ConfigError
from ..tokenize import SemanticIds
from ..train import TrainConfig, Trainer
from ._beam import (beam_scores, child_table, constrained_beam_search, gather_beams,
                    item_ids, popularity_tail)
from ._sequence import pad_right
from ._transformer import reverse_positions
from .base import Recommender


@dataclass
class TIGERConfig(TrainConfig):
    """``num_layers`` encoder layers and as many decoder layers; see the module docstring."""

    epochs: int = 100
    patience: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    embedding_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    ffn_size: int = 128
    dropout: float = 0.1
    max_seq_len: int = 20
    beam_size: int = 30
    samples_per_user: int = 16
    ids: str = "collaborative"
    id_levels: int = 3
    id_codebook_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.embedding_size % self.num_heads:
            raise ConfigError(f"embedding_size {self.embedding_size} is not divisible by "
                              f"num_heads {self.num_heads}")
        for name in ("num_layers", "num_heads", "ffn_size", "max_seq_len", "beam_size",
                     "id_levels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.id_codebook_size < 2 or self.samples_per_user < 0:
            raise ConfigError("id_codebook_size must be >= 2 and samples_per_user >= 0")


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """(N, T, D) -> (N, H, T, D/H)."""
    N, T, D = x.shape
    return x.view(N, T, h, D // h).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(N, H, T, d) -> (N, T, H*d)."""
    N, H, T, d = x.shape
    return x.transpose(1, 2).reshape(N, T, H * d)


class EncoderLayer(nn.Module):
    def __init__(self, d: int, h: int, ffn: int, dropout: float):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D); mask (B, 1, 1, S) bool, True = real key."""
        q, k, v = (_heads(t, self.h) for t in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        x = x + self.drop(self.o(_merge(F.scaled_dot_product_attention(q, k, v, mask))))
        return x + self.drop(self.ffn(self.ln2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, h: int, ffn: int, dropout: float):
        super().__init__()
        self.h = h
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.cq, self.ckv, self.co = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of the encoder output, (B, H, S, d) each."""
        k, v = self.ckv(memory).chunk(2, dim=-1)
        return _heads(k, self.h), _heads(v, self.h)

    def forward(self, x: torch.Tensor, mem: tuple[torch.Tensor, torch.Tensor],
                mem_mask: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, W, t, D): the new positions of W beams per row; ``cache``: keys/values of
        earlier positions, (B*W, H, t0, d) each. Returns (B, W, t, D) and the grown cache."""
        B, W, t, D = x.shape
        q, k, v = (_heads(z, self.h) for z in
                   self.qkv(self.ln1(x).reshape(B * W, t, D)).chunk(3, dim=-1))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        t0 = k.shape[2] - t
        causal = torch.arange(t).unsqueeze(1) + t0 >= torch.arange(t0 + t).unsqueeze(0)
        y = _merge(F.scaled_dot_product_attention(q, k, v, causal))            # (B*W, t, D)
        x = x + self.drop(self.o(y)).view(B, W, t, D)
        # cross-attention: the W beams of a row share its memory, so they go in the query axis
        cq = _heads(self.cq(self.ln2(x)).reshape(B, W * t, D), self.h)        # (B, H, W*t, d)
        y = _merge(F.scaled_dot_product_attention(cq, mem[0], mem[1], mem_mask))
        x = x + self.drop(self.co(y)).view(B, W, t, D)
        return x + self.drop(self.ffn(self.ln3(x))), (k, v)


class TIGERModule(nn.Module):
    """Encoder-decoder over code tokens; ``codes`` (n_items + 1, L) holds each item's tokens
    (offsets applied; the last row is padding)."""

    def __init__(self, codes: torch.Tensor, sizes: tuple[int, ...], cfg: TIGERConfig):
        super().__init__()
        d, L = cfg.embedding_size, len(sizes)
        n_codes = int(sum(sizes))
        self.sizes = sizes
        self.offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(sizes)[:-1]]))
        self.pad, self.bos = n_codes, n_codes + 1
        self.h = cfg.num_heads
        tokens = torch.cat([codes + torch.tensor(self.offsets),
                            torch.full((1, L), self.pad, dtype=torch.long)])
        self.register_buffer("tokens", tokens)                            # (N + 1, L)
        self.tok = nn.Embedding(n_codes + 2, d)
        self.item_pos = nn.Embedding(cfg.max_seq_len, d)
        self.level = nn.Embedding(L, d)
        self.step_pos = nn.Embedding(L, d)
        for emb in (self.tok, self.item_pos, self.level, self.step_pos):
            nn.init.normal_(emb.weight, std=1 / math.sqrt(d))
        args = (d, cfg.num_heads, cfg.ffn_size, cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(cfg.num_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(cfg.num_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d, n_codes)

    def encode(self, items: torch.Tensor, lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """items (B, T) left-aligned, padded with n_items -> memory (B, T*L, D), key mask
        (B, 1, 1, T*L)."""
        B, T = items.shape
        L = len(self.sizes)
        tok = self.tokens[items].reshape(B, T * L)                          # (B, T*L)
        pos = reverse_positions(lengths, T).repeat_interleave(L, dim=1)     # (B, T*L)
        lvl = torch.arange(L).repeat(T).unsqueeze(0)                        # (1, T*L)
        x = self.drop(self.tok(tok) + self.item_pos(pos) + self.level(lvl))
        mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1))        # (B, T)
        mask = mask.repeat_interleave(L, dim=1)[:, None, None, :]           # (B, 1, 1, T*L)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_norm(x), mask

    def decode(self, tokens: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]],
               mem_mask: torch.Tensor, cache: list | None = None
               ) -> tuple[torch.Tensor, list]:
        """tokens (B, W, t) new decoder inputs (the whole prefix if ``cache`` is None, else
        only the positions after it) -> logits (B, W, t, V) and the grown cache."""
        t0 = 0 if cache is None else cache[0][0].shape[2]
        pos = torch.arange(t0, t0 + tokens.shape[2])
        x = self.drop(self.tok(tokens) + self.step_pos(pos))               # (B, W, t, D)
        new_cache = []
        for i, layer in enumerate(self.decoder):
            x, kv = layer(x, mem[i], mem_mask, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.head(self.dec_norm(x)), new_cache

    def memory(self, items: torch.Tensor, lengths: torch.Tensor
               ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        memory, mask = self.encode(items, lengths)
        return [layer.memory_kv(memory) for layer in self.decoder], mask

    def forward(self, items: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor
                ) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) for target item indices (B,)."""
        mem, mask = self.memory(items, lengths)
        inputs = torch.cat([torch.full((len(target), 1), self.bos),
                            self.tokens[target, :-1]], dim=1)               # (B, L)
        return self.decode(inputs.unsqueeze(1), mem, mask)[0][:, 0]


class TIGER(Recommender):
    """The recommender: semantic IDs, training samples, beam search, the contract."""

    name = "tiger"
    config_class = TIGERConfig
    config: TIGERConfig
    module: TIGERModule

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.semantic_ids: SemanticIds | None = None

    def set_semantic_ids(self, ids: SemanticIds) -> TIGER:
        """Use these item tuples (row i = item index i) instead of ``config.ids``."""
        self.semantic_ids = ids
        return self

    # -- IDs ------------------------------------------------------------------------------
    def _make_ids(self, train: Interactions) -> SemanticIds:
        cfg = self.config
        return item_ids(train, cfg.ids, cfg.id_levels, cfg.id_codebook_size, cfg.seed)

    # -- training -------------------------------------------------------------------------
    def _build(self, codes: torch.Tensor, sizes: tuple[int, ...]) -> None:
        self.module = TIGERModule(codes, sizes, self.config)
        ids = SemanticIds(codes.numpy(), sizes)
        trie = ids.trie()
        self._table = child_table(trie)
        self._leaf_item = torch.from_numpy(trie.item)
        self._tail: torch.Tensor | None = None

    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        ids = self.semantic_ids if self.semantic_ids is not None else self._make_ids(train)
        if ids.n_items != train.n_items:
            raise ConfigError(f"semantic IDs cover {ids.n_items} items, the data has "
                              f"{train.n_items}; tokenize the same data set and preprocessing")
        torch.manual_seed(self.config.seed)
        self._build(torch.from_numpy(np.array(ids.codes)), ids.codebook_sizes)
        self._seqs = [train.sequence(u) for u in range(train.n_users)]
        self._targets = [(u, t) for u, s in enumerate(self._seqs) for t in range(1, len(s))]
        if not self._targets:
            raise ConfigError("no user has 2 or more training interactions")
        result = Trainer(run_dir, progress=progress, mask=valid_mask).fit(self, valid)
        self.fit_info = {**result.summary(), "ids": ids.method,
                         "ids_key": ids.key, "levels": len(ids.codebook_sizes),
                         "collision_rate": ids.diagnostics.get("collision_rate")}
        del self._seqs, self._targets

    def training_batches(self, epoch: int, rng: np.random.Generator):
        k = self.config.samples_per_user
        if k:
            picks = [(u, int(t)) for u, s in enumerate(self._seqs) if len(s) > 1
                     for t in rng.integers(1, len(s), size=k)]
        else:
            picks = self._targets
        order = rng.permutation(len(picks))
        bs, H = self.config.batch_size, self.config.max_seq_len
        for start in range(0, len(order), bs):
            chosen = [picks[i] for i in order[start:start + bs]]
            items, lengths = pad_right([self._seqs[u][max(0, t - H):t] for u, t in chosen],
                                       self.n_items, H)
            target = torch.tensor([int(self._seqs[u][t]) for u, t in chosen])
            yield {"items": items, "lengths": lengths, "target": target}

    @staticmethod
    def batch_size_of(batch: dict[str, torch.Tensor]) -> int:
        return len(batch["target"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over levels of the cross-entropy of each level's code (teacher forcing)."""
        logits = self.module(batch["items"], batch["lengths"], batch["target"])  # (B, L, V)
        codes = self.module.tokens[batch["target"]]                                # (B, L)
        total = logits.new_zeros(())
        for level, (off, size) in enumerate(zip(self.module.offsets, self.module.sizes)):
            total = total + F.cross_entropy(logits[:, level, off:off + size],
                                            codes[:, level] - off)
        return total / len(self.module.sizes)

    # -- decoding -------------------------------------------------------------------------
    def generate(self, histories: list[np.ndarray], beam_size: int | None = None,
                 use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Constrained beam search: items (B, W) and log-probabilities (B, W), best first;
        -1 / -inf fill slots when fewer than W items exist. ``use_cache=False`` re-decodes the
        whole prefix at every step (the reference the cached path is tested against)."""
        self.module.eval()
        m = self.module
        items, lengths = pad_right(histories, self.n_items, self.config.max_seq_len)
        with torch.no_grad():
            mem, mask = m.memory(items, lengths)

            def step(tokens: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
                if use_cache:
                    logits, cache = m.decode(tokens[:, :, -1:], mem, mask, cache)
                else:
                    logits, _ = m.decode(tokens, mem, mask, None)
                return logits[:, :, -1], cache                               # (B, W, V)

            def reorder(cache: Any, parent: torch.Tensor) -> Any:
                if cache is None or not use_cache:
                    return cache
                return [(gather_beams(k, parent), gather_beams(v, parent)) for k, v in cache]

            return constrained_beam_search(step, reorder, len(histories), m.bos, m.sizes,
                                           m.offsets, self._table, self._leaf_item,
                                           beam_size or self.config.beam_size)

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if self._tail is None:                 # out-of-beam items: after the beam, by popularity
            self._tail = popularity_tail(self.popularity)
        out = []
        for start in range(0, len(histories), 64):
            items, scores = self.generate(histories[start:start + 64])
            out.append(beam_scores(items, scores, self._tail))
        return torch.cat(out)

    # -- persistence ----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = super().state_tensors()
        out["codebook_sizes"] = torch.tensor(self.module.sizes, dtype=torch.long)
        out.update({f"module.{k}": v for k, v in self.module.state_dict().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        sizes = tuple(int(s) for s in tensors["codebook_sizes"])
        tokens = tensors["module.tokens"][:-1]
        codes = tokens - torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]))
        self._build(codes, sizes)
        self.module.load_state_dict({k[len("module."):]: v for k, v in tensors.items()
                                     if k.startswith("module.")})
        self.module.eval()

"""Beam search over code tuples, constrained by a trie of valid tuples (generative retrieval).

A decoder proposes, one level at a time, a distribution over the next code; the trie (see
:class:`~llmrec.tokenize.Trie`) says which codes continue some real item's tuple. At level
``l`` every live beam is extended by its *allowed* codes only, with log-probabilities
renormalised over those codes (so a finished beam's score is the log-probability of a real
item under the model restricted to real items), and the ``beam_size`` best extensions over all
beams of a user are kept. After the last level each beam sits on a leaf, i.e. one item, and
different beams sit on different leaves: the result is up to ``beam_size`` distinct items,
sorted by score (ties keep the lower beam, then the lower code).

The decoder is a callable ``step(tokens, state) -> (logits, state)``:

- ``tokens`` (B, W, t) long: the whole decoded prefix of every beam (BOS first);
- ``state``: whatever the decoder caches (``None`` on the first call); the search reorders
  it after each selection with ``reorder(state, parent)`` where ``parent`` (B, W') says which
  old beam every new beam continues;
- ``logits`` (B, W, V): scores of the next token for every beam, over the full vocabulary;
  the search slices level ``l``'s codes with ``offsets[l] .. offsets[l] + sizes[l]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..tokenize import SemanticIds, Trie

GENERATED_IDS = ("random", "sequential", "collaborative")

Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
Reorder = Callable[[Any, torch.Tensor], Any]


def child_table(trie: Trie) -> torch.Tensor:
    """Dense ``next[node, code]`` (n_nodes + 1, max_code + 1) long, -1 where no child.

    The extra last row is a sink for dead beams (node -1 is mapped onto it): all -1.
    """
    n_nodes = len(trie.indptr) - 1
    width = int(trie.codes.max()) + 1 if len(trie.codes) else 1
    table = np.full((n_nodes + 1, width), -1, dtype=np.int64)
    parent = np.repeat(np.arange(n_nodes), np.diff(trie.indptr))
    table[parent, trie.codes] = trie.children
    return torch.from_numpy(table)


def constrained_beam_search(step: Step, reorder: Reorder, batch: int, bos: int,
                            sizes: tuple[int, ...], offsets: tuple[int, ...],
                            table: torch.Tensor, leaf_item: torch.Tensor, beam_size: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``len(sizes)`` levels for ``batch`` rows; returns ``items`` (B, W) long (-1 for
    an empty slot when fewer than W items exist) and their ``scores`` (B, W) float (-inf for
    empty slots), best first."""
    dead = table.shape[0] - 1
    nodes = torch.zeros(batch, 1, dtype=torch.long)                       # (B, 1) root
    scores = torch.zeros(batch, 1)                                        # (B, 1)
    tokens = torch.full((batch, 1, 1), bos, dtype=torch.long)             # (B, 1, 1)
    state: Any = None
    for level, (size, off) in enumerate(zip(sizes, offsets)):
        logits, state = step(tokens, state)                               # (B, W, V)
        logits = logits[..., off:off + size].float()                      # (B, W, K)
        nxt = table[nodes.clamp(min=0).masked_fill(nodes < 0, dead)]      # (B, W, width)
        nxt = _fit_width(nxt, size)                                       # (B, W, K)
        allowed = nxt >= 0
        masked = logits.masked_fill(~allowed, float("-inf"))
        lse = torch.logsumexp(masked, dim=-1, keepdim=True)
        lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
        cand = (scores.unsqueeze(-1) + masked - lse).reshape(batch, -1)   # (B, W*K)
        order = torch.sort(cand, dim=1, descending=True, stable=True)
        keep = min(beam_size, cand.shape[1])
        scores, flat = order.values[:, :keep], order.indices[:, :keep]    # (B, W')
        parent, code = flat // size, flat % size
        nodes = nxt.reshape(batch, -1).gather(1, flat)
        nodes = nodes.masked_fill(~torch.isfinite(scores), -1)
        tokens = torch.cat([tokens.gather(1, parent.unsqueeze(-1).expand(-1, -1,
                                                                          tokens.shape[2])),
                            (code + off).unsqueeze(-1)], dim=2)           # (B, W', t+1)
        if level + 1 < len(sizes):
            state = reorder(state, parent)
    items = torch.where(nodes >= 0, leaf_item[nodes.clamp(min=0)], torch.full_like(nodes, -1))
    scores = scores.masked_fill(items < 0, float("-inf"))
    return items, scores


def _fit_width(nxt: torch.Tensor, size: int) -> torch.Tensor:
    """Cut or pad (with -1) the last dimension of a child lookup to the level's size."""
    width = nxt.shape[-1]
    if width >= size:
        return nxt[..., :size]
    pad = torch.full((*nxt.shape[:-1], size - width), -1, dtype=nxt.dtype)
    return torch.cat([nxt, pad], dim=-1)


def gather_beams(t: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
    """Reorder a per-beam tensor (B*W, ...) by ``parent`` (B, W') -> (B*W', ...)."""
    B, W_new = parent.shape
    W_old = t.shape[0] // B
    view = t.reshape(B, W_old, *t.shape[1:])
    idx = parent.reshape(B, W_new, *([1] * (t.dim() - 1))).expand(-1, -1, *t.shape[1:])
    return view.gather(1, idx).reshape(B * W_new, *t.shape[1:])


def item_ids(train: Any, ids: str, levels: int, codebook_size: int, seed: int) -> SemanticIds:
    """Item tuples for a generative recommender: ``ids`` is a folder written by ``llmrec
    tokenize`` or one of :data:`GENERATED_IDS`, computed from the *training* interactions
    ``train`` only (``levels`` x ``codebook_size``)."""
    from pathlib import Path

    from .. import tokenize

    opts = {"levels": levels, "codebook_size": codebook_size, "seed": seed}
    if ids == "random":
        return tokenize.semantic_ids(train.n_items, "random", collisions="none", **opts)
    if ids == "sequential":
        return tokenize.semantic_ids((np.asarray(train.item), train.n_items), "sequential",
                                     collisions="none", **opts)
    if ids == "collaborative":
        return tokenize.semantic_ids((train.user, train.item, train.n_items),
                                     "collaborative", collisions="level", **opts)
    if not Path(ids).is_dir():
        raise ConfigError(f"model.ids must be one of {', '.join(GENERATED_IDS)} or a folder "
                          f"written by `llmrec tokenize`; {ids!r} is neither")
    return SemanticIds.load(ids)


def popularity_tail(popularity: torch.Tensor) -> torch.Tensor:
    """(N,) offsets ``-1 - r / N`` (``r``: training-popularity rank) that put the items outside
    a beam after it, most popular first (see :func:`beam_scores`)."""
    n = len(popularity)
    rank = torch.empty(n)
    rank[torch.sort(-popularity, stable=True).indices] = torch.arange(n, dtype=torch.float32)
    return -1.0 - rank / n


def beam_scores(items: torch.Tensor, scores: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """Full-catalogue scores (B, N) from a beam, items (B, W) and log-probs (B, W): a beam
    item gets its log-probability, every other item ``lowest beam score + tail``, so it ranks
    after the whole beam, by popularity (TIGER and LC-Rec score this way)."""
    finite = torch.isfinite(scores)
    low = torch.where(finite, scores, torch.zeros_like(scores)).min(dim=1).values
    block = low.unsqueeze(1) + tail.unsqueeze(0)                               # (B, N)
    rows = torch.arange(len(items)).unsqueeze(1).expand_as(items)
    block[rows[finite], items[finite]] = scores[finite]
    return block

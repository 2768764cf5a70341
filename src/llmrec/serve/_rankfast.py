"""Fast CTR scoring for serving: DIN with its item and user sides computed once, at start-up.

A request scores its m candidates against one user and one history. DIN's forward
(:mod:`llmrec.ctr.din`) on the batch of m (user, candidate) pairs recomputes per pair what is
constant per request (the user's fields, the history vectors) or per item (the item's field
embeddings, genres, prestored knowledge). The first layer of each of DIN's two MLPs is linear,
so it splits into a sum over its input blocks:

    attention unit   W [h, t, h - t, h * t] + b = (W_h + W_d) h + (W_t - W_d) t + W_p (h * t) + b
    head             W [f_1, ..., f_F] + b      = sum_k W_k f_k + b

At start-up :class:`DINScorer` stores, per CTR item i, ``T_i = (W_t - W_d) e_i + b`` (n_items,
A1) and ``I_i`` = the head's first layer over the item's blocks (item id, item fields, genres,
item knowledge) plus its bias (n_items, M1); per user ``U_u`` over the user's blocks (user id,
user fields, user knowledge) (n_users, M1). A request then computes only its history term
``(W_h + W_d) h_j`` (h, A1), the pair term ``W_p (h_j * t_i)`` (m, h, A1), the rest of the
attention MLP, the pooled interest and its head block (m, M1), and the rest of the head. Many
requests go through one call (:meth:`DINScorer.score`): their candidates are concatenated,
their histories padded to the longest (padded positions get weight 0, as in DIN's forward).

Dice in eval mode is elementwise (batch norm with running statistics), fused here as
``x * (alpha + (1 - alpha) * sigmoid(x * s + c))``. Scores equal DIN's forward up to float
rounding; ``tests/serve/test_serve_speed_paths.py`` checks them against
:meth:`~llmrec.serve._rank.CTRRanker.score` (the plain path through the model's forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..ctr import Dice


@dataclass(frozen=True)
class RankQuery:
    """One request's ranker input, in the CTR model's index space."""

    user: int                     # CTR user index (the ranker's average user if unknown)
    history: np.ndarray           # (h,) CTR item indices, oldest first, h <= history_len
    ratings: np.ndarray           # (h,) int64 stars 0..5 (0 = unknown)
    items: np.ndarray             # (m,) CTR item indices of the candidates (all known)


def _tail(layers: Sequence[nn.Module]) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """An eval-mode MLP tail (Dice / Dropout / Linear) as a list of fused steps."""
    steps: list[tuple[str, tuple[torch.Tensor, ...]]] = []
    for layer in layers:
        if isinstance(layer, Dice):
            bn = layer.bn
            s = torch.rsqrt(bn.running_var + bn.eps)
            steps.append(("dice", (s, -bn.running_mean * s, layer.alpha.detach(),
                                   1 - layer.alpha.detach())))
        elif isinstance(layer, nn.Linear):
            steps.append(("linear", (layer.weight.detach().T.contiguous(),
                                     layer.bias.detach())))
        elif isinstance(layer, nn.ReLU):
            steps.append(("relu", ()))
        elif not isinstance(layer, nn.Dropout):
            raise TypeError(f"cannot fuse {type(layer).__name__}")
    return steps


def _run(steps, x: torch.Tensor) -> torch.Tensor:
    for kind, p in steps:
        if kind == "dice":
            s, c, alpha, rest = p
            x = x * torch.addcmul(alpha, rest, torch.sigmoid(torch.addcmul(c, x, s)))
        elif kind == "linear":
            x = torch.addmm(p[1], x.reshape(-1, x.shape[-1]), p[0]).reshape(
                *x.shape[:-1], p[0].shape[1])
        else:
            x = torch.relu(x)
    return x


class DINScorer:
    """DIN's click probabilities for many requests at once (module docstring).

    ``user_table`` (n_users, Fu) holds the codes of every user row the ranker knows (including
    an added average user, see :class:`~llmrec.serve._rank.CTRRanker`)."""

    @torch.inference_mode()
    def __init__(self, model, user_table: np.ndarray, item_table: np.ndarray,
                 item_genres: np.ndarray):
        mod = model.module
        f = mod.features
        d = mod.dim
        self.pad_item = f.pad_item
        self.item_emb = f.item.weight.detach()                               # (N + 1, D)
        self.rating_emb = f.rating.weight.detach()                           # (6, D)
        att0, head0 = mod.attention[0], mod.head[0]
        w = att0.weight.detach()                                             # (A1, 4D)
        w_h, w_t, w_d, w_p = (w[:, k * d:(k + 1) * d] for k in range(4))
        self.att_hist = (w_h + w_d).T.contiguous()                           # (D, A1)
        self.att_pair = w_p.T.contiguous()                                   # (D, A1)
        self.item_att = (self.item_emb[:-1] @ (w_t - w_d).T
                         + att0.bias.detach())                               # (N, A1)
        self.att_tail = _tail(list(mod.attention)[1:])
        self.head_tail = _tail(list(mod.head)[1:])
        # head input blocks, in DINModule.forward's order: fields (user, item, user fields...,
        # item fields..., genres), interest, knowledge kinds
        wh = head0.weight.detach()                                           # (M1, F*D)
        fu, fi = len(f.user_fields), len(f.item_fields)
        block = {}
        names = (["user", "item"] + [f"uf{k}" for k in range(fu)]
                 + [f"if{k}" for k in range(fi)] + ["genres", "interest"]
                 + [f"know_{k}" for k in (mod.adapter.kinds if mod.adapter else ())])
        for k, name in enumerate(names):
            block[name] = wh[:, k * d:(k + 1) * d].T                         # (D, M1)
        self.head_interest = block["interest"].contiguous()                  # (D, M1)
        items = torch.arange(f.item.num_embeddings - 1)
        it = torch.from_numpy(item_table.astype(np.int64))
        genres = torch.from_numpy(item_genres.astype(np.int64))
        g_mask = (genres > 0).unsqueeze(-1).float()                          # (N, G, 1)
        g_vec = (f.genres(genres) * g_mask).sum(1) / g_mask.sum(1).clamp(min=1)  # (N, D)
        item_side = f.item(items) @ block["item"] + g_vec @ block["genres"] + head0.bias
        for k, e in enumerate(f.item_fields):
            item_side = item_side + e(it[:, k]) @ block[f"if{k}"]
        ut = torch.from_numpy(user_table.astype(np.int64))
        users = torch.arange(len(ut))
        user_side = f.user(users) @ block["user"]
        for k, e in enumerate(f.user_fields):
            user_side = user_side + e(ut[:, k]) @ block[f"uf{k}"]
        if mod.adapter is not None:
            pre = model.prestored
            if "item" in mod.adapter.kinds:
                item_side = item_side + pre["item"] @ block["know_item"]
            if "user" in mod.adapter.kinds:
                user_side = user_side + pre["user"] @ block["know_user"]
        self.item_head = item_side.contiguous()                              # (N, M1)
        self.user_head = user_side.contiguous()                              # (U, M1)
        self.pair_weight: torch.Tensor | None = None     # see prestore_unrated
        self._pair_flat: np.ndarray | None = None

    @torch.inference_mode()
    def prestore_unrated(self, max_bytes: int, chunk: int = 16) -> bool:
        """Attention weights of every (target item, history item) pair for histories without
        ratings (explicit histories sent with a request): ``pair_weight`` (N, N + 1), the last
        column (padding) 0. With no rating the history vector is the item embedding, so the
        weight depends on the two items only. False (nothing stored) above ``max_bytes``."""
        n = self.pad_item
        if n * (n + 1) * 4 > max_bytes:
            return False
        emb = self.item_emb[:n]                                              # (N, D)
        hist_att = emb @ self.att_hist                                       # (N, A1)
        table = torch.zeros(n, n + 1)
        for lo in range(0, n, chunk):
            t = emb[lo:lo + chunk]                                           # (c, D)
            z = ((t.unsqueeze(1) * emb.unsqueeze(0)) @ self.att_pair         # (c, N, A1)
                 + hist_att.unsqueeze(0) + self.item_att[lo:lo + chunk].unsqueeze(1))
            table[lo:lo + chunk, :n] = _run(self.att_tail, z).squeeze(-1)
        self.pair_weight = table
        self._pair_flat = table.numpy().reshape(-1)                          # a view
        return True

    @torch.inference_mode()
    def score(self, queries: Sequence[RankQuery]) -> list[np.ndarray]:
        """Click probabilities (m_r,) float64 for each query's candidates."""
        rated = [bool(q.ratings.any()) for q in queries]
        if self.pair_weight is not None and any(rated) and not all(rated):
            out: list[np.ndarray] = [np.zeros(0)] * len(queries)
            for flag in (False, True):           # unrated via the pair table, rated live
                part = [k for k, r in enumerate(rated) if r == flag]
                for k, p in zip(part, self.score([queries[k] for k in part])):
                    out[k] = p
            return out
        R = len(queries)
        sizes = [len(q.items) for q in queries]
        if not sum(sizes):
            return [np.zeros(0) for _ in queries]
        # (row gathers with index_select / numpy take: several times faster than x[idx])
        H = max(len(q.history) for q in queries)
        cand_np = np.concatenate([q.items for q in queries]).astype(np.int64)
        cand = torch.from_numpy(cand_np)                                     # (M,)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        x = torch.index_select(self.item_head, 0, cand)                      # (M, M1)
        for r, q in enumerate(queries):
            x[bounds[r]:bounds[r + 1]] += self.user_head[q.user]
        if H:
            hist = np.full((R, H), self.pad_item, dtype=np.int64)
            stars = np.zeros((R, H), dtype=np.int64)
            for r, q in enumerate(queries):
                if len(q.history):
                    hist[r, H - len(q.history):] = q.history
                    stars[r, H - len(q.history):] = q.ratings
            hist_t = torch.from_numpy(hist)
            hv = (torch.index_select(self.item_emb, 0, hist_t.view(-1))
                  + torch.index_select(self.rating_emb, 0, torch.from_numpy(stars).view(-1))
                  ).view(R, H, -1)                                           # (R, H, D)
            req_np = np.repeat(np.arange(R), sizes)                          # (M,)
            if self.pair_weight is not None and not stars.any():
                n1 = self.pad_item + 1
                weight = torch.from_numpy(np.take(self._pair_flat, cand_np[:, None] * n1
                                                  + hist[req_np]))           # (M, H)
            else:
                req = torch.from_numpy(req_np)
                mask = (hist_t != self.pad_item).float()                     # (R, H)
                hist_att = hv @ self.att_hist                                # (R, H, A1)
                target = torch.index_select(self.item_emb, 0, cand)          # (M, D)
                z = ((torch.index_select(hv, 0, req) * target.unsqueeze(1)) @ self.att_pair
                     + torch.index_select(hist_att, 0, req)
                     + torch.index_select(self.item_att, 0, cand).unsqueeze(1))  # (M, H, A1)
                weight = (_run(self.att_tail, z).squeeze(-1)
                          * torch.index_select(mask, 0, req))               # (M, H)
            # head block of the pooled interest: (w @ hv) @ W_i = w @ (hv @ W_i), per request
            hist_head = hv @ self.head_interest                              # (R, H, M1)
            for r in range(R):
                lo, hi = bounds[r], bounds[r + 1]
                if hi > lo:
                    x[lo:hi].addmm_(weight[lo:hi], hist_head[r])             # (m_r, M1)
        probs = torch.sigmoid(_run(self.head_tail, x).squeeze(-1)).double().numpy()
        return [probs[bounds[r]:bounds[r + 1]] for r in range(R)]

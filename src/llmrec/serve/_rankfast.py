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

from ..ctr._layers import Dice


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

    @torch.inference_mode()
    def score(self, queries: Sequence[RankQuery]) -> list[np.ndarray]:
        """Click probabilities (m_r,) float64 for each query's candidates."""
        R = len(queries)
        sizes = [len(q.items) for q in queries]
        if not sum(sizes):
            return [np.zeros(0) for _ in queries]
        H = max(len(q.history) for q in queries)
        cand = torch.from_numpy(np.concatenate([q.items for q in queries]).astype(np.int64))
        req = torch.from_numpy(np.repeat(np.arange(R), sizes))               # (M,)
        users = torch.tensor([q.user for q in queries], dtype=torch.int64)
        x = self.item_head[cand] + self.user_head[users][req]                # (M, M1)
        if H:
            hist = np.full((R, H), self.pad_item, dtype=np.int64)
            stars = np.zeros((R, H), dtype=np.int64)
            for r, q in enumerate(queries):
                if len(q.history):
                    hist[r, H - len(q.history):] = q.history
                    stars[r, H - len(q.history):] = q.ratings
            hist_t = torch.from_numpy(hist)
            hv = self.item_emb[hist_t] + self.rating_emb[torch.from_numpy(stars)]  # (R, H, D)
            mask = (hist_t != self.pad_item).float()                         # (R, H)
            hist_att = hv @ self.att_hist                                    # (R, H, A1)
            target = self.item_emb[cand]                                     # (M, D)
            hv_m = hv[req]                                                   # (M, H, D)
            z = ((hv_m * target.unsqueeze(1)) @ self.att_pair                # (M, H, A1)
                 + hist_att[req] + self.item_att[cand].unsqueeze(1))
            weight = _run(self.att_tail, z).squeeze(-1) * mask[req]          # (M, H)
            interest = torch.bmm(weight.unsqueeze(1), hv_m).squeeze(1)       # (M, D)
            x = x + interest @ self.head_interest
        probs = torch.sigmoid(_run(self.head_tail, x).squeeze(-1)).double().numpy()
        return np.split(probs, np.cumsum(sizes)[:-1])

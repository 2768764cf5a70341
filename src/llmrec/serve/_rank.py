"""Ranking and re-ranking after retrieval.

Ranking: when the run folder holds a CTR model (``RUN_DIR/ctr/``, written by
:func:`save_ctr_ranker`), the fused candidates of a *known* user are re-scored by the model's
click probability, computed from ID features and the knowledge vectors prestored in the model
(``CTRModel.prestore`` before saving): no encoder and no LLM on the request path. Without a CTR
model, for unknown (cold-start) users, and for items the CTR model never saw, the order is the
fused retrieval score (items without a CTR score go after those with one).

With ``ranker_weight`` w < 1 (see :class:`~llmrec.serve.ServeConfig`) the order is a blend,

    final(i) = (1 - w) * minmax(fused)(i) + w * minmax(ctr)(i)     over the candidates,

ties broken by the fused score (w = 1 is the CTR order; w = 0 the fused one). The blend is a
late fusion of the two stages' scores; its weight is tuned on validation by
``llmrec tune-serving`` (:mod:`llmrec.serve._tune`).

Re-ranking: maximal marginal relevance (Carbonell & Goldstein 1998) over the item vectors,

    next = argmax_i  (1 - diversity) * rel(i) - diversity * max_{j chosen} cos(i, j)

with ``rel`` the ranking score min-max normalised over the pool; ``diversity = 0`` keeps the
ranked order.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import read_json_file, read_npy, write_json
from .._saved import ranker_fix
from ..errors import ConfigError
from ._rankfast import DINScorer, RankQuery

CTR_FOLDER = "ctr"
_TABLES = ("item_ids", "user_ids", "user_table", "item_table", "item_genres")


def mmr(items: np.ndarray, relevance: np.ndarray, vectors: np.ndarray, n: int,
        diversity: float) -> np.ndarray:
    """Positions (into ``items``) of ``n`` items picked by MMR; ``items`` best first."""
    if diversity <= 0 or len(items) <= 1:
        return np.arange(min(n, len(items)))
    lo, hi = float(relevance.min()), float(relevance.max())
    rel = np.ones(len(items)) if hi <= lo else (relevance - lo) / (hi - lo)
    v = vectors[items]                                                  # (m, d)
    sim = v @ v.T                                                       # (m, m)
    base = (1 - diversity) * rel                                        # (m,)
    max_sim = sim[0].copy()
    chosen = [0]
    for _ in range(min(n, len(items)) - 1):
        value = base - diversity * max_sim
        value[chosen] = -np.inf
        pick = int(value.argmax())
        chosen.append(pick)
        np.maximum(max_sim, sim[pick], out=max_sim)
    return np.asarray(chosen)


def blend(fused: np.ndarray, ctr: np.ndarray, weight: float) -> np.ndarray:
    """(m,) ranking score of candidates from their fused retrieval scores and CTR scores
    (``-inf`` where the CTR model does not know an item: its lowest finite score)."""
    if weight >= 1.0:
        return ctr
    ok = np.isfinite(ctr)
    ctr = np.where(ok, ctr, ctr[ok].min() if ok.any() else 0.0)

    def norm(x: np.ndarray) -> np.ndarray:
        lo, hi = float(x.min()), float(x.max())
        return np.ones_like(x) if hi <= lo else (x - lo) / (hi - lo)

    return (1.0 - weight) * norm(fused.astype(np.float64)) + weight * norm(ctr)


def save_ctr_ranker(run_dir: str | Path, model: Any, data: Any, dataset: Any,
                    info: dict[str, Any] | None = None) -> Path:
    """Store a fitted CTR model (with prestored knowledge if it has an adapter) and the
    feature tables of ``data`` (a :class:`~llmrec.ctr.CTRData` of ``dataset``) under
    ``RUN_DIR/ctr`` so that ``llmrec serve RUN_DIR`` ranks with it. Arrays are ``.npy``
    without pickle. ``info`` is stored in ``serving.json`` (e.g. ``objective``, and
    ``history_ratings: false`` for a model trained without the history's ratings)."""
    final = Path(run_dir) / CTR_FOLDER
    # written beside, then swapped in: a crash leaves the previous ranker (or none) intact
    folder = Path(tempfile.mkdtemp(prefix=".ctr-", dir=run_dir))
    if model.module is not None and model.module.adapter is not None and model.prestored is None:
        model.prestore(data)
    model.save(folder)
    arrays = {"item_ids": dataset.items.ids.astype(str), "user_ids": dataset.users.ids.astype(str),
              "user_table": data.user_table, "item_table": data.item_table,
              "item_genres": data.item_genres}
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    write_json(folder / "serving.json", {"dataset": dataset.name,
                                         "history_len": int(data.schema.history_len),
                                         **(info or {})})
    old = final.with_name(f".{CTR_FOLDER}-old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    folder.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


class CTRRanker:
    """A CTR model plus the feature tables to score (user, candidate) pairs at serving time."""

    def __init__(self, folder: Path, serving_items: np.ndarray, serving_users: np.ndarray):
        from ..ctr import load_ctr_model
        from ..ctr.din import DINModule

        self.folder = folder
        self.model = load_ctr_model(folder)
        if self.model.module.adapter is not None and self.model.prestored is None:
            raise ConfigError(f"{folder}: the CTR model uses knowledge but was saved without "
                              "prestored vectors (save it with save_ctr_ranker)")
        fix = ranker_fix(folder)
        t = {n: read_npy(folder / f"{n}.npy", fix) for n in _TABLES}
        self.meta = read_json_file(folder / "serving.json", fix)
        self.history_len = int(self.meta["history_len"])
        self.history_ratings = bool(self.meta.get("history_ratings", True))
        self.objective = str(self.meta.get("objective", "rating"))
        self.item_table = torch.from_numpy(t["item_table"].astype(np.int64))
        self.item_genres = torch.from_numpy(t["item_genres"].astype(np.int64))
        self.n_items = len(t["item_ids"])
        item_pos = {k: i for i, k in enumerate(t["item_ids"].tolist())}
        user_pos = {k: i for i, k in enumerate(t["user_ids"].tolist())}
        # serving index -> CTR index (-1: unknown to the CTR model)
        self.item_map = np.array([item_pos.get(k, -1) for k in serving_items.tolist()])
        self.unknown_user = len(t["user_ids"])
        self.user_map = np.array([user_pos.get(k, -1) for k in serving_users.tolist()])
        self.user_table = torch.from_numpy(
            add_average_user(self.model, t["user_table"]).astype(np.int64))
        self.fast = None
        self.user_scores: np.ndarray | None = None       # see prestore
        if isinstance(self.model.module, DINModule):
            self.fast = DINScorer(self.model, self.user_table.numpy(), t["item_table"],
                                  t["item_genres"])

    def describe(self) -> str:
        knowledge = "prestored knowledge vectors" if self.model.prestored else "no knowledge"
        path = "precomputed item side" if self.fast is not None else "model forward"
        pre = []
        if self.fast is not None and self.fast.pair_weight is not None:
            pre.append("attention of every item pair for unrated histories")
        if self.user_scores is not None:
            pre.append("scores of every known user's stored history "
                       f"({self.prestore_seconds:.1f} s)")
        return (f"CTR model {self.model.name} ({knowledge}, {self.objective} objective, {path}) "
                "on fused candidates (users it does not know: the average user)"
                + (f"; prestored: {', '.join(pre)}" if pre else ""))

    def prestore(self, dataset: Any, max_bytes: int, users_per_call: int = 8) -> None:
        """Compute at start-up what does not depend on the request: DIN's attention weights of
        every item pair for unrated (explicit) histories, and the click probabilities of every
        serving item for every known user's stored history, ``user_scores`` (n_users,
        n_items) float32 (as the sequential channel prestores its scores); each only within
        ``max_bytes``."""
        import time

        t0 = time.perf_counter()
        if self.fast is not None:
            self.fast.prestore_unrated(max_bytes)
        n_items = len(self.item_map)
        if dataset.n_users * n_items * 4 > max_bytes:
            return
        table = np.empty((dataset.n_users, n_items), dtype=np.float32)
        every = np.arange(n_items)
        for lo in range(0, dataset.n_users, users_per_call):
            users = range(lo, min(lo + users_per_call, dataset.n_users))
            rows = self.score_many([(u, *stored_history(dataset, u), every) for u in users])
            table[lo:lo + len(rows)] = np.stack(rows)
        self.user_scores = table
        self.prestore_seconds = time.perf_counter() - t0

    def stored_scores(self, user: int, candidates: np.ndarray) -> np.ndarray | None:
        """:meth:`score` of ``user``'s stored history, from the prestored table (None if the
        ranker has none)."""
        if self.user_scores is None:
            return None
        return self.user_scores[user, candidates].astype(np.float64)

    def ctr_user(self, user: int | None) -> int:
        """The CTR user row of a serving user (None or unknown: the average user)."""
        if user is None or self.user_map[user] < 0:
            return self.unknown_user
        return int(self.user_map[user])

    def query(self, user: int | None, history: np.ndarray, ratings: np.ndarray,
              candidates: np.ndarray) -> tuple[RankQuery, np.ndarray]:
        """The ranker input of one request (serving indices in) and the mask (m,) of the
        candidates the CTR model knows. ``ratings`` (h,) are the history's stars (0 =
        unknown; a model trained on unrated histories, the next-item task, always gets 0);
        history items the CTR model does not know are left out."""
        if not self.history_ratings:
            ratings = np.zeros(len(history))
        cand = self.item_map[candidates]
        known = cand >= 0
        hist = self.item_map[history]
        keep = hist >= 0
        hist, stars = hist[keep][-self.history_len:], ratings[keep][-self.history_len:]
        return RankQuery(self.ctr_user(user), hist.astype(np.int64),
                         np.clip(np.round(stars), 0, 5).astype(np.int64),
                         cand[known].astype(np.int64)), known

    def score_many(self, requests: Sequence[tuple[int | None, np.ndarray, np.ndarray,
                                                  np.ndarray]]) -> list[np.ndarray]:
        """:meth:`score` of many ``(user, history, ratings, candidates)`` at once: one
        vectorised call (DIN: :class:`~._rankfast.DINScorer`; other models: one forward over
        every request's pairs)."""
        queries, masks = zip(*(self.query(*r) for r in requests)) if requests else ((), ())
        if self.fast is not None:
            probs = self.fast.score(queries)
        else:
            probs = self._forward(queries)
        out = []
        for q, known, p in zip(queries, masks, probs):
            o = np.full(len(known), -np.inf)
            o[known] = p
            out.append(o)
        return out

    def score(self, user: int | None, history: np.ndarray, ratings: np.ndarray,
              candidates: np.ndarray) -> np.ndarray:
        """Click probabilities (m,) of ``candidates`` (serving indices); -inf where the CTR
        model does not know an item. The plain reference path: the model's own forward on
        the batch of (user, candidate) pairs."""
        q, known = self.query(user, history, ratings, candidates)
        out = np.full(len(candidates), -np.inf)
        out[known] = self._forward([q])[0]
        return out

    @torch.inference_mode()
    def _forward(self, queries: Sequence[RankQuery]) -> list[np.ndarray]:
        """The CTR model's forward over every query's (user, candidate) pairs."""
        sizes = [len(q.items) for q in queries]
        if not sum(sizes):
            return [np.zeros(0) for _ in queries]
        H = self.history_len
        hist_items = np.full((len(queries), H), self.n_items, dtype=np.int64)
        hist_ratings = np.zeros((len(queries), H), dtype=np.int64)
        for r, q in enumerate(queries):
            if len(q.history):
                hist_items[r, H - len(q.history):] = q.history
                hist_ratings[r, H - len(q.history):] = q.ratings
        req = torch.from_numpy(np.repeat(np.arange(len(queries)), sizes))
        items = torch.from_numpy(np.concatenate([q.items for q in queries]))
        users = torch.tensor([q.user for q in queries], dtype=torch.int64)[req]
        batch = {"user": users, "item": items,
                 "user_fields": self.user_table[users], "item_fields": self.item_table[items],
                 "genres": self.item_genres[items],
                 "hist_items": torch.from_numpy(hist_items)[req],
                 "hist_ratings": torch.from_numpy(hist_ratings)[req]}
        if self.model.prestored is not None:
            kinds = self.model.module.adapter.kinds
            batch["augmented"] = torch.stack([self.model.prestored[k][batch[k]]
                                              for k in kinds], dim=1)      # (B, kinds, D)
        probs = torch.sigmoid(self.model.module(batch)).double().numpy()
        return np.split(probs, np.cumsum(sizes)[:-1])


def stored_history(dataset: Any, user: int) -> tuple[np.ndarray, np.ndarray]:
    """A known user's stored history: item indices (h,) int64, oldest first, and their stars
    (h,) float32 (0 where the data has no rating)."""
    inter = dataset.interactions
    lo, hi = int(inter.indptr[user]), int(inter.indptr[user + 1])
    return (inter.item[lo:hi].astype(np.int64),
            np.nan_to_num(inter.rating[lo:hi], nan=0.0).astype(np.float32))


def add_average_user(model: Any, user_table: np.ndarray) -> np.ndarray:
    """Give a loaded CTR model one more user row, the average known user, and return the user
    table with its codes appended (index ``len(user_table)``).

    The CTR models have no row for a user they were not trained on (every user of the data
    is a training user). A request for such a user -- an anonymous explicit history, a new
    user id -- is ranked as the average user: the mean over the known users of each user-side
    input vector (user-id embedding, each user-field embedding as looked up for each user, the
    prestored user knowledge vector). Done in place on ``model`` (the ranker's own copy)."""
    from ..ctr import FeatureEmbedding

    codes = torch.from_numpy(user_table.astype(np.int64))                  # (U, Fu)
    new_codes = []

    def grow(emb: nn.Embedding, rows: torch.Tensor) -> nn.Embedding:
        out = nn.Embedding(emb.num_embeddings + 1, emb.embedding_dim,
                           padding_idx=emb.padding_idx)
        with torch.no_grad():
            out.weight.copy_(torch.cat([emb.weight, rows.mean(0, keepdim=True)]))
        return out

    for m in model.module.modules():
        if not isinstance(m, FeatureEmbedding):
            continue
        with torch.no_grad():
            m.user = grow(m.user, m.user.weight)
            new_codes = []
            for k, e in enumerate(m.user_fields):
                m.user_fields[k] = grow(e, e.weight[codes[:, k]])
                new_codes.append(e.num_embeddings)
    if model.prestored is not None and "user" in model.prestored:
        pre = model.prestored["user"]
        model.prestored = {**model.prestored,
                           "user": torch.cat([pre, pre.mean(0, keepdim=True)])}
    row = np.asarray(new_codes, dtype=user_table.dtype).reshape(1, user_table.shape[1])
    return np.concatenate([user_table, row])


def load_ranker(run_dir: Path, run: Any, cfg: Any) -> CTRRanker | None:
    folder = Path(run_dir).expanduser() / CTR_FOLDER
    if cfg.ranker == "fused" or (cfg.ranker == "auto" and cfg.ctr_weight <= 0):
        return None
    if not (folder / "model.json").exists():
        if cfg.ranker == "ctr":
            raise ConfigError(f"ranker = 'ctr' but {folder} holds no CTR model "
                              "(train one: llmrec ranker RUN_DIR)")
        return None
    ranker = CTRRanker(folder, run.dataset.items.ids, run.dataset.users.ids)
    if cfg.prestore_users:
        ranker.prestore(run.dataset, cfg.prestore_max_mb * 2**20)
    return ranker

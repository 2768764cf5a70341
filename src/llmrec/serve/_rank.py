"""Ranking and re-ranking after retrieval.

Ranking: when the run folder holds a CTR model (``RUN_DIR/ctr/``, written by
:func:`save_ctr_ranker`), the fused candidates of a *known* user are re-scored by the model's
click probability, computed from ID features and the knowledge vectors prestored in the model
(``CTRModel.prestore`` before saving): no encoder and no LLM on the request path. Without a CTR
model, for unknown (cold-start) users, and for items the CTR model never saw, the order is the
fused retrieval score (items without a CTR score go after those with one).

Re-ranking: maximal marginal relevance (Carbonell & Goldstein 1998) over the item vectors,

    next = argmax_i  (1 - diversity) * rel(i) - diversity * max_{j chosen} cos(i, j)

with ``rel`` the ranking score min-max normalised over the pool; ``diversity = 0`` keeps the
ranked order.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import read_json_file, read_npy, write_json
from .._saved import ranker_fix
from ..errors import ConfigError

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
    chosen = [0]
    max_sim = sim[0].copy()
    left = np.ones(len(items), dtype=bool)
    left[0] = False
    while len(chosen) < min(n, len(items)):
        value = np.where(left, (1 - diversity) * rel - diversity * max_sim, -np.inf)
        pick = int(np.argmax(value))
        chosen.append(pick)
        left[pick] = False
        max_sim = np.maximum(max_sim, sim[pick])
    return np.asarray(chosen)


def save_ctr_ranker(run_dir: str | Path, model: Any, data: Any, dataset: Any) -> Path:
    """Store a fitted CTR model (with prestored knowledge if it has an adapter) and the
    feature tables of ``data`` (a :class:`~llmrec.ctr.CTRData` of ``dataset``) under
    ``RUN_DIR/ctr`` so that ``llmrec serve RUN_DIR`` ranks with it. Arrays are ``.npy``
    without pickle."""
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
                                         "history_len": int(data.schema.history_len)})
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

        self.folder = folder
        self.model = load_ctr_model(folder)
        if self.model.module.adapter is not None and self.model.prestored is None:
            raise ConfigError(f"{folder}: the CTR model uses knowledge but was saved without "
                              "prestored vectors (save it with save_ctr_ranker)")
        fix = ranker_fix(folder)
        t = {n: read_npy(folder / f"{n}.npy", fix) for n in _TABLES}
        self.meta = read_json_file(folder / "serving.json", fix)
        self.history_len = int(self.meta["history_len"])
        self.user_table = torch.from_numpy(t["user_table"].astype(np.int64))
        self.item_table = torch.from_numpy(t["item_table"].astype(np.int64))
        self.item_genres = torch.from_numpy(t["item_genres"].astype(np.int64))
        self.n_items = len(t["item_ids"])
        item_pos = {k: i for i, k in enumerate(t["item_ids"].tolist())}
        user_pos = {k: i for i, k in enumerate(t["user_ids"].tolist())}
        # serving index -> CTR index (-1: unknown to the CTR model)
        self.item_map = np.array([item_pos.get(k, -1) for k in serving_items.tolist()])
        self.user_map = np.array([user_pos.get(k, -1) for k in serving_users.tolist()])

    def describe(self) -> str:
        knowledge = "prestored knowledge vectors" if self.model.prestored else "no knowledge"
        return f"CTR model {self.model.name} ({knowledge}) on fused candidates of known users"

    def applies(self, user: int | None) -> bool:
        return user is not None and self.user_map[user] >= 0

    @torch.inference_mode()
    def score(self, user: int, history: np.ndarray, ratings: np.ndarray,
              candidates: np.ndarray) -> np.ndarray:
        """Click probabilities (m,) of ``candidates`` (serving indices); -inf where the CTR
        model does not know an item. ``ratings`` (h,) are the history's stars (0 = unknown)."""
        cand = self.item_map[candidates]
        known = cand >= 0
        out = np.full(len(candidates), -np.inf)
        if not known.any():
            return out
        u = int(self.user_map[user])
        hist = self.item_map[history]
        keep = hist >= 0
        hist, stars = hist[keep][-self.history_len:], ratings[keep][-self.history_len:]
        H, B = self.history_len, int(known.sum())
        hist_items = np.full(H, self.n_items, dtype=np.int64)
        hist_ratings = np.zeros(H, dtype=np.int64)
        if len(hist):
            hist_items[H - len(hist):] = hist
            hist_ratings[H - len(hist):] = np.clip(np.round(stars), 0, 5)
        items = torch.from_numpy(cand[known].astype(np.int64))
        users = torch.full((B,), u, dtype=torch.int64)
        batch = {"user": users, "item": items,
                 "user_fields": self.user_table[users], "item_fields": self.item_table[items],
                 "genres": self.item_genres[items],
                 "hist_items": torch.from_numpy(hist_items).expand(B, H),
                 "hist_ratings": torch.from_numpy(hist_ratings).expand(B, H)}
        if self.model.prestored is not None:
            kinds = self.model.module.adapter.kinds
            batch["augmented"] = torch.stack([self.model.prestored[k][batch[k]]
                                              for k in kinds], dim=1)      # (B, kinds, D)
        out[known] = torch.sigmoid(self.model.module(batch)).double().numpy()
        return out


def load_ranker(run_dir: Path, run: Any, cfg: Any) -> CTRRanker | None:
    folder = Path(run_dir).expanduser() / CTR_FOLDER
    if cfg.ranker == "fused":
        return None
    if not (folder / "model.json").exists():
        if cfg.ranker == "ctr":
            raise ConfigError(f"ranker = 'ctr' but {folder} holds no CTR model "
                              "(train one: llmrec ranker RUN_DIR)")
        return None
    return CTRRanker(folder, run.dataset.items.ids, run.dataset.users.ids)

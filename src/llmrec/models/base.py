"""The recommender contract every model follows.

A recommender works on dense item indices (``0 .. n_items-1``); mapping raw ids is the job of
the data layer's :class:`~llmrec.data.Vocabulary`. The contract:

- ``fit(train, valid=None)`` learns from training interactions (``valid`` cases may drive early
  stopping) and returns ``self``.
- ``score(histories, users=None)`` gives a ``(B, n_items)`` float tensor, higher is better, one
  row per time-ordered history. An empty history (a user the model knows nothing about) is
  scored by training popularity: the cold-start fallback every model shares.
- ``recommend(history, n, exclude_seen=True)`` is written once here on top of ``score``:
  items already in the history are filtered unless ``exclude_seen=False``; ties go to the lower
  item index; masked items are never returned.
- ``save(folder)`` / :func:`load_model` store the config as JSON and tensors as safetensors
  (no pickle); a loaded model scores exactly as the saved one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from .._saved import read_model_folder, write_model_folder
from ..config import from_dict, to_dict
from ..data import EvalCases, Interactions
from ..errors import ConfigError
from ..train import ModelConfig


@dataclass(frozen=True)
class Recommendations:
    """A ranked list: ``items[0]`` is the best; ``scores`` are the model's raw scores."""

    items: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


class Recommender(ABC):
    """Base class of every model; see the module docstring for the contract."""

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **options: Any):
        if config is None or isinstance(config, dict):
            config = from_dict(self.config_class, {**(config or {}), **options}, self.name)
        elif options:
            raise TypeError("pass either a config object or keyword options, not both")
        self.config = config
        self.n_items = 0
        self.popularity = torch.zeros(0)
        self.fit_info: dict[str, Any] = {}

    # -- training -------------------------------------------------------------------------
    def fit(self, train: Interactions, valid: EvalCases | None = None, *,
            run_dir: Path | None = None, progress: bool = True,
            valid_mask: str = "history") -> Self:
        """Learn from ``train``; ``valid`` cases, ranked with ``valid_mask``, may drive early
        stopping; ``run_dir`` makes training resumable (see :class:`~llmrec.train.Trainer`)."""
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training interactions")
        self.n_items = train.n_items
        self.popularity = torch.from_numpy(train.item_counts().astype(np.float32))
        self._fit(train, valid, run_dir=run_dir, progress=progress, valid_mask=valid_mask)
        return self

    @abstractmethod
    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None: ...

    # -- scoring --------------------------------------------------------------------------
    @abstractmethod
    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        """Scores for non-empty histories, (B, n_items)."""

    def score(self, histories: Sequence[Sequence[int] | np.ndarray],
              users: np.ndarray | None = None) -> torch.Tensor:
        if not self.n_items:
            raise RuntimeError(f"{self.name} is not fitted")
        hs = [np.asarray(h, dtype=np.int64) for h in histories]
        for h in hs:
            if len(h) and (h.min() < 0 or h.max() >= self.n_items):
                raise IndexError(f"history item index out of range 0..{self.n_items - 1}")
        out = self.popularity.expand(len(hs), self.n_items).clone()
        known = [i for i, h in enumerate(hs) if len(h)]
        if known:
            sub_users = None if users is None else np.asarray(users)[known]
            with torch.no_grad():
                out[known] = self._score([hs[i] for i in known], sub_users).float()
        return out

    def recommend(self, history: Sequence[int] | np.ndarray, n: int = 10, *,
                  exclude_seen: bool = True, exclude: Sequence[int] | None = None,
                  user: int | None = None) -> Recommendations:
        return self.recommend_batch([history], n, exclude_seen=exclude_seen, exclude=exclude,
                                    users=None if user is None else np.array([user]))[0]

    def recommend_batch(self, histories: Sequence[Sequence[int] | np.ndarray], n: int = 10, *,
                        exclude_seen: bool = True, exclude: Sequence[int] | None = None,
                        users: np.ndarray | None = None) -> list[Recommendations]:
        scores = self.score(histories, users)
        if exclude is not None and len(exclude):
            scores[:, torch.as_tensor(np.asarray(exclude, dtype=np.int64))] = float("-inf")
        out = []
        for row, h in zip(scores, histories):
            if exclude_seen and len(h):
                row[torch.as_tensor(np.asarray(h, dtype=np.int64))] = float("-inf")
            order = torch.sort(row, descending=True, stable=True).indices[:n]
            order = order[torch.isfinite(row[order])]
            out.append(Recommendations(order.numpy(), row[order].numpy()))
        return out

    def item_embeddings(self) -> np.ndarray | None:
        """(n_items, D) item vectors the model scores with, or None where it has none (used by
        the beyond-accuracy metric ``ild_vec``)."""
        return None

    # -- persistence ----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to score; subclasses add their own."""
        return {"popularity": self.popularity}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.popularity = tensors["popularity"]
        self.n_items = len(self.popularity)

    def save(self, folder: str | Path) -> Path:
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_tensors().items()}
        return write_model_folder(folder, tensors, {
            "name": self.name, "config": to_dict(self.config), "n_items": self.n_items,
            "fit_info": self.fit_info})


def load_model(folder: str | Path) -> Recommender:
    """Load a model saved by :meth:`Recommender.save`."""
    from . import MODELS

    cls, meta, tensors = read_model_folder(folder, MODELS)
    model = cls(meta["config"])
    model.n_items = meta["n_items"]
    model.fit_info = meta.get("fit_info", {})
    model.load_state_tensors(tensors)
    return model

"""Most-popular: every user gets the items with the most training interactions (the floor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import EvalCases, Interactions
from .base import Recommender


class Pop(Recommender):
    name = "pop"

    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        self.fit_info = {"best_epoch": 0, "train_seconds": 0.0}

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        return self.popularity.expand(len(histories), self.n_items)

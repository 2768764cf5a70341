"""Fit a CTR model and predict its test part the way the service does."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._base import CTRModel
from ._data import CTRData


def fit_and_test(model: CTRModel, data: CTRData, *, run_dir: Path | None = None,
                 progress: bool = True) -> tuple[CTRData, np.ndarray, float | None]:
    """Fit on ``data``'s train part (early stopping on valid), prestore the knowledge vectors
    of a knowledge model, then predict the test part the way a service would: from the stored
    vectors only. Returns the test samples, their click probabilities, and the seconds the
    prestoring took (None without knowledge)."""
    model.fit(data.train, data.valid, run_dir=run_dir, progress=progress)
    test = data.test
    prestore_seconds = None
    if model.config.knowledge:
        t0 = time.perf_counter()
        model.prestore(data)
        prestore_seconds = round(time.perf_counter() - t0, 3)
        test = test.without_knowledge()          # inference sees stored vectors only
    return test, model.predict(test), prestore_seconds
